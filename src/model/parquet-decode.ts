/**
 * The row path of W&B parquet history exports: their rows decoded to HistoryRecords (src/model/parquet-reader.ts, then
 * toHistoryRecord), for the writers and archive backends that do not take the files whole (or a file the columnar
 * SQL of parquet-sql.ts does not map with certainty).
 */
import { ParquetReader } from "./parquet-reader.js";
import { type HistoryRecord, toHistoryRecord } from "./records.js";

/** Downloaded parquet export files of one run and the step range to take from them. */
export interface ParquetSource {
  /** Local parquet files; where two hold the same step, the earlier file's row is kept. */
  paths: readonly string[];
  minStep: number;
  /** Exclusive. */
  maxStep: number;
  /** Keys historyKeys reports as strings (their VARCHAR digits stay strings). */
  stringKeys: readonly string[];
}

/** The rows of parquet sources decoded to records, in order. */
export async function* decodeParquetSources(
  sources: readonly ParquetSource[],
  runId: string,
): AsyncGenerator<HistoryRecord[]> {
  if (sources.length === 0) return;
  const reader = new ParquetReader();
  try {
    for (const src of sources) {
      const batches = await reader.open([...src.paths], {
        minStep: src.minStep,
        maxStep: src.maxStep,
        stringKeys: new Set(src.stringKeys),
      });
      for await (const rows of batches) {
        const out: HistoryRecord[] = [];
        for (const r of rows) {
          const rec = toHistoryRecord(runId, r);
          if (rec) out.push(rec);
        }
        if (out.length > 0) yield out;
      }
    }
  } finally {
    reader.close();
  }
}

/** The decoded rows of `sources`, then `batches`. */
export async function* withDecodedSources(
  sources: readonly ParquetSource[],
  runId: string,
  batches: AsyncIterable<HistoryRecord[]> | Iterable<HistoryRecord[]>,
): AsyncGenerator<HistoryRecord[]> {
  yield* decodeParquetSources(sources, runId);
  yield* batches;
}
