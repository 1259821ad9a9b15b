/**
 * A rate governor shared by every request to one W&B server (one instance may serve several clients).
 *
 * - AIMD concurrency: at most `limit` requests in flight; the limit starts at `initialConcurrency` (8), grows by 1
 *   after `increaseAfter` consecutive successes (up to `maxConcurrency`, 32) and halves on a 429 (down to
 *   `minConcurrency`, 1). Requests that were already in flight when the limit was cut do not cut it again.
 * - A 429 pauses everyone: no new request starts until the server's Retry-After / RateLimit-Reset (or the
 *   caller's backoff) has passed.
 * - An optional fixed cap of `requestsPerSecond` spaces request starts evenly.
 * So parallel callers together back off instead of each one hammering the server.
 */

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
  /** Clock (tests). */
  now?: () => number;
}

export interface GovernorStats {
  limit: number;
  inFlight: number;
  waiting: number;
  granted: number;
  rateLimited: number;
  decreases: number;
  increases: number;
  /** Total ms callers were held by a 429 pause (sum over pauses, not per caller). */
  pausedMs: number;
}

/** A granted slot. Report how the request went exactly once. */
export interface GovernorTicket {
  /** The request succeeded (or failed in a way that says nothing about load). */
  success(): void;
  /** The server said 429; `waitMs` is how long everyone should hold off. */
  rateLimited(waitMs: number): void;
  /** The request failed otherwise (5xx, network); frees the slot without growing the limit. */
  failure(): void;
}

interface Waiter {
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
  private readonly now: () => number;
  private inFlight = 0;
  private successes = 0;
  private epoch = 0;
  private pausedUntil = 0;
  private nextStartAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private readonly queue: Waiter[] = [];
  private readonly counters = { granted: 0, rateLimited: 0, decreases: 0, increases: 0, pausedMs: 0 };

  constructor(options: GovernorOptions = {}) {
    this.max = Math.max(1, Math.min(options.maxConcurrency ?? 32, 1024));
    this.min = Math.max(1, Math.min(options.minConcurrency ?? 1, this.max));
    this.limitValue = clamp(options.initialConcurrency ?? 8, this.min, this.max);
    this.increaseAfter = Math.max(1, options.increaseAfter ?? 16);
    this.minSpacingMs =
      options.requestsPerSecond && options.requestsPerSecond > 0 ? 1000 / options.requestsPerSecond : 0;
    this.now = options.now ?? Date.now;
  }

  get limit(): number {
    return this.limitValue;
  }

  /** The time (ms since epoch) until which new requests are held, or 0. */
  get pausedUntilMs(): number {
    return this.pausedUntil > this.now() ? this.pausedUntil : 0;
  }

  stats(): GovernorStats {
    return { limit: this.limitValue, inFlight: this.inFlight, waiting: this.queue.length, ...this.counters };
  }

  /** Waits for a slot (respecting pauses and the rate cap). Rejects with the signal's reason on abort. */
  acquire(signal?: AbortSignal): Promise<GovernorTicket> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<GovernorTicket>((resolve, reject) => {
      const w: Waiter = { resolve, reject, signal };
      if (signal) {
        w.onAbort = () => {
          const i = this.queue.indexOf(w);
          if (i >= 0) this.queue.splice(i, 1);
          reject(signal.reason);
          this.pump();
        };
        signal.addEventListener("abort", w.onAbort, { once: true });
      }
      this.queue.push(w);
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

  private grant(w: Waiter): void {
    if (w.signal && w.onAbort) w.signal.removeEventListener("abort", w.onAbort);
    this.inFlight++;
    this.counters.granted++;
    const ticketEpoch = this.epoch;
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
        this.decrease(ticketEpoch);
        this.pause(waitMs);
      },
      failure: () => {
        if (!finish()) return;
        this.successes = 0;
        this.pump();
      },
    });
  }

  private pump(): void {
    while (this.queue.length > 0 && this.inFlight < this.limitValue) {
      const now = this.now();
      const readyAt = Math.max(this.pausedUntil, this.nextStartAt);
      if (readyAt > now) {
        this.wakeAt(readyAt);
        return;
      }
      if (this.minSpacingMs > 0) this.nextStartAt = Math.max(now, this.nextStartAt) + this.minSpacingMs;
      this.grant(this.queue.shift()!);
    }
  }

  private wakeAt(at: number): void {
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.pump();
      },
      Math.max(0, at - this.now()),
    );
  }
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, Math.floor(n)));
}
