import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { sampleRow, sampleRun, tempDir } from "../../test/support/writer-fixtures.js";
import { type JsonValue, jsonEquals, parseWandbJson } from "../model/json.js";
import { RUN_FIELDS } from "../model/records.js";
import { openProjectWriter } from "./writer.js";

async function lines(path: string): Promise<JsonValue[]> {
  const text = await readFile(path, "utf8");
  assert.ok(text === "" || text.endsWith("\n"), "every line ends with a newline");
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      JSON.parse(l); // strict JSON: no NaN/Infinity tokens
      return parseWandbJson(l); // exact big integers
    });
}

describe("jsonl writer", () => {
  test("runs and history rows as strict JSON, exact big ints, NaN/Infinity as strings", async () => {
    const dir = await tempDir();
    const w = await openProjectWriter({
      format: "jsonl",
      outputDir: dir,
      entity: "ent",
      project: "proj",
      withHistory: true,
    });
    const r1 = sampleRun("r1", { config: { big: 2n ** 70n, nan: Number.NaN, inf: -Infinity, uni: "ü 🎉" } });
    const h = [
      sampleRow("r1", 0, { loss: Number.NaN, big: 2n ** 64n, s: "line\nbreak \u2028", nested: { a: [Infinity] } }),
      sampleRow("r1", 1, { loss: 0.5 }, { timestamp: null, runtime: Number.NaN, extra: { _x: 1 } }),
      sampleRow("r1", 2, { loss: 0.25 }, { timestamp: 1e16 }),
    ];
    await w.writeRun(r1, [h.slice(0, 2), h.slice(2)]);
    await w.writeRun(sampleRun("r2"), []);
    const { files } = await w.close();
    assert.deepStrictEqual(files, [join(dir, "ent_proj_histories.jsonl"), join(dir, "ent_proj_runs.jsonl")]);

    const runs = (await lines(files[1]!)) as Record<string, JsonValue>[];
    assert.equal(runs.length, 2);
    assert.deepStrictEqual(Object.keys(runs[0]!), [...RUN_FIELDS]);
    assert.deepStrictEqual(runs[0]!.config, { big: 2n ** 70n, nan: "NaN", inf: "-Infinity", uni: "ü 🎉" });
    assert.equal(runs[0]!.created_at, "2024-01-02T03:04:05.000Z");

    const hist = (await lines(files[0]!)) as Record<string, JsonValue>[];
    assert.equal(hist.length, 3);
    assert.deepStrictEqual(Object.keys(hist[0]!), [
      "run_id",
      "step",
      "timestamp",
      "runtime",
      "wandb_metadata",
      "metrics",
      "extra",
    ]);
    assert.ok(
      jsonEquals(hist[0]!, {
        run_id: "r1",
        step: 0,
        timestamp: "2023-11-14T22:13:20.500000Z",
        runtime: 0,
        wandb_metadata: {},
        metrics: { loss: "NaN", big: 2n ** 64n, s: "line\nbreak \u2028", nested: { a: ["Infinity"] } },
        extra: {},
      }),
    );
    assert.deepStrictEqual(hist[1], {
      run_id: "r1",
      step: 1,
      timestamp: null,
      runtime: "NaN",
      wandb_metadata: {},
      metrics: { loss: 0.5 },
      extra: { _x: 1 },
    });
    assert.equal(hist[2]!.timestamp, null);
    // An integral double prints without a decimal point, so a reader may see an int (1e16 → 10000000000000000).
    assert.ok(jsonEquals(hist[2]!.extra!, { _timestamp: 1e16 }));
  });

  test("runs-only writes no histories file; system metrics lines", async () => {
    const dir = await tempDir();
    const w = await openProjectWriter({
      format: "jsonl",
      outputDir: dir,
      entity: "ent",
      project: "proj",
      withHistory: false,
      withSystemMetrics: true,
    });
    await w.writeRun(
      sampleRun("r1"),
      [[sampleRow("r1", 0, { a: 1 })]],
      [{ run_id: "r1", timestamp: 1700000000.25, runtime: 1, metrics: { "system.cpu": 3.5 } }],
    );
    const { files } = await w.close();
    assert.deepStrictEqual(files, [join(dir, "ent_proj_system_metrics.jsonl"), join(dir, "ent_proj_runs.jsonl")]);
    assert.deepStrictEqual(await lines(files[0]!), [
      { run_id: "r1", timestamp: "2023-11-14T22:13:20.250000Z", runtime: 1, metrics: { "system.cpu": 3.5 } },
    ]);
  });
});
