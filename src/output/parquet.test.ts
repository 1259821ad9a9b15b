import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { duckReader, sampleRow, sampleRun, tempDir, tempFilesIn } from "../../test/support/writer-fixtures.js";
import type { JsonObject } from "../model/json.js";
import type { HistoryRecord } from "../model/records.js";
import { openProjectWriter } from "./writer.js";

const reader = duckReader();
const db = reader.db;
after(() => reader.close());

async function rows(sql: string): Promise<Record<string, unknown>[]> {
  return (await (await db()).runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
}

async function schema(path: string): Promise<[string, string][]> {
  const r = await rows(`DESCRIBE SELECT * FROM read_parquet('${path}')`);
  return r.map((x) => [x.column_name as string, x.column_type as string]);
}

async function writeProject(
  runs: { id: string; history: HistoryRecord[] }[],
  opts: { withSystemMetrics?: boolean } = {},
): Promise<string> {
  const dir = await tempDir();
  const w = await openProjectWriter({
    format: "parquet",
    outputDir: dir,
    entity: "ent",
    project: "proj",
    withHistory: true,
    ...opts,
  });
  for (const r of runs) await w.writeRun(sampleRun(r.id), [r.history]);
  await w.close();
  assert.deepStrictEqual(await tempFilesIn(dir), [], "no temp or spool files left");
  return dir;
}

/** A Parquet writer of runs only (no history file). */
function openRunsWriter(dir: string): ReturnType<typeof openProjectWriter> {
  return openProjectWriter({ format: "parquet", outputDir: dir, entity: "ent", project: "proj", withHistory: false });
}

describe("parquet writer, read back with DuckDB", () => {
  test("history columns: fixed columns typed, every metric kind exact", async () => {
    const m = (o: JsonObject) => o;
    const h: HistoryRecord[] = [
      sampleRow("r1", 0, m({ loss: 0.5, step: 100, count: 2n ** 62n, big: 2n ** 64n, huge: 2n ** 200n, flag: true })),
      sampleRow(
        "r1",
        1,
        m({ loss: Number.NaN, step: 101, count: 7, big: -(2n ** 70n), huge: 1, flag: false, s: 'comma, "quote"\nnl' }),
      ),
      sampleRow("r1", 2, m({ loss: Infinity, mixed: 1, nested: { a: [1, Number.NaN, 2n ** 65n] }, s: "日本 🎉" })),
      sampleRow("r1", 3, m({ loss: -Infinity, mixed: "one", e300: 1e300, f: 2 ** 60, nul: null, s: "" })),
      sampleRow("r1", 4, m({ loss: 2, intfloat: 1, e300: 2, unsafe: 2n ** 60n + 1n })),
      sampleRow("r1", 5, m({ intfloat: 1.5, unsafe: 0.5, s: "NaN" })),
    ];
    const dir = await writeProject([{ id: "r1", history: h }]);
    const path = join(dir, "ent_proj_histories.parquet");
    assert.deepStrictEqual(await schema(path), [
      ["run_id", "VARCHAR"],
      ["step", "BIGINT"],
      ["timestamp", "TIMESTAMP WITH TIME ZONE"],
      ["runtime", "DOUBLE"],
      ["wandb_metadata", "JSON"],
      ["extra", "JSON"],
      ["loss", "DOUBLE"],
      ["metrics.step", "BIGINT"],
      ["count", "BIGINT"],
      ["big", "DECIMAL(38,0)"],
      ["huge", "JSON"],
      ["flag", "BOOLEAN"],
      ["s", "VARCHAR"],
      ["mixed", "JSON"],
      ["nested", "JSON"],
      ["e300", "DOUBLE"],
      ["f", "DOUBLE"],
      ["nul", "DOUBLE"],
      ["intfloat", "DOUBLE"],
      ["unsafe", "JSON"],
    ]);
    const got = await rows(
      `SELECT step, CAST("timestamp" AS VARCHAR) AS ts, runtime, CAST(loss AS VARCHAR) AS loss, "metrics.step",
              CAST(count AS VARCHAR) AS count, CAST(big AS VARCHAR) AS big, CAST(huge AS VARCHAR) AS huge, flag, s,
              CAST(mixed AS VARCHAR) AS mixed, CAST(nested AS VARCHAR) AS nested, CAST(e300 AS VARCHAR) AS e300,
              CAST(f AS VARCHAR) AS f, nul, intfloat, CAST(unsafe AS VARCHAR) AS unsafe
       FROM read_parquet('${path}') ORDER BY step`,
    );
    const col = (k: string) => got.map((r) => r[k]);
    assert.deepStrictEqual(col("step"), ["0", "1", "2", "3", "4", "5"]);
    assert.deepStrictEqual(col("ts"), [
      "2023-11-14 22:13:20.5+00",
      "2023-11-14 22:13:21.5+00",
      "2023-11-14 22:13:22.5+00",
      "2023-11-14 22:13:23.5+00",
      "2023-11-14 22:13:24.5+00",
      "2023-11-14 22:13:25.5+00",
    ]);
    assert.deepStrictEqual(col("runtime"), [0, 1.25, 2.5, 3.75, 5, 6.25]);
    assert.deepStrictEqual(col("loss"), ["0.5", "nan", "inf", "-inf", "2.0", null]);
    assert.deepStrictEqual(col("metrics.step"), ["100", "101", null, null, null, null]);
    assert.deepStrictEqual(col("count"), [String(2n ** 62n), "7", null, null, null, null]);
    assert.deepStrictEqual(col("big"), [String(2n ** 64n), String(-(2n ** 70n)), null, null, null, null]);
    assert.deepStrictEqual(col("huge"), [String(2n ** 200n), "1", null, null, null, null]);
    assert.deepStrictEqual(col("flag"), [true, false, null, null, null, null]);
    assert.deepStrictEqual(col("s"), [null, 'comma, "quote"\nnl', "日本 🎉", "", null, "NaN"]);
    assert.deepStrictEqual(col("mixed"), [null, null, "1", '"one"', null, null]);
    assert.deepStrictEqual(col("nested"), [null, null, `{"a":[1,"NaN",${2n ** 65n}]}`, null, null, null]);
    assert.deepStrictEqual(col("e300"), [null, null, null, "1e+300", "2.0", null]);
    assert.deepStrictEqual(
      col("f"),
      [null, null, null, String(2 ** 60), null, null].map((x) => (x ? "1.152921504606847e+18" : x)),
    );
    assert.deepStrictEqual(col("nul"), [null, null, null, null, null, null]);
    assert.deepStrictEqual(col("intfloat"), [null, null, null, null, 1, 1.5]);
    assert.deepStrictEqual(col("unsafe"), [null, null, null, null, String(2n ** 60n + 1n), "0.5"]);
  });

  test("weird keys: dotted, quoted, unicode, case collisions, fixed-column names, empty key", async () => {
    const metrics: JsonObject = {
      "train/loss": 1,
      "a.b.c": 2,
      'q"uote': 3,
      "it's": 4,
      "comma,key": 5,
      "ключ 🎉": 6,
      Loss: 7,
      loss: 8,
      step: 9,
      run_id: 10,
      Timestamp: 11,
      "metrics.step": 12,
      "": 13,
    };
    const dir = await writeProject([{ id: "r1", history: [sampleRow("r1", 0, metrics)] }]);
    const path = join(dir, "ent_proj_histories.parquet");
    const names = (await schema(path)).map(([n]) => n);
    assert.deepStrictEqual(names.slice(0, 6), ["run_id", "step", "timestamp", "runtime", "wandb_metadata", "extra"]);
    const [row] = await rows(`SELECT * FROM read_parquet('${path}')`);
    assert.equal(row!.run_id, "r1");
    assert.equal(row!.step, "0", "the step column is the real step, not the metric named step");
    assert.equal(row!["metrics.step"], "9");
    assert.equal(row!["metrics.run_id"], "10");
    assert.equal(row!["metrics.Timestamp"], "11");
    assert.equal(row!["metrics.metrics.step"], "12");
    assert.equal(row!["metrics."], "13", "an empty key gets a usable column name");
    // Every metric value is there exactly once, under some column.
    const metricCols = names.slice(6);
    assert.equal(metricCols.length, Object.keys(metrics).length);
    assert.deepStrictEqual(
      metricCols.map((c) => Number(row![c])).sort((a, b) => a - b),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
    );
    for (const k of ["train/loss", "a.b.c", 'q"uote', "it's", "comma,key", "ключ 🎉", "Loss"]) {
      assert.equal(row![k], String(metrics[k]), k);
    }
  });

  test("1,500 distinct keys across runs, sparse rows, unordered keys", async () => {
    const runs: { id: string; history: HistoryRecord[] }[] = [];
    for (let r = 0; r < 3; r++) {
      const history: HistoryRecord[] = [];
      for (let s = 0; s < 200; s++) {
        const m: JsonObject = {};
        // rows carry a window of keys, in descending order, so positions arrive out of order
        for (let k = 499; k >= 0; k -= 7) m[`layer_${r * 500 + ((k + s) % 500)}/grad_norm`] = s + k / 1000;
        history.push(sampleRow(`run${r}`, s, m));
      }
      runs.push({ id: `run${r}`, history });
    }
    const dir = await writeProject(runs);
    const path = join(dir, "ent_proj_histories.parquet");
    const cols = await schema(path);
    assert.equal(cols.length, 6 + 1500);
    assert.ok(cols.slice(6).every(([, t]) => t === "DOUBLE"));
    const [c] = await rows(`SELECT count(*) AS n, count(DISTINCT run_id) AS runs FROM read_parquet('${path}')`);
    assert.deepStrictEqual(c, { n: "600", runs: "3" });
    // spot-check: every value from the input is in its column
    for (const r of [runs[0]!, runs[2]!]) {
      for (const row of [r.history[0]!, r.history[199]!]) {
        const keys = Object.keys(row.metrics).slice(0, 5);
        const sel = keys.map((k) => `"${k}"`).join(", ");
        const [got] = await rows(
          `SELECT ${sel} FROM read_parquet('${path}') WHERE run_id = '${row.run_id}' AND step = ${row.step}`,
        );
        for (const k of keys) assert.equal(got![k], row.metrics[k], k);
      }
    }
  });

  test("odd rows: null/NaN runtime, missing or out-of-range timestamp, weird run ids, JSON parts", async () => {
    const id = 'run,with"quote\nand newline';
    const h = [
      sampleRow(id, 0, { a: 1 }, { runtime: Number.NaN, wandb_metadata: { runtime: 5, big: 2n ** 64n } }),
      sampleRow(id, 1, {}, { timestamp: null, runtime: null, extra: { _custom: "x", _n: Number.NaN } }),
      sampleRow(id, 2, { a: 2 }, { timestamp: -1e13 }),
      sampleRow(id, 3, { a: 3 }, { timestamp: 0.000001 }),
    ];
    const dir = await writeProject([
      { id, history: h },
      { id: "empty", history: [] },
    ]);
    const got = await rows(
      `SELECT run_id, step, CAST("timestamp" AS VARCHAR) AS ts, CAST(runtime AS VARCHAR) AS runtime,
              CAST(wandb_metadata AS VARCHAR) AS wm, CAST(extra AS VARCHAR) AS extra, a
       FROM read_parquet('${join(dir, "ent_proj_histories.parquet")}')`,
    );
    assert.deepStrictEqual(got, [
      {
        run_id: id,
        step: "0",
        ts: "2023-11-14 22:13:20.5+00",
        runtime: "nan",
        wm: `{"runtime":5,"big":${2n ** 64n}}`,
        extra: "{}",
        a: "1",
      },
      { run_id: id, step: "1", ts: null, runtime: null, wm: "{}", extra: '{"_custom":"x","_n":"NaN"}', a: null },
      { run_id: id, step: "2", ts: null, runtime: "2.5", wm: "{}", extra: '{"_timestamp":-10000000000000}', a: "2" },
      { run_id: id, step: "3", ts: "1970-01-01 00:00:00.000001+00", runtime: "3.75", wm: "{}", extra: "{}", a: "3" },
    ]);
    const runs = await rows(`SELECT run_id FROM read_parquet('${join(dir, "ent_proj_runs.parquet")}')`);
    assert.deepStrictEqual(runs, [{ run_id: id }, { run_id: "empty" }]);
  });

  test("runs file: typed columns, JSON parts exact", async () => {
    const dir = await tempDir();
    const w = await openRunsWriter(dir);
    await w.writeRun(
      sampleRun("r1", {
        config: { lr: 0.001, big: 2n ** 70n, nan: Number.NaN, uni: "ü" },
        summary: { loss: -Infinity },
        tags: ["a", "b,c", 'd"e'],
        created_at: "2024-01-02T03:04:05.123456Z",
        heartbeat_at: null,
        last_history_step: -1,
      }),
      [],
    );
    await w.writeRun(sampleRun("r2", { tags: [], run_name: null, state: null, group: "g" }), []);
    const { files } = await w.close();
    assert.deepStrictEqual(files, [join(dir, "ent_proj_runs.parquet")]);
    const path = files[0]!;
    assert.deepStrictEqual(await schema(path), [
      ["run_id", "VARCHAR"],
      ["run_name", "VARCHAR"],
      ["state", "VARCHAR"],
      ["project", "VARCHAR"],
      ["entity", "VARCHAR"],
      ["created_at", "TIMESTAMP WITH TIME ZONE"],
      ["config", "JSON"],
      ["summary", "JSON"],
      ["wandb_metadata", "JSON"],
      ["system_metrics", "JSON"],
      ["system_attrs", "JSON"],
      ["sweep_info", "JSON"],
      ["tags", "VARCHAR[]"],
      ["group", "VARCHAR"],
      ["job_type", "VARCHAR"],
      ["user", "VARCHAR"],
      ["heartbeat_at", "TIMESTAMP WITH TIME ZONE"],
      ["notes", "VARCHAR"],
      ["commit", "VARCHAR"],
      ["history_keys", "JSON"],
      ["last_history_step", "BIGINT"],
      ["storage_id", "VARCHAR"],
    ]);
    const got = await rows(
      `SELECT run_id, run_name, state, CAST(created_at AS VARCHAR) AS created_at, CAST(config AS VARCHAR) AS config,
              CAST(summary AS VARCHAR) AS summary, tags, "group", CAST(heartbeat_at AS VARCHAR) AS hb,
              last_history_step, CAST(config->>'$.nan' AS DOUBLE)::VARCHAR AS nan_back
       FROM read_parquet('${path}')`,
    );
    assert.deepStrictEqual(got, [
      {
        run_id: "r1",
        run_name: "name-r1",
        state: "finished",
        created_at: "2024-01-02 03:04:05.123456+00",
        config: `{"lr":0.001,"big":${2n ** 70n},"nan":"NaN","uni":"ü"}`,
        summary: '{"loss":"-Infinity"}',
        tags: ["a", "b,c", 'd"e'],
        group: null,
        hb: null,
        last_history_step: "-1",
        nan_back: "nan",
      },
      {
        run_id: "r2",
        run_name: null,
        state: null,
        created_at: "2024-01-02 03:04:05+00",
        config: '{"lr":0.001,"layers":[1,2,3],"nested":{"a":{"b":"c"}}}',
        summary: '{"loss":0.25,"_step":9}',
        tags: [],
        group: "g",
        hb: "2024-01-02 04:00:00+00",
        last_history_step: "9",
        nan_back: null,
      },
    ]);
  });

  test("rows that repeat, drop, add and reorder keys land in the right columns", async () => {
    const shapes: JsonObject[] = [
      { a: 1, b: 2, c: 3 },
      { a: 4, b: 5, c: 6 },
      { a: 7, c: 9 },
      { c: 12, b: 11, a: 10 },
      { a: 13, b: 14, c: 15, d: 16 },
      { d: 20, a: 17 },
      { a: 21, b: 22, c: 23 },
      {},
      { b: 24 },
    ];
    const dir = await writeProject([{ id: "r1", history: shapes.map((m, i) => sampleRow("r1", i, m)) }]);
    const got = await rows(
      `SELECT a, b, c, d FROM read_parquet('${join(dir, "ent_proj_histories.parquet")}') ORDER BY step`,
    );
    const want = shapes.map((m) => ({
      a: m.a === undefined ? null : String(m.a),
      b: m.b === undefined ? null : String(m.b),
      c: m.c === undefined ? null : String(m.c),
      d: m.d === undefined ? null : String(m.d),
    }));
    assert.deepStrictEqual(got, want);
  });

  test("long rows and big run records (beyond DuckDB's default line and object sizes)", async () => {
    const dir = await tempDir();
    const w = await openProjectWriter({
      format: "parquet",
      outputDir: dir,
      entity: "ent",
      project: "proj",
      withHistory: true,
    });
    const bigText = 'é🎉,"x'.repeat(1_000_000); // ~9 MB of UTF-8 in one value
    await w.writeRun(sampleRun("r1", { config: { blob: bigText, more: "z".repeat(10_000_000) } }), [
      [sampleRow("r1", 0, { table: bigText, n: 1 }), sampleRow("r1", 1, { n: 2 })],
    ]);
    await w.close();
    const [h] = await rows(
      `SELECT length("table")::INTEGER AS len, "table" = '${bigText.replaceAll("'", "''")}' AS same, sum(n) OVER () AS total
       FROM read_parquet('${join(dir, "ent_proj_histories.parquet")}') ORDER BY step LIMIT 1`,
    );
    assert.deepStrictEqual(h, { len: bigText.length - 1_000_000, same: true, total: "3" });
    const [r] = await rows(
      `SELECT length(config->>'$.blob')::INTEGER AS a, length(config->>'$.more')::INTEGER AS b FROM read_parquet('${join(dir, "ent_proj_runs.parquet")}')`,
    );
    assert.deepStrictEqual(r, { a: bigText.length - 1_000_000, b: 10_000_000 });
  });

  test("run records of a few MB each, and tabs and line breaks in run fields", async () => {
    const dir = await tempDir();
    const w = await openRunsWriter(dir);
    // Lines of ~1.5M UTF-16 units, read line by line (up to 2M): 2.25 MB of UTF-8 each, beyond the 2 MiB line floor.
    const wide = "é🎉x".repeat(250_000);
    const odd = "tab\there\nline\r\nend\u2028";
    for (let i = 0; i < 3; i++) {
      await w.writeRun(
        sampleRun(`r${i}`, { notes: odd, config: { wide, i, [odd]: odd }, summary: { text: "s".repeat(500_000) } }),
        [],
      );
    }
    await w.close();
    const got = await rows(
      `SELECT run_id, notes = '${odd}' AS notes, (config->>'$.wide') = '${wide}' AS same,
              json_keys(config) AS keys, length(summary->>'$.text')::INTEGER AS len
       FROM read_parquet('${join(dir, "ent_proj_runs.parquet")}') ORDER BY run_id`,
    );
    assert.deepStrictEqual(
      got,
      [0, 1, 2].map((i) => ({ run_id: `r${i}`, notes: true, same: true, keys: ["wide", "i", odd], len: 500_000 })),
    );
  });

  test("system metrics file, and an empty project", async () => {
    const dir = await tempDir();
    const w = await openProjectWriter({
      format: "parquet",
      outputDir: dir,
      entity: "ent",
      project: "proj",
      withHistory: true,
      withSystemMetrics: true,
    });
    await w.writeRun(
      sampleRun("r1"),
      [],
      [
        { run_id: "r1", timestamp: 1700000000, runtime: 1, metrics: { "system.cpu": 12.5, "system.gpu.0.gpu": 99 } },
        { run_id: "r1", timestamp: 1700000030, runtime: 31, metrics: { "system.cpu": Number.NaN, runtime: 3 } },
      ],
    );
    const { files } = await w.close();
    assert.deepStrictEqual(files.sort(), [
      join(dir, "ent_proj_histories.parquet"),
      join(dir, "ent_proj_runs.parquet"),
      join(dir, "ent_proj_system_metrics.parquet"),
    ]);
    const sys = join(dir, "ent_proj_system_metrics.parquet");
    assert.deepStrictEqual(
      (await schema(sys)).map(([n, t]) => `${n}:${t}`),
      [
        "run_id:VARCHAR",
        "timestamp:TIMESTAMP WITH TIME ZONE",
        "runtime:DOUBLE",
        "system.cpu:DOUBLE",
        "system.gpu.0.gpu:BIGINT",
        "metrics.runtime:BIGINT",
      ],
    );
    const got = await rows(
      `SELECT CAST("system.cpu" AS VARCHAR) AS cpu, "metrics.runtime" AS r FROM read_parquet('${sys}')`,
    );
    assert.deepStrictEqual(got, [
      { cpu: "12.5", r: null },
      { cpu: "nan", r: "3" },
    ]);
    const [h] = await rows(`SELECT count(*) AS n FROM read_parquet('${join(dir, "ent_proj_histories.parquet")}')`);
    assert.equal(h!.n, "0");

    const empty = await tempDir();
    const w2 = await openProjectWriter({
      format: "parquet",
      outputDir: empty,
      entity: "e",
      project: "p",
      withHistory: true,
    });
    await w2.close();
    const [r] = await rows(`SELECT count(*) AS n FROM read_parquet('${join(empty, "e_p_runs.parquet")}')`);
    assert.equal(r!.n, "0");
    assert.deepStrictEqual(
      (await schema(join(empty, "e_p_histories.parquet"))).map(([n]) => n),
      ["run_id", "step", "timestamp", "runtime", "wandb_metadata", "extra"],
    );
  });
});

describe("csv spool", () => {
  test("a run id with a newline switches DuckDB's CSV read to one thread (parallel scans refuse it)", async () => {
    const { CsvSpool } = await import("./csv-spool.js");
    const dir = await tempDir();
    const spool = await CsvSpool.create(join(dir, "x"), [["r", "VARCHAR"]]);
    spool.add(spool.textField("plain"), { a: 1 });
    assert.ok(!spool.readExpr().includes("parallel=false"));
    spool.add(spool.textField("two\nlines"), { a: 2 });
    assert.ok(spool.readExpr().includes("parallel=false"));
    await spool.remove();
  });
});
