import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { RateLimiter, seededRandom } from "../../fake-wandb/faults.js";
import {
  type GovernorTicket,
  type GovernorTimers,
  parseRateLimitHeaders,
  RateGovernor,
  type RateLimitInfo,
} from "./governor.js";

async function settled<T>(p: Promise<T>, ms = 20): Promise<boolean> {
  let done = false;
  p.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await delay(ms);
  return done;
}

describe("RateGovernor", () => {
  test("at most `limit` requests in flight; a release lets the next one in", async () => {
    const g = new RateGovernor({ initialConcurrency: 2 });
    const a = await g.acquire();
    const b = await g.acquire();
    const c = g.acquire();
    assert.equal(await settled(c), false);
    assert.equal(g.stats().inFlight, 2);
    assert.equal(g.stats().waiting, 1);
    a.success();
    assert.equal(await settled(c), true);
    b.success();
    (await c).success();
    assert.equal(g.stats().inFlight, 0);
  });

  test("a burst of 429s halves the limit once, not once per request", async () => {
    const g = new RateGovernor({ initialConcurrency: 8 });
    const tickets: GovernorTicket[] = [];
    for (let i = 0; i < 8; i++) tickets.push(await g.acquire());
    for (const t of tickets) t.rateLimited(0);
    assert.equal(g.limit, 4);
    assert.equal(g.stats().decreases, 1);
    // a new 429 on a request started after the cut halves again
    const t = await g.acquire();
    t.rateLimited(0);
    assert.equal(g.limit, 2);
  });

  test("additive increase after `increaseAfter` consecutive successes, capped at max", async () => {
    const g = new RateGovernor({ initialConcurrency: 2, maxConcurrency: 3, increaseAfter: 3 });
    for (let i = 0; i < 3; i++) (await g.acquire()).success();
    assert.equal(g.limit, 3);
    for (let i = 0; i < 10; i++) (await g.acquire()).success();
    assert.equal(g.limit, 3);
    // a failure resets the streak
    const g2 = new RateGovernor({ initialConcurrency: 2, increaseAfter: 3 });
    (await g2.acquire()).success();
    (await g2.acquire()).success();
    (await g2.acquire()).failure();
    (await g2.acquire()).success();
    assert.equal(g2.limit, 2);
  });

  test("a 429 pauses every caller until the server's wait is over", async () => {
    const g = new RateGovernor({ initialConcurrency: 4 });
    const t = await g.acquire();
    const start = Date.now();
    t.rateLimited(400);
    const others = [g.acquire(), g.acquire()];
    assert.equal(await settled(others[0]!, 60), false);
    const granted = await Promise.all(others);
    assert.ok(Date.now() - start >= 390, `waited ${Date.now() - start} ms`);
    for (const x of granted) x.success();
    assert.ok(g.stats().pausedMs >= 390);
  });

  test("requestsPerSecond spaces request starts", async () => {
    const g = new RateGovernor({ initialConcurrency: 16, requestsPerSecond: 50 });
    const start = Date.now();
    const starts: number[] = [];
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        const t = await g.acquire();
        starts.push(Date.now() - start);
        t.success();
      }),
    );
    starts.sort((a, b) => a - b);
    assert.ok(starts[5]! >= 90, `6 starts at 50/s took ${starts[5]} ms`);
  });

  test("waiting callers are served by priority, in arrival order within one", async () => {
    const g = new RateGovernor({ initialConcurrency: 1 });
    const first = await g.acquire(undefined, 5);
    const order: string[] = [];
    const waiters = (
      [
        ["b1", 2],
        ["c1", 3],
        ["b2", 2],
        ["a1", 1],
        ["c2", 3],
        ["a2", 1],
      ] as const
    ).map(([name, priority]) =>
      g.acquire(undefined, priority).then((t) => {
        order.push(name);
        t.success();
      }),
    );
    first.success();
    await Promise.all(waiters);
    assert.deepEqual(order, ["a1", "a2", "b1", "b2", "c1", "c2"]);
  });

  test("an aborted waiter leaves the queue with the signal's reason", async () => {
    const g = new RateGovernor({ initialConcurrency: 1 });
    const held = await g.acquire();
    const ac = new AbortController();
    const waiting = g.acquire(ac.signal);
    const reason = new Error("cancelled");
    ac.abort(reason);
    await assert.rejects(waiting, (e: unknown) => e === reason);
    assert.equal(g.stats().waiting, 0);
    held.success();
    (await g.acquire()).success();
  });

  test("a ticket reports once; extra reports are ignored", async () => {
    const g = new RateGovernor({ initialConcurrency: 1 });
    const t = await g.acquire();
    t.success();
    t.success();
    t.failure();
    assert.equal(g.stats().inFlight, 0);
  });
});

/** A virtual clock: timers fire in order of due time when `run` advances it; nothing waits for real time. */
class VirtualClock {
  t: number;
  private seq = 0;
  private readonly events: { at: number; seq: number; fn: () => void; live: boolean }[] = [];
  readonly timers: GovernorTimers = {
    set: (fn, ms) => this.schedule(ms, fn),
    clear: (h) => {
      (h as { live: boolean }).live = false;
    },
  };

  constructor(start: number) {
    this.t = start;
  }

  now = (): number => this.t;

  schedule(ms: number, fn: () => void): { live: boolean } {
    const e = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, live: true };
    this.events.push(e);
    return e;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((r) => this.schedule(ms, r));
  }

  /** Runs events until `done()` (after letting promise continuations settle between events). */
  async run(done: () => boolean, maxEvents = 200_000): Promise<void> {
    for (let i = 0; i < maxEvents; i++) {
      await new Promise((r) => setImmediate(r));
      if (done()) return;
      let best = -1;
      for (let j = 0; j < this.events.length; j++) {
        const e = this.events[j]!;
        if (!e.live) continue;
        const b = best >= 0 ? this.events[best]! : undefined;
        if (!b || e.at < b.at || (e.at === b.at && e.seq < b.seq)) best = j;
      }
      if (best < 0) throw new Error("simulation stalled: nothing scheduled");
      const [e] = this.events.splice(best, 1);
      this.t = Math.max(this.t, e!.at);
      e!.fn();
    }
    throw new Error("simulation did not finish");
  }
}

interface SimOptions {
  /** Requests per one-second window (fake-wandb's fixed-window limiter). */
  limit: number;
  requests: number;
  workers: number;
  /** Send RateLimit-Limit/-Remaining scaled to 0-1000, as W&B does. */
  scaled?: boolean;
  /** Another client spends this many requests at the start of every window. */
  otherPerWindow?: number;
  seed?: number;
  governor?: (clock: VirtualClock) => RateGovernor;
}

interface SimResult {
  accepted: number;
  limited: number;
  /** Accepted requests per second of virtual time, first to last request at the server. */
  rate: number;
  /** Virtual times of the 429s, in ms from the first request. */
  limitedAt: number[];
  governor: RateGovernor;
}

/**
 * Drives a governor against fake-wandb's RateLimiter on a virtual clock: one request first (the listing), then
 * `workers` callers in parallel; 1-8 ms to reach the server, 80-140 ms to answer; a 429 waits its Retry-After.
 */
async function simulate(o: SimOptions): Promise<SimResult> {
  // Start off a window boundary, as a real process would.
  const clock = new VirtualClock(1_800_000_000_000 + 437);
  const random = seededRandom(o.seed ?? 1);
  const limiter = new RateLimiter();
  const g = o.governor
    ? o.governor(clock)
    : new RateGovernor({ initialConcurrency: 8, now: clock.now, timers: clock.timers });
  let otherWindow = -1;
  let queued = o.requests;
  let finished = 0;
  let accepted = 0;
  let first = Number.NaN;
  let last = 0;
  const limitedAt: number[] = [];

  const one = async (): Promise<void> => {
    for (;;) {
      const ticket = await g.acquire();
      await clock.sleep(1 + Math.floor(random() * 8));
      const window = Math.floor(clock.t / 1000);
      if (o.otherPerWindow && window !== otherWindow) {
        otherWindow = window;
        for (let i = 0; i < o.otherPerWindow; i++) limiter.check(o.limit, clock.t);
      }
      const decision = limiter.check(o.limit, clock.t);
      if (Number.isNaN(first)) first = clock.t;
      last = clock.t;
      await clock.sleep(80 + Math.floor(random() * 60));
      const h = Object.fromEntries(Object.entries(decision.headers).map(([k, v]) => [k.toLowerCase(), v]));
      if (o.scaled) {
        h["ratelimit-remaining"] = String(Math.round((Number(h["ratelimit-remaining"]) / o.limit) * 1000));
        h["ratelimit-limit"] = "1000";
      }
      ticket.observe(parseRateLimitHeaders(h), !decision.limited);
      if (!decision.limited) {
        accepted++;
        ticket.success();
        return;
      }
      limitedAt.push(clock.t - first);
      const wait = Number(h["retry-after"]) * 1000;
      ticket.rateLimited(wait);
      await clock.sleep(wait);
    }
  };
  const worker = async (): Promise<void> => {
    while (queued > 0) {
      queued--;
      await one();
      finished++;
    }
  };
  queued--;
  const listing = one().then(() => {
    finished++;
    for (let i = 0; i < o.workers; i++) void worker();
  });
  await clock.run(() => finished === o.requests);
  await listing;
  return {
    accepted,
    limited: limitedAt.length,
    rate: (accepted - 1) / ((last - first) / 1000),
    limitedAt,
    governor: g,
  };
}

describe("RateGovernor pacing from RateLimit-* headers", () => {
  test("parseRateLimitHeaders reads Limit, Remaining and Reset, and ignores anything else", () => {
    assert.deepEqual(
      parseRateLimitHeaders({ "ratelimit-limit": "1000", "ratelimit-remaining": "800", "ratelimit-reset": "1" }),
      { limit: 1000, remaining: 800, resetMs: 1000, resetWhole: true },
    );
    assert.deepEqual(parseRateLimitHeaders({ "ratelimit-reset": "0.25" }), { resetMs: 250, resetWhole: false });
    assert.deepEqual(parseRateLimitHeaders({ "ratelimit-limit": "lots", "ratelimit-remaining": "-1" }), {});
    assert.deepEqual(parseRateLimitHeaders({}), {});
  });

  test("the window's budget is learned in requests, on an absolute or a 0-1000 scale", async () => {
    const cases: [RateLimitInfo, number][] = [
      [{ limit: 5, remaining: 4, resetMs: 1000, resetWhole: true }, 5],
      [{ limit: 1000, remaining: 800, resetMs: 1000, resetWhole: true }, 5],
      [{ limit: 1000, remaining: 667, resetMs: 1000, resetWhole: true }, 3],
      [{ limit: 1000, remaining: 990, resetMs: 1000, resetWhole: true }, 100],
    ];
    for (const [info, capacity] of cases) {
      const g = new RateGovernor();
      const t = await g.acquire();
      t.observe(info, true);
      t.success();
      assert.equal(g.pacing?.capacity, capacity, JSON.stringify(info));
      assert.equal(g.pacing?.windowMs, 1000);
      assert.ok(Math.abs(g.pacing!.spacingMs - 1000 / (capacity * 0.95)) < 1e-9, `spacing ${g.pacing!.spacingMs}`);
    }
    // A later request that shows a smaller cost raises the estimate (the first answer came from a busier window).
    const g = new RateGovernor();
    const t1 = await g.acquire();
    const t2 = await g.acquire();
    t1.observe({ limit: 1000, remaining: 600, resetMs: 1000, resetWhole: true }, true);
    assert.equal(g.pacing?.capacity, 2);
    t2.observe({ limit: 1000, remaining: 800, resetMs: 2000, resetWhole: true }, true);
    assert.deepEqual(g.pacing, { capacity: 5, windowMs: 2000, spacingMs: 2000 / (5 * 0.95) });
  });

  test("no RateLimit-* headers: never paced, however many requests; a 429 alone does not start pacing", async () => {
    const clock = new VirtualClock(1_000_000);
    const g = new RateGovernor({ initialConcurrency: 32, now: clock.now, timers: clock.timers });
    for (let i = 0; i < 500; i++) {
      const t = await g.acquire();
      t.observe({}, true);
      t.success();
      assert.equal(g.nextStartMs, 0);
    }
    // fake-wandb's injected 429 fault (no real limit): Limit 1, Remaining 0 on the 429 only
    const t = await g.acquire();
    t.observe({ limit: 1, remaining: 0, resetMs: 1000, resetWhole: true }, false);
    t.rateLimited(1000);
    assert.equal(g.pacing, null);
    assert.equal(g.stats().pacing, null);
  });

  test("S4's shape (5 requests/s, fixed windows): no 429 and >= 90% of the limit, on the virtual clock", async () => {
    for (const scaled of [false, true]) {
      for (const seed of [1, 2, 3]) {
        const r = await simulate({ limit: 5, requests: 300, workers: 16, scaled, seed });
        const what = `scaled=${scaled} seed=${seed}: ${r.accepted} accepted at ${r.rate.toFixed(2)}/s, 429s at ${r.limitedAt}`;
        assert.equal(r.limited, 0, what);
        assert.equal(r.accepted, 300, what);
        assert.ok(r.rate >= 4.5, what);
        assert.ok(r.rate <= 5, what);
        assert.equal(r.governor.pacing?.capacity, 5, what);
      }
    }
  });

  test("a larger limit (50/s) with many callers: no 429, >= 90% of the limit", async () => {
    const r = await simulate({ limit: 50, requests: 1500, workers: 32, seed: 4 });
    assert.equal(r.limited, 0, `429s at ${r.limitedAt}`);
    assert.ok(r.rate >= 45 && r.rate <= 50, `rate ${r.rate}`);
  });

  test("without the pacing (the old behaviour) the same schedule draws many 429s", async () => {
    // Sanity check of the simulation itself: a governor that never learns (headers hidden) keeps probing.
    const r = await simulate({
      limit: 5,
      requests: 150,
      workers: 16,
      governor: (clock) => {
        const g = new RateGovernor({ initialConcurrency: 8, now: clock.now, timers: clock.timers });
        const acquire = g.acquire.bind(g);
        g.acquire = async (signal?: AbortSignal) => {
          const t = await acquire(signal);
          return { ...t, observe: () => {} } as GovernorTicket;
        };
        return g;
      },
    });
    assert.ok(r.limited > 20, `${r.limited} 429s`);
  });

  test("a budget shared with another client: paced conservatively, every request done, 429s stay rare", async () => {
    // The other client spends 2 of 5 at each window's start, so our first answer in a window says 3 of 5 are gone:
    // the estimate (a lower bound of the budget) is 1 per window. Slow but safe; it never overshoots.
    const r = await simulate({ limit: 5, requests: 60, workers: 16, otherPerWindow: 2, seed: 5 });
    assert.equal(r.accepted, 60);
    assert.ok(r.governor.pacing!.capacity <= 3, `capacity ${r.governor.pacing?.capacity}`);
    assert.ok(r.limited <= 3, `${r.limited} 429s at ${r.limitedAt}`);
  });

  test("budget spent as predicted: no pause in a 1 s window; in a long window, everyone waits for the reset", async () => {
    const clock = new VirtualClock(5_000_000);
    const g = new RateGovernor({ initialConcurrency: 8, now: clock.now, timers: clock.timers });
    const t1 = await g.acquire();
    t1.observe({ limit: 2, remaining: 1, resetMs: 1000, resetWhole: true }, true);
    t1.success();
    const start = clock.t;
    const window = 1000 / 0.95; // at most 2 starts per 1052.6 ms, at least 3/4 of 526.3 ms apart
    const gap = (0.75 * window) / 2;
    assert.equal(g.nextStartMs, start + gap, "paced from the first answer with headers");
    let t2: GovernorTicket | undefined;
    void g.acquire().then((t) => {
      t2 = t;
    });
    await clock.run(() => t2 !== undefined);
    assert.equal(clock.t, start + Math.ceil(gap));
    t2!.observe({ limit: 2, remaining: 0, resetMs: 1000, resetWhole: true }, true);
    t2!.success();
    assert.equal(g.pausedUntilMs, 0, "the pacing alone keeps the next request out of this window");
    assert.equal(g.nextStartMs, start + window, "the window's budget is spent: the next start is a window later");
    // 60 s windows: Remaining 0 with 42 s to go certainly outlasts the spacing
    const g2 = new RateGovernor({ initialConcurrency: 8, now: clock.now, timers: clock.timers });
    const u1 = await g2.acquire();
    const u2 = await g2.acquire();
    u1.observe({ limit: 1000, remaining: 995, resetMs: 60_000, resetWhole: true }, true);
    u1.success();
    u2.observe({ limit: 1000, remaining: 0, resetMs: 42_000, resetWhole: true }, true);
    u2.success();
    assert.equal(g2.pausedUntilMs, clock.t + 42_000);
  });

  test("the budget spent early (another client): capacity cut to what we sent, everyone waits for the reset", async () => {
    const clock = new VirtualClock(7_000_000);
    const g = new RateGovernor({ initialConcurrency: 8, now: clock.now, timers: clock.timers });
    const first = await g.acquire();
    first.observe({ limit: 10, remaining: 9, resetMs: 1000, resetWhole: true }, true);
    first.success();
    assert.equal(g.pacing?.capacity, 10);
    // a window later, paced requests: the third already finds the budget spent
    clock.t += 1000;
    const got: GovernorTicket[] = [];
    for (let i = 0; i < 3; i++) void g.acquire().then((t) => got.push(t));
    await clock.run(() => got.length === 3);
    for (const t of got.slice(0, 2)) {
      t.observe({ limit: 10, remaining: 5, resetMs: 1000, resetWhole: true }, true);
      t.success();
    }
    got[2]!.observe({ limit: 10, remaining: 0, resetMs: 1000, resetWhole: true }, true);
    got[2]!.success();
    assert.equal(g.pacing?.capacity, 3);
    assert.equal(g.pausedUntilMs, clock.t + 1000);
    // after four clean windows it grows back step by step
    clock.t += 4000;
    const next = g.acquire();
    await clock.run(() => g.stats().inFlight === 1);
    (await next).success();
    assert.equal(g.pacing?.capacity, 4);
  });
});
