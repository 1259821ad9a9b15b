import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { forEachLimitAsync, readAhead } from "./concurrency.js";

/** A source that logs when each item is asked for and when it is closed. */
function source(n: number, log: string[], delayMs = 1): AsyncGenerator<number> {
  return (async function* () {
    try {
      for (let i = 0; i < n; i++) {
        log.push(`ask ${i}`);
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        yield i;
      }
    } finally {
      log.push("closed");
    }
  })();
}

describe("readAhead", () => {
  test("asks for the next item before the consumer is done with the current one", async () => {
    const log: string[] = [];
    const got: number[] = [];
    for await (const i of readAhead(source(3, log))) {
      log.push(`use ${i}`);
      got.push(i);
    }
    assert.deepEqual(got, [0, 1, 2]);
    assert.deepEqual(log.slice(0, 3), ["ask 0", "ask 1", "use 0"]);
  });

  test("an early stop closes the source after the pending item", async () => {
    const log: string[] = [];
    for await (const i of readAhead(source(10, log))) if (i === 1) break;
    assert.equal(log.at(-1), "closed");
    assert.ok(!log.includes("ask 3"), "nothing asked beyond the one item read ahead");
  });
});

describe("forEachLimitAsync", () => {
  test("keeps at most `limit` items in flight across the source's items", async () => {
    let inFlight = 0;
    let peak = 0;
    const done: number[] = [];
    await forEachLimitAsync(source(20, [], 0), 4, async (i) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, 2));
      inFlight--;
      done.push(i);
    });
    assert.equal(peak, 4);
    assert.deepEqual(
      done.sort((a, b) => a - b),
      Array.from({ length: 20 }, (_, i) => i),
    );
  });

  test("the first error is thrown after started work ends, and the source is closed", async () => {
    const log: string[] = [];
    let finished = 0;
    await assert.rejects(
      forEachLimitAsync(source(50, log), 3, async (i) => {
        await new Promise((r) => setTimeout(r, 2));
        if (i === 2) throw new Error("boom");
        finished++;
      }),
      /boom/,
    );
    assert.equal(log.at(-1), "closed");
    assert.ok(finished < 49, "no new item after the error");
  });
});
