import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { type GovernorTicket, RateGovernor } from "./governor.js";

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
