/**
 * The text-row path (src/import/text-rows.ts, DuckDB's writeRunStreamed) stores exactly what the object path stores.
 * One seeded log with every kind of value and row the object path handles (NaN/±Infinity, integers beyond 2^53,
 * Python's number texts, strings with escapes and unicode, nested values, typed values, dotted, nested, duplicate,
 * integer-like and `_` keys, rows without `_step`, steps repeated and going back, `-0`, odd timestamps, a value that
 * does not parse) is imported into two DuckDB archives, one with the text-row path and one without, then grown and
 * imported again (an append); every stored row of every table is compared.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { mulberry32 as prng } from "../../fake-wandb/random.js";
import { type Archive, openArchive, type StreamedRunWrite, type TextRowsFile } from "../../src/archive/index.js";
import { importPaths } from "../../src/import/index.js";
import { LogWriter } from "../../src/import/log-writer.js";
import { canonicalHistorySql, tempDir } from "../helpers.js";

const rand = prng(20261203);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const chance = (p: number) => rand() < p;

const ODD_VALUES = [
  "NaN",
  "Infinity",
  "-Infinity",
  "true",
  "false",
  "null",
  "",
  "0",
  "-0",
  "-0.0",
  "2.0",
  "1e-05",
  "1.5e+20",
  "1e21",
  "0.000001",
  "0.0000001",
  "-0.5",
  "123456789012345",
  "-123456789012345",
  "1234567890123456",
  "9007199254740993",
  "12345678901234567890",
  "-98765432109876543210",
  "1" + "0".repeat(40),
  "0x10",
  "007",
  '"hello"',
  '"tab\\there"',
  '"ünïcode ✓ 日本"',
  '"quote \\" inside"',
  '"\\u0000nul"',
  '"\\ud800 lone"',
  '{"a": 1, "b": [1, 2.5, NaN]}',
  "[1, 2, 3]",
  '{"nested": {"deep": Infinity}}',
  "{bad",
];
const KEYS = ["loss", "acc", "a.b", "ünï", "tab\tkey", "lr", "x y", "", "🙂"];
const ODD_KEYS = ["0", "17", "_custom", "__proto__"];

function metricValue(): string {
  if (chance(0.35)) return String(Math.round(rand() * 1e6) / 1e3); // canonical decimals
  if (chance(0.4)) return String(Math.sin(rand() * 100) * 100); // 16-17 digits
  if (chance(0.3)) return String(Math.floor(rand() * 1000) - 500);
  return pick(ODD_VALUES);
}

type Item = Record<string, unknown>;

function historyItems(step: number, start: number): Item[] {
  const items: Item[] = [];
  const stepText = chance(0.03) ? `${step}.0` : chance(0.02) ? `"${step}"` : String(step);
  if (!chance(0.03)) items.push({ nestedKey: ["_step"], valueJson: stepText });
  if (!chance(0.05)) {
    const rt = step * 0.05;
    items.push({ nestedKey: ["_runtime"], valueJson: pick([String(rt), String(rt), "-0.0", "NaN", `"${rt}"`]) });
  }
  if (!chance(0.05)) {
    const ts = start + step * 0.05 + rand() / 1000;
    const text = pick([String(ts), ts.toExponential(16).replace("e+", "e+0"), ts.toExponential(), "NaN", `"${ts}"`]);
    items.push({ nestedKey: ["_timestamp"], valueJson: text });
  }
  for (const k of KEYS) if (chance(0.6)) items.push({ nestedKey: [k], valueJson: metricValue() });
  if (chance(0.05)) items.push({ key: "plain.key", valueJson: metricValue() });
  if (chance(0.04)) items.push({ nestedKey: [pick(ODD_KEYS)], valueJson: metricValue() });
  if (chance(0.03)) items.push({ nestedKey: ["_wandb"], valueJson: '{"runtime": 3}' });
  if (chance(0.03)) items.push({ nestedKey: ["grp", "x"], valueJson: metricValue() });
  if (chance(0.03)) items.push({ nestedKey: ["loss"], valueJson: metricValue() }); // maybe a duplicate
  if (chance(0.05))
    items.push({
      nestedKey: ["typed"],
      ...pick<Item>([{ number: 1.5 }, { integer: 7 }, { text: "t" }, { boolean: true }, { json: '{"x": NaN}' }]),
    });
  // the client writes items in Go's map order
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** The records of a log of `steps` steps in the client's layout (see bench/import.ts), with odd steps mixed in. */
function records(steps: number): Record<string, unknown>[] {
  const start = 1_700_000_000;
  const out: Record<string, unknown>[] = [
    { num: 1, header: { versionInfo: { producer: "test" } } },
    {
      num: 2,
      run: { runId: "tr0001", entity: "ent", project: "proj", startTime: { seconds: start, nanos: 0 } },
    },
  ];
  let step = 0;
  for (let i = 0; i < steps; i++) {
    if (chance(0.04))
      step = Math.max(0, step - 1 - Math.floor(rand() * 5)); // back
    else if (!chance(0.04)) step += 1 + (chance(0.1) ? Math.floor(rand() * 3) : 0); // else: the same step again
    const items = historyItems(step, start);
    out.push({ summary: { update: [{ nestedKey: ["_wandb", "runtime"], valueJson: String(i) }] } });
    // (a summary value that does not parse stops the import in either path: not what is compared here)
    const summary: Item[] = items.filter((it) => it.valueJson !== "{bad" && chance(0.8));
    out.push({ summary: { update: summary, remove: chance(0.02) ? [{ key: "acc" }] : [] } });
    out.push({ history: { item: items, step: { num: step } } });
    if (i % 50 === 0) {
      out.push({ stats: { timestamp: { seconds: start + i, nanos: 0 }, item: [{ key: "cpu", valueJson: "12.5" }] } });
    }
  }
  return out;
}

function write(file: string, recs: Record<string, unknown>[]): void {
  const w = new LogWriter();
  for (const r of recs) w.record(r);
  writeFileSync(file, w.bytes());
}

const TABLES: Record<string, string> = {
  history: canonicalHistorySql(),
  runs: "SELECT * EXCLUDE (synced_at) FROM runs ORDER BY run_id",
  sync_state: "SELECT * EXCLUDE (synced_at) FROM sync_state ORDER BY run_id",
  metric_keys: "SELECT * FROM metric_keys ORDER BY entity, project, key",
  system_metrics: "SELECT * FROM system_metrics ORDER BY run_id, CAST(timestamp AS VARCHAR)",
};

async function dump(archive: Archive): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const [t, sql] of Object.entries(TABLES)) {
    const r = await archive.query(sql);
    out[t] = r.rows.map((row) => JSON.stringify(row, (_k, v) => (typeof v === "bigint" ? `${v}n` : v)));
  }
  return out;
}

describe("the text-row path stores what the object path stores", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let fast: Archive;
  let slow: Archive;
  const textRows: number[] = [];
  before(async () => {
    dir = await tempDir();
    fast = await openArchive({ outputDir: join(dir.path, "fast") });
    slow = await openArchive({ outputDir: join(dir.path, "slow") });
    // counts the rows that went as text (a pass-through: the archive's own method does the work)
    const streamed = fast.writeRunStreamed!.bind(fast);
    fast.writeRunStreamed = (w: StreamedRunWrite) => {
      const files = w.history.textRows!;
      const counted: Iterable<TextRowsFile> = {
        *[Symbol.iterator]() {
          for (const f of files) {
            textRows.push(f.rows);
            yield f;
          }
        },
      };
      return streamed({ ...w, history: { ...w.history, textRows: counted } });
    };
  });
  after(async () => {
    await fast?.close();
    await slow?.close();
    await dir?.[Symbol.asyncDispose]();
  });

  it("a new run, then the same run grown (an append), row by row", async () => {
    const folder = join(dir.path, "wandb", "offline-run-20250101_000000-tr0001");
    mkdirSync(folder, { recursive: true });
    const file = join(folder, "run-tr0001.wandb");
    const all = records(4000);
    const firstPart = all.slice(0, Math.floor(all.length * 0.6));
    write(file, firstPart);
    const runs = [];
    for (const [archive, textRowsOn] of [
      [fast, true],
      [slow, false],
    ] as const) {
      runs.push(await importPaths(archive, [folder], { textRows: textRowsOn, memoryCells: 3000 }));
    }
    assert.deepEqual(runs[0], runs[1]);
    assert.deepEqual(await dump(fast), await dump(slow));
    const firstText = textRows.reduce((a, b) => a + b, 0);
    // the log mixes both kinds of rows: most as text, many not
    assert.ok(firstText > 1000, `text rows: ${firstText}`);
    assert.ok(runs[0]!.historyRows - firstText > 100, `object rows: ${runs[0]!.historyRows - firstText}`);
    assert.ok(
      runs[0]!.warnings.some((w) => w.includes("does not parse")),
      "a bad value was in the log",
    );

    write(file, [...all, { exit: { exitCode: 0, runtime: 200 } }]);
    const again = [];
    for (const [archive, textRowsOn] of [
      [fast, true],
      [slow, false],
    ] as const) {
      const actions: string[] = [];
      const r = await importPaths(archive, [folder], {
        textRows: textRowsOn,
        onEvent: (e) => e.type === "run" && actions.push(e.action),
      });
      assert.deepEqual(actions, ["appended"]);
      again.push(r);
    }
    assert.deepEqual(again[0], again[1]);
    const a = await dump(fast);
    assert.deepEqual(a, await dump(slow));
    assert.ok(textRows.reduce((x, y) => x + y, 0) > firstText, "the append wrote text rows too");
    // what the comparison covers
    const h = a.history!.join("\n");
    for (const needle of ['\\"NaN\\"', "-Infinity", "12345678901234567890", "ünïcode", '\\"a.b\\"', "-0.0", "\\\\t"]) {
      assert.ok(h.includes(needle), `history holds ${needle}`);
    }
  });
});
