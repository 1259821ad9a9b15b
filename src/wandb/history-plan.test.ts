/** The pure helpers of history-windows.ts: how a step range is cut into windows, and the ordered fetch pipeline. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { mulberry32 as prng } from "../../fake-wandb/random.js";
import { stringifyStrict } from "../model/json.js";
import { inWindow, ordered, planWindows, sortedUniqueIn, stepWindows, WindowRows } from "./history-windows.js";
import { liftStringArrays } from "./lazy-lines.js";
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

  test("WindowRows: the rows inWindow keeps, decoded a chunk at a time, each line dropped once decoded", () => {
    const lines = Array.from({ length: 10 }, (_, i) => `{"_step": ${i + 3}, "v": ${i}}`) as (string | null)[];
    const w = new WindowRows();
    const pages = [...w.decode({ lines, lo: 3, hi: 12 }, 3, "HistoryPage")];
    assert.deepEqual(
      pages.map((p) => p.length),
      [3, 3, 3],
      "steps 3..11 in pages of three; step 12 is past the window",
    );
    assert.equal(lines.length, 0, "the answer's lines are let go");
    assert.equal(w.count, 9);
    assert.equal(w.floor, 11);
    // the next window's rows at or below the floor are not given again (as the scan's old `fresh` filter)
    const next = [...w.decode({ lines: ['{"_step": 11}', '{"_step": 12}'], lo: 0, hi: 20 }, 100, "HistoryPage")];
    assert.deepEqual(
      next.flat().map((r) => r._step),
      [12],
    );
  });

  test("WindowRows: the same rows as inWindow on seeded answers (repeats, gaps, rows outside, out of order)", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rnd = prng(seed);
      const lo = Math.floor(rnd() * 20);
      const hi = lo + 1 + Math.floor(rnd() * 60);
      const sorted = rnd() < 0.7;
      const rows: HistoryRow[] = [];
      for (let i = 0, n = Math.floor(rnd() * 80); i < n; i++) {
        const x = rnd();
        const step =
          x < 0.05
            ? null
            : x < 0.1
              ? lo - 1 - Math.floor(rnd() * 3)
              : x < 0.15
                ? hi + Math.floor(rnd() * 3)
                : lo + Math.floor(rnd() * (hi - lo));
        rows.push(step === null ? { v: i } : { _step: step, v: i });
      }
      if (sorted) rows.sort((a, b) => ((a._step as number) ?? -1) - ((b._step as number) ?? -1));
      const want = inWindow(rows, lo, hi);
      const w = new WindowRows();
      const got = [
        ...w.decode({ lines: rows.map((r) => stringifyStrict(r)), lo, hi }, 1 + Math.floor(rnd() * 7), "x"),
      ].flat();
      const label = `seed ${seed}`;
      assert.equal(w.count, want.length, label);
      if (sorted) assert.deepEqual(got, want, `${label}: same rows, same order`);
      else {
        const bySteps = [...got].sort((a, b) => (a._step as number) - (b._step as number));
        assert.deepEqual(bySteps, want, `${label}: same rows (the first of each step), each once`);
      }
    }
  });

  test("WindowRows: lines left in the answer's bytes give the same rows, read a block at a time, then let go", () => {
    const rnd = prng(7);
    const texts = Array.from({ length: 1300 }, (_, i) => `{"_step": ${i}, "v": ${rnd()}, "s": "\\u00e9\\""}`);
    const answer = Buffer.from(JSON.stringify({ data: { project: { run: { history: texts } } } }));
    const lazy = liftStringArrays(answer, "history", 0)!.arrays[0]!;
    const got = [...new WindowRows().decode({ lines: lazy, lo: 5, hi: 1290 }, 100, "HistoryPage")].flat();
    const want = [...new WindowRows().decode({ lines: [...texts], lo: 5, hi: 1290 }, 100, "HistoryPage")].flat();
    assert.equal(got.length, 1285);
    assert.deepEqual(got, want);
    assert.throws(() => lazy.take(0, 1), /released/, "the answer's bytes are let go once every line is read");
  });

  test("WindowRows: a window read again gives only the steps not given yet", () => {
    const w = new WindowRows(4);
    const first = [...w.decode({ lines: ['{"_step": 5}', '{"_step": 8}'], lo: 5, hi: 10 }, 10, "x")].flat();
    assert.deepEqual(
      first.map((r) => r._step),
      [5, 8],
    );
    const again = ['{"_step": 5, "a": 2}', '{"_step": 6}', '{"_step": 7}', '{"_step": 8}', '{"_step": 9}'];
    const more = [...w.decode({ lines: again, lo: 5, hi: 10 }, 10, "x", { below: 4 })].flat();
    assert.deepEqual(
      more.map((r) => r._step),
      [6, 7, 9],
    );
    assert.equal(w.count, 5, "five distinct steps of the window in all");
    assert.equal(w.floor, 9);
  });
});
