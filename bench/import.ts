/**
 * `npx tsx bench/import.ts [--rows N] [--metrics K]`: import speed of one big local `.wandb` file into DuckDB.
 *
 * The file is written by our own framing writer (src/import/log-writer.ts) in the layout wandb-core writes (as in
 * the fixtures test/import/fixtures, written by wandb 0.31 offline): per step three records: a summary
 * `{_wandb.runtime, _runtime}`, a summary with the logged items, then the history record (`_step`, `_runtime`,
 * `_timestamp` and K float metrics as nested_key/value_json items), the items of each record in a different (seeded
 * random, like Go's map order) order; plus a run record and a stats record every 100 steps.
 * `--layout old`: the layout of the first version of this bench (per step the history record, then one summary
 * record with the same items in the same order).
 * It is made once per size and layout in the system temp folder and reused. The timed part is `importPaths` into a
 * fresh DuckDB archive (reading, decoding, writing every row in one transaction), without the Parquet export.
 * DR_WANDB_IMPORT_FAST=0 times the object path (the one the PostgreSQL backend takes) instead of the text-row path.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { mulberry32 as prng } from "../fake-wandb/random.js";
import { openArchive } from "../src/archive/index.js";
import { importPaths } from "../src/import/index.js";
import { LogWriter } from "../src/import/log-writer.js";

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const rows = arg("--rows", 1_000_000);
const metrics = arg("--metrics", 8);
const layoutAt = process.argv.indexOf("--layout");
const layout = layoutAt >= 0 ? process.argv[layoutAt + 1] : "client";
if (layout !== "client" && layout !== "old") throw new Error("--layout is client or old");

function shuffled<T>(items: T[], rand: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function makeLog(path: string): void {
  const w = new LogWriter();
  const start = 1_700_000_000;
  w.record({ num: 1, header: { versionInfo: { producer: "dr-wandb bench" } } });
  w.record({
    num: 2,
    run: {
      runId: "bench001",
      entity: "bench",
      project: "import",
      displayName: "bench run",
      startTime: { seconds: start, nanos: 0 },
      config: { update: [{ key: "lr", valueJson: "0.001" }] },
    },
  });
  let num = 3;
  const rand = prng(15);
  const chunks: Buffer[] = [];
  for (let s = 0; s < rows; s++) {
    const items = [
      { nestedKey: ["_step"], valueJson: String(s) },
      { nestedKey: ["_runtime"], valueJson: String(s * 0.05) },
      { nestedKey: ["_timestamp"], valueJson: String(start + s * 0.05) },
    ];
    for (let k = 0; k < metrics; k++) items.push({ nestedKey: [`m${k}`], valueJson: String(Math.sin(s + k) * 100) });
    if (layout === "old") {
      w.record({ num: num++, history: { item: items, step: { num: s } } });
      w.record({ num: num++, summary: { update: items } });
    } else {
      const runtime = { nestedKey: ["_wandb", "runtime"], valueJson: String(Math.floor(s * 0.05)) };
      w.record({ num: num++, summary: { update: [runtime, { key: "_runtime", valueJson: String(s * 0.05) }] } });
      w.record({ num: num++, summary: { update: shuffled(items, rand) } });
      w.record({ num: num++, history: { item: shuffled(items, rand), step: { num: s } } });
    }
    if (s % 100 === 0) {
      w.record({
        num: num++,
        stats: { timestamp: { seconds: start + s, nanos: 0 }, item: [{ key: "cpu", valueJson: "12.5" }] },
      });
    }
  }
  w.record({ num: num++, exit: { exitCode: 0, runtime: rows / 20 } });
  chunks.push(w.bytes());
  writeFileSync(path, Buffer.concat(chunks));
}

async function main(): Promise<void> {
  const dir = join(tmpdir(), "dr-wandb-bench-import");
  const folder = join(dir, `offline-run-20250101_000000-bench001-${rows}x${metrics}-${layout}`);
  const file = join(folder, "run-bench001.wandb");
  if (!existsSync(file)) {
    mkdirSync(folder, { recursive: true });
    const t0 = performance.now();
    makeLog(file);
    console.error(`wrote ${file} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const out = mkdtempSync(join(tmpdir(), "dr-wandb-bench-import-out-"));
  try {
    const archive = await openArchive({ outputDir: out });
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const r = await importPaths(archive, [file]);
    const secs = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpuSecs = (cpu.user + cpu.system) / 1e6;
    await archive.close();
    const { size } = await import("node:fs").then((fs) => fs.statSync(file));
    const line = {
      scenario: `one run, ${rows} steps x ${metrics} float metrics (+ _step/_runtime/_timestamp), ${layout === "old" ? "old layout: history + 1 summary record per step" : "client layout: 2 summary records + history per step"}`,
      path: process.env.DR_WANDB_IMPORT_FAST === "0" ? "object rows" : "text rows when the archive takes them",
      fileMiB: +(size / 2 ** 20).toFixed(1),
      historyRows: r.historyRows,
      seconds: +secs.toFixed(2),
      rowsPerSecond: Math.round(r.historyRows / secs),
      // CPU time of this process (all threads): on a machine shared with other work, wall time overstates the cost
      cpuSeconds: +cpuSecs.toFixed(2),
      rowsPerCpuSecond: Math.round(r.historyRows / cpuSecs),
      loadAverage: +(loadavg()[0] ?? 0).toFixed(1),
      machine: `${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, Node ${process.version}`,
      date: new Date().toISOString(),
    };
    console.log(JSON.stringify(line));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

await main();
