/**
 * `npx tsx bench/import.ts [--rows N] [--metrics K]`: import speed of one big local `.wandb` file into DuckDB.
 *
 * The file is written by our own framing writer (src/import/log-writer.ts) in the layout wandb-core writes: per step
 * one history record (`_step`, `_runtime`, `_timestamp` and K float metrics as nested_key/value_json items) and one
 * summary record with the same items, as the real client does; plus a run record and a stats record every 100 steps.
 * It is made once per size in the system temp folder and reused. The timed part is `importPaths` into a fresh DuckDB
 * archive (reading, decoding, writing every row in one transaction), without the Parquet export.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { openArchive } from "../src/archive/index.js";
import { importPaths } from "../src/import/index.js";
import { LogWriter } from "../src/import/log-writer.js";

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const rows = arg("--rows", 1_000_000);
const metrics = arg("--metrics", 8);

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
  const chunks: Buffer[] = [];
  for (let s = 0; s < rows; s++) {
    const items = [
      { nestedKey: ["_step"], valueJson: String(s) },
      { nestedKey: ["_runtime"], valueJson: String(s * 0.05) },
      { nestedKey: ["_timestamp"], valueJson: String(start + s * 0.05) },
    ];
    for (let k = 0; k < metrics; k++) items.push({ nestedKey: [`m${k}`], valueJson: String(Math.sin(s + k) * 100) });
    w.record({ num: num++, history: { item: items, step: { num: s } } });
    w.record({ num: num++, summary: { update: items } });
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
  const folder = join(dir, `offline-run-20250101_000000-bench001-${rows}x${metrics}`);
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
      scenario: `one run, ${rows} steps x ${metrics} float metrics (+ _step/_runtime/_timestamp), a summary record per step`,
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
