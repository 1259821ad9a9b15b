/**
 * Test helper (src/output/writer.test.ts): writes a project slowly and reports progress on stdout, so that the test
 * can SIGKILL it at chosen moments: after each progress line it waits for a line on stdin, so a kill on a line
 * lands exactly there.
 * Usage: node --import tsx test/support/writer-crash-child.ts FORMAT OUTPUT_DIR RUNS ROWS_PER_RUN
 */

import { createInterface } from "node:readline";
import type { HistoryRecord } from "../../src/model/records.js";
import { type DownloadFormat, openProjectWriter } from "../../src/output/writer.js";
import { sampleRow, sampleRun } from "./writer-fixtures.js";

const [format, outputDir, runsArg, rowsArg] = process.argv.slice(2);
const runs = Number(runsArg);
const rowsPerRun = Number(rowsArg);

function* history(runId: string): Generator<HistoryRecord[]> {
  for (let s = 0; s < rowsPerRun; s += 500) {
    const batch: HistoryRecord[] = [];
    for (let i = s; i < Math.min(rowsPerRun, s + 500); i++) {
      const m: Record<string, number | string> = { tag: `new-${runId}` };
      for (let k = 0; k < 20; k++) m[`metric_${k}`] = i * 1000 + k + 0.5;
      batch.push(sampleRow(runId, i, m));
    }
    yield batch;
  }
}

const w = await openProjectWriter({
  format: format as DownloadFormat,
  outputDir: outputDir!,
  entity: "ent",
  project: "proj",
  withHistory: true,
});
/** Prints a progress line, then waits for the test's go-ahead (a line on stdin): a kill lands exactly there. */
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function mark(line: string): Promise<void> {
  process.stdout.write(`${line}\n`);
  await lines.next();
}
for (let r = 0; r < runs; r++) {
  await w.writeRun(sampleRun(`run${r}`), history(`run${r}`));
  await mark(`run ${r}`);
}
await mark("closing");
await w.close();
await mark("closed");
process.exit(0);
