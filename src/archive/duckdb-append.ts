/**
 * History rows into DuckDB through the Appender: the bulk path of loadHistory (rows in step order appended, rows
 * out of step order upserted in chunks) and the staged upsert. Each large value is planned into the write budget
 * before it is appended (Planner, kept by DuckDBArchive).
 */
import { type DuckDBConnection, DuckDBTimestampTZValue } from "@duckdb/node-api";
import { type KindTracker, quoteLiteral } from "../model/flatten.js";
import type { HistoryRecord } from "../model/records.js";
import type { RunKey } from "./base.js";
import { ArchiveError, firstLine } from "./errors.js";
import { jsonText, unixToMicros } from "./values.js";

/** The write budget's view of large values (DuckDBArchive.unplanned and planValue). */
export interface Planner {
  /** The largest of `texts` in bytes when it is large and above what the budget is planned for, else 0. */
  unplanned(texts: string[]): number;
  planValue(bytes: number): Promise<void>;
}

/**
 * Appends a run's batches to `history` after step `max` (the highest step kept or written); rows at or below the
 * highest step seen go to `upsert` in chunks of 1,000. Returns the number of rows taken. The caller's transaction
 * is rolled back on an error.
 */
export async function appendHistory(
  conn: DuckDBConnection,
  record: RunKey,
  batches: AsyncIterable<HistoryRecord[]> | Iterable<HistoryRecord[]>,
  maxIn: number,
  tracker: KindTracker,
  planner: Planner,
  upsert: (rows: HistoryRecord[]) => Promise<void>,
): Promise<number> {
  let max = maxIn;
  let n = 0;
  const appender = await conn.createAppender("history");
  const outOfOrder = new Map<number, HistoryRecord>();
  const flushOutOfOrder = async () => {
    if (outOfOrder.size === 0) return;
    appender.flushSync();
    await upsert([...outOfOrder.values()]);
    outOfOrder.clear();
  };
  try {
    for await (const batch of batches) {
      for (const row of batch) {
        const step = Math.trunc(row.step);
        tracker.observe(row.metrics ?? {});
        n++;
        if (step > max) {
          max = step;
          appender.appendVarchar(record.entity);
          appender.appendVarchar(record.project);
          appender.appendVarchar(record.run_id);
          appender.appendBigInt(BigInt(step));
          const micros = unixToMicros(row.timestamp);
          if (micros === null) appender.appendNull();
          else appender.appendTimestampTZ(new DuckDBTimestampTZValue(BigInt(micros)));
          if (row.runtime === null || row.runtime === undefined) appender.appendNull();
          else appender.appendDouble(Number(row.runtime));
          const texts = historyTexts(row);
          const big = planner.unplanned(texts); // the usual row: three length checks, no await
          if (big > 0) await planner.planValue(big);
          for (const t of texts) appender.appendVarchar(t);
          appender.endRow();
        } else {
          outOfOrder.set(step, { ...row, step });
          if (outOfOrder.size >= 1000) await flushOutOfOrder();
        }
      }
    }
    appender.flushSync();
    await flushOutOfOrder();
    appender.closeSync();
  } catch (e) {
    try {
      appender.clear();
    } catch {
      // the transaction is rolled back by the caller either way
    }
    closeQuietly(appender);
    if (e instanceof Error && /Constraint|Conversion|Invalid Input/i.test(e.message)) {
      throw new ArchiveError("WRITE", `DuckDB: ${firstLine(e)}`, { cause: e });
    }
    throw appendError(e);
  }
  return n;
}

/**
 * Upserts history rows through the Appender into a temp table of the history's column types, then one INSERT ...
 * ON CONFLICT: the JSON text is stored as the Appender stores appended rows (a VALUES insert would CAST it to
 * JSON, which refuses a lone surrogate's \udXXX escape that stringifyStrict writes).
 */
export async function upsertHistoryStaged(
  conn: DuckDBConnection,
  exec: (sql: string) => Promise<void>,
  record: RunKey,
  rows: HistoryRecord[],
  planner: Planner,
): Promise<void> {
  if (rows.length === 0) return;
  const stage = "dr_wandb_stage_history_upsert";
  await exec(
    `CREATE TEMP TABLE IF NOT EXISTS ${stage} (step BIGINT, "timestamp" TIMESTAMPTZ, runtime DOUBLE, wandb_metadata JSON, metrics JSON, extra JSON)`,
  );
  const appender = await conn.createAppender(stage, "main", "temp");
  try {
    for (const row of rows) {
      const texts = historyTexts(row);
      const big = planner.unplanned(texts);
      if (big > 0) await planner.planValue(big);
      appender.appendBigInt(BigInt(Math.trunc(row.step)));
      const micros = unixToMicros(row.timestamp);
      if (micros === null) appender.appendNull();
      else appender.appendTimestampTZ(new DuckDBTimestampTZValue(BigInt(micros)));
      if (row.runtime === null || row.runtime === undefined) appender.appendNull();
      else appender.appendDouble(Number(row.runtime));
      for (const t of texts) appender.appendVarchar(t);
      appender.endRow();
    }
    appender.flushSync();
    appender.closeSync();
  } catch (e) {
    closeQuietly(appender);
    throw appendError(e);
  }
  await exec(
    `INSERT INTO history (entity, project, run_id, step, "timestamp", runtime, wandb_metadata, metrics, extra)
       SELECT ${quoteLiteral(record.entity)}, ${quoteLiteral(record.project)}, ${quoteLiteral(record.run_id)}, step,
              "timestamp", runtime, wandb_metadata, metrics, extra FROM ${stage}
       ON CONFLICT (entity, project, run_id, step) DO UPDATE SET "timestamp" = excluded."timestamp",
         runtime = excluded.runtime, wandb_metadata = excluded.wandb_metadata, metrics = excluded.metrics,
         extra = excluded.extra`,
  );
  await exec(`DELETE FROM ${stage}`);
}

function historyTexts(row: HistoryRecord): string[] {
  return [jsonText(row.wandb_metadata), jsonText(row.metrics), jsonText(row.extra)];
}

export function closeQuietly(appender: { closeSync(): void }): void {
  try {
    appender.closeSync();
  } catch {
    // the appender's transaction failed: the caller rolls it back and reports the first error
  }
}

/** An Appender's error as an ArchiveError (WRITE: e.g. DuckDB out of memory), ArchiveErrors as they are. */
export function appendError(e: unknown): unknown {
  if (e instanceof ArchiveError || !(e instanceof Error)) return e;
  return new ArchiveError("WRITE", `DuckDB: ${firstLine(e)}`, { cause: e });
}
