/** The pure helpers of history-windows.ts: how a step range is cut into windows, and the ordered fetch pipeline. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { inWindow, ordered, planWindows, sortedUniqueIn, stepWindows } from "./history-windows.js";
import type { HistoryRow } from "./types.js";

describe("history windows", () => {
  test("stepWindows: fixed windows, the last one cut at stop", () => {
    assert.deepEqual(
      [...stepWindows(5, 27, 10)],
      [
        [5, 15],
        [15, 25],
        [25, 27],
      ],
    );
    assert.deepEqual([...stepWindows(3, 3, 10)], []);
  });

  test("planWindows: the SDK's windows where no steps are known", () => {
    assert.deepEqual(
      [...planWindows(0, 2500, 1000, undefined, 50)],
      [
        { lo: 0, hi: 1000 },
        { lo: 1000, hi: 2000 },
        { lo: 2000, hi: 2500 },
      ],
    );
  });

  test("planWindows: known steps grouped by count (gaps included), SDK windows before them", () => {
    const steps = [100, 101, 150, 400, 401, 402, 900];
    assert.deepEqual(
      [...planWindows(0, 1000, 60, { from: 100, steps }, 3)],
      [
        { lo: 0, hi: 60 },
        { lo: 60, hi: 100 },
        { lo: 100, hi: 400, expected: 3 },
        { lo: 400, hi: 900, expected: 3 },
        { lo: 900, hi: 1000, expected: 1 },
      ],
    );
  });

  test("sortedUniqueIn and inWindow: in range, ascending, one per step", () => {
    assert.deepEqual(sortedUniqueIn([5, 1, 3, 3, 9, 1], 1, 9), [1, 3, 5]);
    const rows: HistoryRow[] = [{ _step: 4, a: 1 }, { _step: 2 }, { _step: 4, a: 2 }, { _step: 9 }, { x: 1 }];
    assert.deepEqual(
      inWindow(rows, 2, 9).map((r) => r._step),
      [2, 4],
    );
  });

  test("ordered: results in item order whatever order they finish in, at most `depth` in flight", async () => {
    let inFlight = 0;
    let most = 0;
    const release = new Map<number, () => void>();
    const fetch = (i: number) =>
      new Promise<number>((resolve) => {
        inFlight++;
        most = Math.max(most, inFlight);
        release.set(i, () => {
          inFlight--;
          resolve(i * 10);
        });
      });
    const got: number[] = [];
    const consumer = (async () => {
      for await (const r of ordered([0, 1, 2, 3, 4], fetch, 2)) got.push(r);
    })();
    // finish them in reverse order of start, as each becomes available
    const finishOrder: number[] = [];
    while (finishOrder.length < 5) {
      await new Promise((r) => setImmediate(r));
      const started = [...release.keys()].filter((k) => !finishOrder.includes(k));
      const last = started.at(-1);
      if (last !== undefined) {
        finishOrder.push(last);
        release.get(last)!();
      }
    }
    await consumer;
    assert.deepEqual(got, [0, 10, 20, 30, 40]);
    assert.equal(most, 2);
  });

  test("ordered: stopping early aborts the fetches still in flight", async () => {
    const aborted: number[] = [];
    const fetch = (i: number, signal: AbortSignal) =>
      new Promise<number>((resolve, reject) => {
        if (i === 0) return resolve(0);
        signal.addEventListener("abort", () => {
          aborted.push(i);
          reject(signal.reason);
        });
      });
    for await (const r of ordered([0, 1, 2, 3], fetch, 3)) {
      assert.equal(r, 0);
      break;
    }
    assert.deepEqual(aborted.sort(), [1, 2, 3]);
  });
});
