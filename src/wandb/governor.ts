/**
 * A rate governor shared by every request to one W&B server (one instance may serve several clients).
 *
 * - AIMD concurrency: at most `limit` requests in flight; the limit starts at `initialConcurrency` (8), grows by 1
 *   after `increaseAfter` consecutive successes (up to `maxConcurrency`, 32) and halves on a 429 (down to
 *   `minConcurrency`, 1). Requests that were already in flight when the limit was cut do not cut it again.
 * - A 429 pauses everyone: no new request starts until the server's Retry-After / RateLimit-Reset (or the
 *   caller's backoff) has passed.
 * - An optional fixed cap of `requestsPerSecond` spaces request starts evenly.
 * - Pacing learned from the server's RateLimit-* headers (reported with `ticket.observe`): once an accepted answer
 *   carries `RateLimit-Limit` and a `RateLimit-Remaining` below it, the window's budget is known in requests
 *   (capacity = Limit / the smallest Limit - Remaining seen, so it works on W&B's 0-1000 scale as on absolute counts),
 *   and the window's length is the longest `RateLimit-Reset` seen (at least 1 s). Request starts are then paced to
 *   `paceMargin` (95%) of capacity / window: at most `capacity` in any window / margin and spread through it, so
 *   that no window can receive more than its budget and none is left idle. A server that sends no such headers is
 *   never paced.
 *   When the budget runs out earlier than that predicts (another client shares it, or requests cost more), the
 *   capacity is lowered to what we had sent and everyone waits for RateLimit-Reset; a 429 despite the pacing also
 *   lowers the margin. Both recover step by step after four clean windows.
 * So parallel callers together back off instead of each one hammering the server.
 *
 * Over 400 lines on purpose: one RateGovernor whose AIMD limit, 429 pause, requests/s cap and header pacing act on
 * the same slots and clock; split, the interplay this comment describes would be spread over files.
 */

/** What one answer's RateLimit-* headers said (see `parseRateLimitHeaders`). */
export interface RateLimitInfo {
  /** RateLimit-Limit: the window's quota in the server's units (W&B scales it to 0-1000). */
  limit?: number;
  /** RateLimit-Remaining, in the same units. */
  remaining?: number;
  /** RateLimit-Reset, in ms (seconds on the wire). */
  resetMs?: number;
  /** The Reset was a whole number of seconds (as W&B sends): the window may end up to 1 s sooner. */
  resetWhole?: boolean;
}

/** Reads RateLimit-Limit, -Remaining and -Reset (decimal numbers; anything else is ignored). */
export function parseRateLimitHeaders(headers: Record<string, string | string[] | undefined>): RateLimitInfo {
  const num = (name: string): number | undefined => {
    const v = headers[name];
    const s = (Array.isArray(v) ? v[0] : v)?.trim();
    return s !== undefined && /^\d+(\.\d+)?$/.test(s) ? Number(s) : undefined;
  };
  const info: RateLimitInfo = {};
  const limit = num("ratelimit-limit");
  const remaining = num("ratelimit-remaining");
  const reset = num("ratelimit-reset");
  if (limit !== undefined) info.limit = limit;
  if (remaining !== undefined) info.remaining = remaining;
  if (reset !== undefined) {
    info.resetMs = Math.round(reset * 1000);
    info.resetWhole = Number.isInteger(reset);
  }
  return info;
}

/** Timers (tests pass a virtual clock's). */
export interface GovernorTimers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export interface GovernorOptions {
  /** Concurrency to start with. Default 8. */
  initialConcurrency?: number;
  /** Upper bound for growth. Default 32. */
  maxConcurrency?: number;
  /** Lower bound for halving. Default 1. */
  minConcurrency?: number;
  /** Consecutive successes before the limit grows by one. Default 16. */
  increaseAfter?: number;
  /** Fixed cap on request starts per second (none by default). */
  requestsPerSecond?: number;
  /** Share of the learned rate to pace at (0.5-1). Default 0.95. */
  paceMargin?: number;
  /** Clock (tests). */
  now?: () => number;
  /** Timers (tests); setTimeout/clearTimeout by default. */
  timers?: GovernorTimers;
}

/** The pacing learned from RateLimit-* headers. */
export interface GovernorPacing {
  /** Requests the server accepts per window (as learned, after any cut). */
  capacity: number;
  /** The window's length in ms. */
  windowMs: number;
  /** Time between request starts. */
  spacingMs: number;
}

export interface GovernorStats {
  limit: number;
  inFlight: number;
  waiting: number;
  granted: number;
  rateLimited: number;
  decreases: number;
  increases: number;
  /** Total ms callers were held by a pause (429 or spent budget; sum over pauses, not per caller). */
  pausedMs: number;
  /** Pacing learned from RateLimit-* headers, or null while the server has shown none. */
  pacing: GovernorPacing | null;
}

/** A granted slot. Report how the request went exactly once. */
export interface GovernorTicket {
  /** The request succeeded (or failed in a way that says nothing about load). */
  success(): void;
  /** The server said 429; `waitMs` is how long everyone should hold off. */
  rateLimited(waitMs: number): void;
  /** The request failed otherwise (5xx, network); frees the slot without growing the limit. */
  failure(): void;
  /**
   * The answer's RateLimit-* headers (call before success/rateLimited; `accepted` is false for a 429). Teaches the
   * governor the server's budget, and holds everyone when the budget is spent.
   */
  observe(info: RateLimitInfo, accepted: boolean): void;
}

const DEFAULT_PACE_MARGIN = 0.95;
const MIN_PACE_MARGIN = 0.5;
/** Clean windows before a lowered capacity or margin recovers one step. */
const RECOVER_AFTER_WINDOWS = 4;
const MAX_REMEMBERED_STARTS = 100_000;

interface Waiter {
  /** Lower is served first; equal ones in arrival order. */
  priority: number;
  resolve: (t: GovernorTicket) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class RateGovernor {
  private limitValue: number;
  private readonly max: number;
  private readonly min: number;
  private readonly increaseAfter: number;
  private readonly minSpacingMs: number;
  private readonly maxMargin: number;
  private readonly now: () => number;
  private readonly timers: GovernorTimers;
  private inFlight = 0;
  private successes = 0;
  private epoch = 0;
  private pausedUntil = 0;
  private lastStartAt = Number.NEGATIVE_INFINITY;
  private timer: unknown;
  private timerAt = 0;
  private readonly queue: Waiter[] = [];
  // Pacing learned from RateLimit-* headers.
  /** Smallest (Limit - Remaining) / Limit on an accepted answer: the share of a window one request costs, at most. */
  private minCostShare = Number.POSITIVE_INFINITY;
  /** Longest RateLimit-Reset seen (ms). */
  private longestResetMs = 0;
  /** Capacity cut after the budget ran out early or a paced request got a 429 (Infinity: none). */
  private capacityCut = Number.POSITIVE_INFINITY;
  private margin: number;
  /** When the last cut happened (requests started before it do not cut again); also the recovery clock. */
  private lastCutAt = Number.NEGATIVE_INFINITY;
  /** Start times of recent requests, ascending. */
  private readonly starts: number[] = [];
  /** When pacing began (a request started a window after it was paced from the window's start). */
  private pacingSince = Number.POSITIVE_INFINITY;
  private readonly counters = { granted: 0, rateLimited: 0, decreases: 0, increases: 0, pausedMs: 0 };

  constructor(options: GovernorOptions = {}) {
    this.max = Math.max(1, Math.min(options.maxConcurrency ?? 32, 1024));
    this.min = Math.max(1, Math.min(options.minConcurrency ?? 1, this.max));
    this.limitValue = clamp(options.initialConcurrency ?? 8, this.min, this.max);
    this.increaseAfter = Math.max(1, options.increaseAfter ?? 16);
    this.minSpacingMs =
      options.requestsPerSecond && options.requestsPerSecond > 0 ? 1000 / options.requestsPerSecond : 0;
    this.maxMargin = Math.max(MIN_PACE_MARGIN, Math.min(1, options.paceMargin ?? DEFAULT_PACE_MARGIN));
    this.margin = this.maxMargin;
    this.now = options.now ?? Date.now;
    this.timers = options.timers ?? {
      set: (fn, ms) => setTimeout(fn, ms),
      clear: (h) => clearTimeout(h as NodeJS.Timeout),
    };
  }

  get limit(): number {
    return this.limitValue;
  }

  /** The time (ms since epoch) until which new requests are held by a pause, or 0. */
  get pausedUntilMs(): number {
    return this.pausedUntil > this.now() ? this.pausedUntil : 0;
  }

  /** The earliest time (ms since epoch) the next request may start (pause or pacing), or 0 if it may start now. */
  get nextStartMs(): number {
    const at = this.readyAt();
    return at > this.now() ? at : 0;
  }

  /** The pacing learned from RateLimit-* headers, or null. */
  get pacing(): GovernorPacing | null {
    const capacity = this.capacity();
    if (capacity === 0) return null;
    return { capacity, windowMs: this.windowMs(), spacingMs: this.spacingMs() };
  }

  stats(): GovernorStats {
    return {
      limit: this.limitValue,
      inFlight: this.inFlight,
      waiting: this.queue.length,
      ...this.counters,
      pacing: this.pacing,
    };
  }

  /**
   * Waits for a slot (respecting pauses and the rate cap). Rejects with the signal's reason on abort. Waiting callers
   * are served by `priority` (lower first; the transport gives each run's requests the run's first-seen rank), in
   * arrival order within one priority.
   */
  acquire(signal?: AbortSignal, priority = 0): Promise<GovernorTicket> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<GovernorTicket>((resolve, reject) => {
      const w: Waiter = { priority, resolve, reject, signal };
      if (signal) {
        w.onAbort = () => {
          const i = this.queue.indexOf(w);
          if (i >= 0) this.queue.splice(i, 1);
          reject(signal.reason);
          this.pump();
        };
        signal.addEventListener("abort", w.onAbort, { once: true });
      }
      // after every waiter of the same or a lower priority (the queue stays sorted; usually a push)
      let at = this.queue.length;
      while (at > 0 && this.queue[at - 1]!.priority > priority) at--;
      this.queue.splice(at, 0, w);
      this.pump();
    });
  }

  /** Holds every caller for `ms` from now (also used by callers that saw a 429 without holding a slot). */
  pause(ms: number): void {
    const until = this.now() + Math.max(0, ms);
    if (until > this.pausedUntil) {
      this.counters.pausedMs += until - Math.max(this.pausedUntil, this.now());
      this.pausedUntil = until;
    }
    this.pump();
  }

  /** A 429 seen outside a ticket: cut the limit (once per epoch) and pause. */
  noteRateLimited(waitMs: number): void {
    this.counters.rateLimited++;
    this.decrease(this.epoch);
    this.pause(waitMs);
  }

  private decrease(ticketEpoch: number): void {
    this.successes = 0;
    if (ticketEpoch !== this.epoch) return; // the limit was already cut for this burst
    this.epoch++;
    const next = Math.max(this.min, Math.floor(this.limitValue / 2));
    if (next < this.limitValue) {
      this.limitValue = next;
      this.counters.decreases++;
    }
  }

  /** Requests per window the server allows us, as learned (0: unknown, no pacing). */
  private capacity(): number {
    if (!Number.isFinite(this.minCostShare)) return 0;
    // The small tolerance absorbs rounding of scaled headers (1000/3 requests -> Remaining 667, 334, ...).
    const fromHeaders = Math.max(1, Math.floor(1 / this.minCostShare + 0.02));
    return Math.max(1, Math.min(fromHeaders, this.capacityCut));
  }

  private windowMs(): number {
    return Math.max(1000, this.longestResetMs);
  }

  /** The average time between starts when saturated: window / (capacity x margin). */
  private spacingMs(): number {
    const capacity = this.capacity();
    const learned = capacity > 0 ? this.windowMs() / (capacity * this.margin) : 0;
    return Math.max(this.minSpacingMs, learned);
  }

  /**
   * When the next request may start. Learned pacing: at most `capacity` starts in any window / margin (so a fixed
   * window of the server's never gets more than its budget, with 5% to spare for jitter), and consecutive starts at
   * least 3/4 of the average spacing apart (so each window's budget is spread, not sent in one burst). The sliding
   * rule rather than a strict spacing lets a start delayed by a busy event loop be made up by the next ones.
   */
  private readyAt(): number {
    let at = this.pausedUntil;
    if (this.minSpacingMs > 0) at = Math.max(at, this.lastStartAt + this.minSpacingMs);
    const capacity = this.capacity();
    if (capacity > 0) {
      const window = this.windowMs() / this.margin;
      at = Math.max(at, this.lastStartAt + (0.75 * window) / capacity);
      if (this.starts.length >= capacity) at = Math.max(at, this.starts[this.starts.length - capacity]! + window);
    }
    return at;
  }

  /** Requests we started in (from, to]. */
  private startsIn(from: number, to: number): number {
    let n = 0;
    for (let i = this.starts.length - 1; i >= 0; i--) {
      const t = this.starts[i]!;
      if (t <= from) break;
      if (t <= to) n++;
    }
    return n;
  }

  /** Requests we started in the window up to `startedAt`, counted over 10% more than the window for clock jitter. */
  private sentBefore(startedAt: number): number {
    return this.startsIn(startedAt - this.windowMs() * 1.1, startedAt);
  }

  private recordStart(now: number): void {
    this.lastStartAt = now;
    this.starts.push(now);
    const horizon = now - 2 * this.windowMs();
    let drop = 0;
    while (drop < this.starts.length && this.starts[drop]! < horizon) drop++;
    if (this.starts.length - drop > MAX_REMEMBERED_STARTS) drop = this.starts.length - MAX_REMEMBERED_STARTS;
    if (drop > 0) this.starts.splice(0, drop);
  }

  /** After a few clean windows a cut capacity grows back by one, and a cut margin by 0.02. */
  private recover(now: number): void {
    if (this.capacityCut === Number.POSITIVE_INFINITY && this.margin >= this.maxMargin) return;
    if (now - this.lastCutAt < RECOVER_AFTER_WINDOWS * this.windowMs()) return;
    this.lastCutAt = now;
    this.margin = Math.min(this.maxMargin, this.margin + 0.02);
    if (this.capacityCut !== Number.POSITIVE_INFINITY) {
      this.capacityCut++;
      if (Number.isFinite(this.minCostShare) && this.capacityCut >= 1 / this.minCostShare) {
        this.capacityCut = Number.POSITIVE_INFINITY;
      }
    }
  }

  private observe(info: RateLimitInfo, accepted: boolean, startedAt: number, pacedAtStart: boolean): void {
    const now = this.now();
    const wasPacing = this.capacity() > 0;
    if (info.resetMs !== undefined && info.resetMs > this.longestResetMs) this.longestResetMs = info.resetMs;
    const { limit, remaining } = info;
    if (accepted && limit !== undefined && remaining !== undefined && limit > 0 && remaining < limit) {
      const share = (limit - remaining) / limit;
      if (share < this.minCostShare) this.minCostShare = share;
      if (this.pacingSince === Number.POSITIVE_INFINITY) this.pacingSince = now;
    }
    // Budget spent. A 429 is handled by rateLimited() (its wait comes from Retry-After/Reset).
    if (!accepted || remaining === undefined || remaining > 0) return;
    const resetMs = info.resetMs;
    const capacity = this.capacity();
    if (capacity === 0) {
      // No pacing (no RateLimit-Limit): hold everyone until the window resets.
      if (resetMs !== undefined && resetMs > 0) this.pause(resetMs);
      return;
    }
    const sent = this.sentBefore(startedAt);
    if (wasPacing && pacedAtStart && sent < capacity) {
      // Spent before we sent our budget: it is shared or requests cost more. Send what we managed, wait for Reset.
      if (startedAt > this.lastCutAt) {
        this.capacityCut = Math.max(1, sent);
        this.lastCutAt = now;
      }
      if (resetMs !== undefined && resetMs > 0) this.pause(resetMs);
      return;
    }
    // Spent as predicted. The pacing puts the next start past the window's end, unless the window certainly lasts
    // longer than that (long windows, or a window learned too short): then wait for the reset.
    if (resetMs !== undefined && resetMs > 0) {
      const surelyLeft = info.resetWhole ? resetMs - 1000 : resetMs;
      if (surelyLeft > 0 && now + surelyLeft > this.readyAt()) this.pause(resetMs);
    }
    this.pump();
  }

  /** A 429 on a request started under pacing: the pacing was too fast. */
  private pacedRateLimited(startedAt: number): void {
    if (startedAt <= this.lastCutAt) return; // already cut for this burst
    const capacity = this.capacity();
    const sent = this.sentBefore(startedAt);
    // Fewer than the capacity were ours and still too many: the budget is smaller (or shared).
    if (sent < capacity) this.capacityCut = Math.max(1, sent - 1);
    this.margin = Math.max(MIN_PACE_MARGIN, this.margin * 0.9);
    this.lastCutAt = this.now();
  }

  private grant(w: Waiter): void {
    if (w.signal && w.onAbort) w.signal.removeEventListener("abort", w.onAbort);
    this.inFlight++;
    this.counters.granted++;
    const ticketEpoch = this.epoch;
    const startedAt = this.now();
    // Paced from the start of its window (requests sent before the pacing began say nothing about it).
    const pacedAtStart = this.capacity() > 0 && startedAt >= this.pacingSince + this.windowMs();
    this.recordStart(startedAt);
    let done = false;
    const finish = () => {
      if (done) return false;
      done = true;
      this.inFlight--;
      return true;
    };
    w.resolve({
      success: () => {
        if (!finish()) return;
        this.successes++;
        if (this.successes >= this.increaseAfter && this.limitValue < this.max) {
          this.limitValue++;
          this.counters.increases++;
          this.successes = 0;
        }
        this.pump();
      },
      rateLimited: (waitMs: number) => {
        if (!finish()) return;
        this.counters.rateLimited++;
        if (pacedAtStart) this.pacedRateLimited(startedAt);
        this.decrease(ticketEpoch);
        this.pause(waitMs);
      },
      failure: () => {
        if (!finish()) return;
        this.successes = 0;
        this.pump();
      },
      observe: (info: RateLimitInfo, accepted: boolean) => {
        this.observe(info, accepted, startedAt, pacedAtStart);
      },
    });
  }

  private pump(): void {
    while (this.queue.length > 0 && this.inFlight < this.limitValue) {
      const now = this.now();
      this.recover(now);
      const readyAt = this.readyAt();
      if (readyAt > now) {
        this.wakeAt(readyAt);
        return;
      }
      this.grant(this.queue.shift()!);
    }
  }

  private wakeAt(at: number): void {
    if (this.timer !== undefined && this.timerAt <= at) return;
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timerAt = at;
    this.timer = this.timers.set(
      () => {
        this.timer = undefined;
        this.pump();
      },
      Math.max(0, Math.ceil(at - this.now())),
    );
  }
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, Math.floor(n)));
}
