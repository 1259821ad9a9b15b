/**
 * History rows into DuckDB: the bulk path of loadHistory (rows in step order appended, rows out of step order
 * upserted in chunks) and the staged upsert. Rows are split for storage (history-split.ts: numbers to vals, the
 * rest to JSON text), put into a temporary stage table a data chunk of up to 2,048 rows at a time (columns written
 * from JS typed arrays, no call per value), and moved into history_rows by one INSERT ... SELECT per stage-full.
 * Each large value is planned into the write budget before it is appended (Planner, kept by DuckDBArchive).
 */
import {
  BIGINT,
  DOUBLE,
  type DuckDBAppender,
  type DuckDBConnection,
  DuckDBDataChunk,
  DuckDBListValue,
  DuckDBTimestampTZValue,
  DuckDBVarCharType,
  INTEGER,
  LIST,
  TIMESTAMPTZ,
} from "@duckdb/node-api";
import { LARGE_VALUE_CHARS } from "../model/duckdb-resources.js";
import type { KindTracker } from "../model/flatten.js";
import type { HistoryRecord } from "../model/records.js";
import type { RunKey } from "./base.js";
import { ArchiveError, firstLine } from "./errors.js";
import type { SplitChunk } from "./history-split.js";

/** The write budget's view of large values (DuckDBArchive.unplanned and planValue). */
export interface Planner {
  /** The largest of `texts` in bytes when it is large and above what the budget is planned for, else 0. */
  unplanned(texts: string[]): number;
  planValue(bytes: number): Promise<void>;
}

/** Rows split for storage with the id of their keyset (SqlWrites.splitForStorage). */
export type Splitter = (rows: readonly HistoryRecord[]) => Promise<SplitChunk & { keyset: number | null }>;

const JSON_TYPE = DuckDBVarCharType.create("JSON");
const STAGE_TYPES = [BIGINT, TIMESTAMPTZ, DOUBLE, JSON_TYPE, JSON_TYPE, INTEGER, LIST(DOUBLE), JSON_TYPE];
const STAGE_COLUMNS = `step BIGINT, "timestamp" TIMESTAMPTZ, runtime DOUBLE, wandb_metadata JSON, extra JSON,
  keyset INTEGER, vals DOUBLE[], rest JSON`;
/** Rows of one data chunk (DuckDB's vector size). */
const CHUNK_ROWS = 2048;
/** The stage is moved into history_rows when it holds this many rows or about this many bytes. */
const STAGE_ROWS = 100_000;
const STAGE_BYTES = 24 * 2 ** 20;
const EMPTY = "{}";

/**
 * A temporary stage table of history rows: chunks appended through one Appender, moved into history_rows by
 * `drain()` (`INSERT ... SELECT`), which also empties it.
 */
class Stage {
  private appender: DuckDBAppender | null = null;
  rows = 0;
  bytes = 0;

  constructor(
    private readonly conn: DuckDBConnection,
    private readonly exec: (sql: string, params?: unknown[]) => Promise<unknown>,
    private readonly name: string,
    private readonly record: RunKey,
    private readonly planner: Planner,
  ) {}

  /** Appends a split chunk (its large values planned into the budget first). */
  async append(chunk: SplitChunk & { keyset: number | null }): Promise<void> {
    const rows = chunk.rows;
    if (rows.length === 0) return;
    for (const r of rows) {
      const t = r.rest;
      if (
        (t !== null && t.length >= LARGE_VALUE_CHARS) ||
        r.wandbMetadata.length >= LARGE_VALUE_CHARS ||
        r.extra.length >= LARGE_VALUE_CHARS
      ) {
        const big = this.planner.unplanned([t ?? EMPTY, r.wandbMetadata, r.extra]);
        if (big > 0) await this.planner.planValue(big);
      }
    }
    if (this.appender === null) {
      await this.exec(`CREATE TEMP TABLE IF NOT EXISTS ${this.name} (${STAGE_COLUMNS})`);
      this.appender = await this.conn.createAppender(this.name, "main", "temp");
    }
    for (let off = 0; off < rows.length; off += CHUNK_ROWS) {
      const n = Math.min(CHUNK_ROWS, rows.length - off);
      const dc = DuckDBDataChunk.create(STAGE_TYPES, n);
      const v = STAGE_TYPES.map((_, i) => dc.getColumnVector(i));
      const [step, ts, runtime, wm, extra, keyset, vals, rest] = v as [
        (typeof v)[number],
        (typeof v)[number],
        (typeof v)[number],
        (typeof v)[number],
        (typeof v)[number],
        (typeof v)[number],
        (typeof v)[number],
        (typeof v)[number],
      ];
      for (let j = 0; j < n; j++) {
        const r = rows[off + j]!;
        step.setItem(j, BigInt(r.step));
        ts.setItem(j, r.micros === null ? null : new DuckDBTimestampTZValue(BigInt(r.micros)));
        runtime.setItem(j, r.runtime);
        // the usual {} is stored by the INSERT, not passed value by value
        wm.setItem(j, r.wandbMetadata === EMPTY ? null : r.wandbMetadata);
        extra.setItem(j, r.extra === EMPTY ? null : r.extra);
        keyset.setItem(j, chunk.keyset);
        vals.setItem(j, chunk.keyset === null ? null : new DuckDBListValue(r.vals));
        rest.setItem(j, r.rest);
        this.bytes += 64 + r.vals.length * 8 + (r.rest?.length ?? 0) + r.wandbMetadata.length + r.extra.length;
      }
      for (const x of v) x.flush();
      this.appender.appendDataChunk(dc);
      this.rows += n;
    }
  }

  get full(): boolean {
    return this.rows >= STAGE_ROWS || this.bytes >= STAGE_BYTES;
  }

  /**
   * Moves the staged rows into history_rows and empties the stage; `replace`: stored rows of the same steps are
   * deleted first (an upsert; not INSERT ... ON CONFLICT, which DuckDB 1.5 stores with -0.0 in a list turned to 0.0).
   */
  async drain(replace = false): Promise<void> {
    if (this.appender !== null) {
      this.appender.flushSync();
      this.appender.closeSync();
      this.appender = null;
    }
    if (this.rows === 0) return;
    const { entity, project, run_id } = this.record;
    if (replace) {
      await this.exec(
        `DELETE FROM history_rows WHERE entity = $1 AND project = $2 AND run_id = $3 AND step IN (SELECT step FROM ${this.name})`,
        [entity, project, run_id],
      );
    }
    await this.exec(
      `INSERT INTO history_rows (entity, project, run_id, step, "timestamp", runtime, wandb_metadata, extra, keyset, vals, rest)
       SELECT $1, $2, $3, step, "timestamp", runtime,
              coalesce(wandb_metadata, CAST('{}' AS JSON)), coalesce(extra, CAST('{}' AS JSON)), keyset, vals, rest
       FROM ${this.name}`,
      [entity, project, run_id],
    );
    // On an error the caller rolls back, which empties the stage too (a DELETE would only hide the error).
    await this.exec(`DELETE FROM ${this.name}`);
    this.rows = 0;
    this.bytes = 0;
  }

  /** After an error: the appender closed without its error hiding the first one. */
  abandon(): void {
    if (this.appender !== null) closeQuietly(this.appender);
    this.appender = null;
  }
}

/**
 * Appends a run's batches to history_rows after step `max` (the highest step kept or written); rows at or below the
 * highest step seen go to `upsert` in chunks of 1,000. Returns the number of rows taken. The caller's transaction
 * is rolled back on an error.
 */
export async function appendHistory(
  conn: DuckDBConnection,
  exec: (sql: string, params?: unknown[]) => Promise<unknown>,
  record: RunKey,
  batches: AsyncIterable<HistoryRecord[]> | Iterable<HistoryRecord[]>,
  maxIn: number,
  tracker: KindTracker,
  planner: Planner,
  split: Splitter,
  upsert: (rows: HistoryRecord[]) => Promise<void>,
): Promise<number> {
  let max = maxIn;
  let n = 0;
  const stage = new Stage(conn, exec, "dr_wandb_stage_history", record, planner);
  let pending: HistoryRecord[] = [];
  const outOfOrder = new Map<number, HistoryRecord>();
  const flushPending = async () => {
    if (pending.length === 0) return;
    const rows = pending;
    pending = [];
    await stage.append(await split(rows));
    if (stage.full) await stage.drain();
  };
  const flushOutOfOrder = async () => {
    if (outOfOrder.size === 0) return;
    // rows appended before come first: an out-of-order row of the same step overwrites them
    await flushPending();
    await stage.drain();
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
          pending.push(step === row.step ? row : { ...row, step });
          if (pending.length >= CHUNK_ROWS) await flushPending();
        } else {
          outOfOrder.set(step, { ...row, step });
          if (outOfOrder.size >= 1000) await flushOutOfOrder();
        }
      }
    }
    await flushPending();
    await stage.drain();
    await flushOutOfOrder();
  } catch (e) {
    stage.abandon();
    if (e instanceof Error && /Constraint|Conversion|Invalid Input/i.test(e.message)) {
      throw new ArchiveError("WRITE", `DuckDB: ${firstLine(e)}`, { cause: e });
    }
    throw appendError(e);
  }
  return n;
}

/**
 * Upserts history rows through the stage: the stored rows of their steps deleted, then one INSERT; the JSON text is
 * stored as appended rows store it (a VALUES insert would CAST it to JSON, which refuses a lone surrogate's \udXXX
 * escape that stringifyStrict writes). `rows` hold each step once.
 */
export async function upsertHistoryStaged(
  conn: DuckDBConnection,
  exec: (sql: string, params?: unknown[]) => Promise<unknown>,
  record: RunKey,
  rows: HistoryRecord[],
  planner: Planner,
  split: Splitter,
): Promise<void> {
  if (rows.length === 0) return;
  const stage = new Stage(conn, exec, "dr_wandb_stage_history_upsert", record, planner);
  try {
    for (let i = 0; i < rows.length; i += CHUNK_ROWS) await stage.append(await split(rows.slice(i, i + CHUNK_ROWS)));
    await stage.drain(true);
  } catch (e) {
    stage.abandon();
    throw appendError(e);
  }
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
