/**
 * The Parquet writer's history rows into its spool (parquet.ts): decoded rows as typed parts (row-parts.ts) where the
 * parts take them, else as CSV text (csv-spool.ts), in the order given.
 */
import type { HistoryRecord, RunRecord } from "../model/records.js";
import type { HistoryBatches } from "./base-writer.js";
import { csvJson, csvNumber } from "./csv-fields.js";
import type { CsvSpool } from "./csv-spool.js";
import { CSV, type RowParts, WRITE_FIRST } from "./row-parts.js";
import { historyExtra, rowTimestamp, type UtcInstant } from "./rows.js";

/** Seconds and microseconds as two CSV fields (both empty for null). */
export function tsFields(t: UtcInstant | null): string {
  return t === null ? "," : `${t.seconds},${t.micros}`;
}

/** Appends one history row to the spool as CSV text; `runId`: the run's id as a CSV field. */
async function csvHistoryRow(h: CsvSpool, run: RunRecord, runId: string, row: HistoryRecord): Promise<void> {
  const t = rowTimestamp(row);
  h.add(
    `${row.run_id === run.run_id ? runId : h.textField(row.run_id)},${row.step},${tsFields(t)},` +
      `${csvNumber(row.runtime)},${csvJson(row.wandb_metadata)},${csvJson(historyExtra(row, t))}`,
    row.metrics,
  );
  if (h.full) await h.drain(); // a batch can be big: never gather more than ~1 MB of text
}

/**
 * Appends a run's history rows to the spool; returns how many. As typed parts (row-parts.ts) when `parts` is given,
 * with the rows the parts refuse as CSV text in their place; else all as CSV text.
 */
export async function historyRows(
  h: CsvSpool,
  run: RunRecord,
  history: HistoryBatches,
  parts: RowParts | null,
): Promise<number> {
  let rows = 0;
  const runId = h.textField(run.run_id);
  for await (const batch of history) {
    for (const row of batch) {
      let done = parts === null ? CSV : parts.add(row);
      if (done === WRITE_FIRST) {
        await parts!.flush();
        done = parts!.add(row);
      }
      if (done === CSV) {
        await parts?.flush(); // the rows before it first
        await csvHistoryRow(h, run, runId, row);
      } else if (parts!.full) await parts!.flush();
    }
    rows += batch.length;
  }
  await parts?.flush();
  return rows;
}
