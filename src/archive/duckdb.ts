/**
 * The DuckDB backend (the embedded default): one file, one read-write process at a time (DuckDB's own file lock,
 * plus a registry for a second open in the same process: duckdb-open.ts). History is bulk-loaded as data chunks
 * (duckdb-append.ts); parquet exports (parquet-ingest.ts) and text row files (text-ingest.ts, writeRunStreamed) with
 * SQL. Values read back: duckdb-values.ts.
 */
import type { DuckDBConnection, DuckDBInstance, DuckDBValue } from "@duckdb/node-api";
import {
  duckdbMemoryLimit,
  LARGE_VALUE_CHARS,
  largestStoredValue,
  largeValueBytes,
  writeMemoryFor,
} from "../model/duckdb-resources.js";
import { type KindTracker, quoteLiteral } from "../model/flatten.js";
import { traceDuckDB, untraceDuckDB } from "../model/memory-trace.js";
import { withDecodedSources } from "../model/parquet-decode.js";
import type { HistoryRecord } from "../model/records.js";
import {
  columnarEnabled,
  type DuckDBExportSource,
  type ExportFilter,
  type HistoryWrite,
  type ParquetSource,
  type QueryResult,
  type StreamedRunWrite,
} from "./archive.js";
import { type RunKey, SqlArchive } from "./base.js";
import type { Cast } from "./columns.js";
import { appendError, appendHistory, closeQuietly, type Planner, upsertHistoryStaged } from "./duckdb-append.js";
import { createInstance, registerOpen, releaseOpen } from "./duckdb-open.js";
import { plainDuckDBValue } from "./duckdb-values.js";
import { ArchiveError, firstLine } from "./errors.js";
import { ingestParquet } from "./parquet-ingest.js";
import { DUCKDB_DIALECT } from "./schema.js";
import { insertTextRows } from "./text-ingest.js";
import { maskToKinds, type Row } from "./values.js";

export { duckdbResourceSettings, microsToIso, plainDuckDBValue } from "./duckdb-values.js";

export class DuckDBArchive extends SqlArchive implements DuckDBExportSource {
  readonly kind = "duckdb" as const;
  protected override readonly ingestsParquet = columnarEnabled();
  /** Parquet sources inserted with SQL (and their rows), and sources decoded to rows instead. */
  readonly parquetIngest = { sources: 0, rows: 0, decoded: 0 };

  /**
   * The largest value the archive holds or is writing, in bytes (an upper bound: DuckDB's column statistics at open,
   * then every large value appended): the write budget is planned from it (writeMemoryFor), for the writes and for
   * the checkpoints that rewrite the value's blocks later, and it never goes down while the archive is open.
   */
  private largestValueBytes = 0;
  /** The budget planning handed to the history appends (duckdb-append.ts). */
  private readonly planner: Planner = {
    unplanned: (texts) => this.unplanned(texts),
    planValue: (bytes) => this.planValue(bytes),
  };

  private constructor(
    readonly location: string,
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
    readOnly: boolean,
  ) {
    super(DUCKDB_DIALECT, readOnly);
  }

  static async open(pathIn: string, readOnly: boolean): Promise<DuckDBArchive> {
    const { path, instance, held } = await createInstance(pathIn, readOnly);
    traceDuckDB(instance);
    let conn: DuckDBConnection | undefined;
    try {
      const c = await instance.connect();
      conn = c;
      await c.run("SET TimeZone = 'UTC'");
      const a = new DuckDBArchive(path, instance, c, readOnly);
      await a.migrate();
      await a.planValue(await largestStoredValue(c));
      registerOpen(path, readOnly, held);
      return a;
    } catch (e) {
      await untraceDuckDB(instance);
      conn?.closeSync();
      instance.closeSync();
      throw e;
    }
  }

  /** Plans the write budget for a value of `bytes` before it is appended (see largestValueBytes). */
  private async planValue(bytes: number): Promise<void> {
    if (bytes <= this.largestValueBytes) return;
    const before = writeMemoryFor(this.largestValueBytes);
    this.largestValueBytes = bytes;
    const limit = writeMemoryFor(bytes);
    if (limit !== before) await this.exec(`SET memory_limit = ${quoteLiteral(limit)}`);
  }

  /** The largest of `texts` in bytes when it is large and above what the budget is planned for, else 0. */
  private unplanned(texts: string[]): number {
    let big = 0;
    for (const t of texts) if (t.length >= LARGE_VALUE_CHARS) big = Math.max(big, largeValueBytes(t));
    return big > this.largestValueBytes ? big : 0;
  }

  protected async exec(sql: string, params?: unknown[]): Promise<number> {
    try {
      return Number((await this.conn.run(sql, params as DuckDBValue[] | undefined)).rowsChanged);
    } catch (e) {
      throw new ArchiveError("QUERY", `DuckDB: ${firstLine(e)}`, { cause: e });
    }
  }

  /**
   * Bulk insert: the rows go through the Appender into a temp table of text columns, then one INSERT ... SELECT casts
   * them as the VALUES path would (a prepared statement with thousands of parameters costs far more to bind).
   */
  protected override async insertRows(
    table: string,
    cols: [string, Cast][],
    rows: unknown[][],
    tail: string,
  ): Promise<void> {
    if (rows.length === 0) return;
    const stage = `dr_wandb_stage_${table}`;
    let largest = 0;
    for (const row of rows)
      for (const v of row) if (typeof v === "string") largest = Math.max(largest, largeValueBytes(v));
    await this.planValue(largest);
    // JSON columns are staged as JSON (the Appender stores our JSON text as it is): a CAST of VARCHAR to JSON parses
    // and rewrites the text, which takes over 4x the size of a large value (256 MiB for one of 60 MB).
    const stageType = (c: Cast) => (c === "json" ? "JSON" : "VARCHAR");
    await this.exec(
      `CREATE TEMP TABLE IF NOT EXISTS ${stage} (${cols.map(([, c], i) => `c${i} ${stageType(c)}`).join(", ")})`,
    );
    const appender = await this.conn.createAppender(stage, "main", "temp");
    try {
      for (const row of rows) {
        for (const v of row) {
          if (v === null || v === undefined) appender.appendNull();
          else if (typeof v === "string") appender.appendVarchar(v);
          else if (typeof v === "number" && Number.isInteger(v)) appender.appendVarchar(BigInt(v).toString());
          else appender.appendVarchar(String(v));
        }
        appender.endRow();
      }
      appender.flushSync();
      appender.closeSync();
    } catch (e) {
      closeQuietly(appender); // after a failed flush, closing fails too ("transaction is aborted"): keep the first error
      throw appendError(e);
    }
    const select = cols.map(([, c], i) => (c === "json" ? `c${i}` : this.cast(`c${i}`, c))).join(", ");
    // On an error the caller rolls back, which empties the stage too (a DELETE would only hide the error).
    await this.exec(
      `INSERT INTO "${table}" (${cols.map(([c]) => `"${c}"`).join(", ")}) SELECT ${select} FROM ${stage} ${tail}`,
    );
    await this.exec(`DELETE FROM ${stage}`);
  }

  protected async rows(sql: string, params?: unknown[]): Promise<Row[]> {
    let reader: Awaited<ReturnType<DuckDBConnection["runAndReadAll"]>>;
    try {
      reader = await this.conn.runAndReadAll(sql, params as DuckDBValue[] | undefined);
    } catch (e) {
      throw new ArchiveError("QUERY", `DuckDB: ${firstLine(e)}`, { cause: e });
    }
    const names = reader.columnNames();
    return reader.getRows().map((r) => {
      const o: Row = {};
      names.forEach((n, i) => {
        o[n] = plainDuckDBValue(r[i]!);
      });
      return o;
    });
  }

  protected async tableNames(): Promise<string[]> {
    const r = await this.rows(
      "SELECT table_name AS t FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' AND NOT temporary",
    );
    return r.map((x) => String(x.t));
  }

  query(sql: string): Promise<QueryResult> {
    return this.queue.run(async () => {
      this.ensureOpen();
      let reader: Awaited<ReturnType<DuckDBConnection["runAndReadAll"]>>;
      try {
        reader = await this.conn.runAndReadAll(sql);
      } catch (e) {
        throw new ArchiveError("QUERY", firstLine(e), { cause: e });
      }
      return { columns: reader.columnNames(), rows: reader.getRows().map((r) => r.map(plainDuckDBValue)) };
    });
  }

  protected async loadHistory(record: RunKey, history: HistoryWrite, tracker: KindTracker): Promise<number> {
    let max = history.replace ? Number.NEGATIVE_INFINITY : Math.trunc(history.fromStep) - 1;
    let n = 0;
    if (history.textRows !== undefined) {
      const t = await insertTextRows(
        (sql, params) => this.exec(sql, params),
        record,
        history.textRows,
        max,
        tracker,
        (keys) => this.keysets.id(record.entity, record.project, keys),
      );
      n += t.rows;
      max = t.max;
    }
    // Parquet exports first (their steps precede the batches'), inserted with SQL; what the columnar ingest does
    // not take with certainty is decoded and appended like the batches.
    const decode: ParquetSource[] = [];
    for (const src of history.parquetSources ?? []) {
      // Only a range above every step kept or already written can be inserted without conflicts.
      if (src.minStep <= max) {
        decode.push(src);
        continue;
      }
      let done: Awaited<ReturnType<typeof ingestParquet>>;
      try {
        done = await ingestParquet(this.conn, record, src, (keys) =>
          this.keysets.id(record.entity, record.project, keys),
        );
      } catch (e) {
        throw new ArchiveError("WRITE", `DuckDB: parquet ingest: ${firstLine(e)}`, { cause: e });
      }
      if (done === null) {
        decode.push(src);
        continue;
      }
      this.parquetIngest.sources++;
      this.parquetIngest.rows += done.rows;
      n += done.rows;
      if (done.rows > 0) max = Math.max(max, done.maxStep);
      for (const [key, mask] of done.kinds) tracker.observeKind(key, maskToKinds(mask));
    }
    this.parquetIngest.decoded += decode.length;
    const batches = decode.length > 0 ? withDecodedSources(decode, record.run_id, history.batches) : history.batches;
    const appended = await appendHistory(
      this.conn,
      (sql, params) => this.exec(sql, params),
      record,
      batches,
      max,
      tracker,
      this.planner,
      (rows) => this.splitForStorage(record, rows),
      (rows) => this.upsertHistoryRows(record, rows),
    );
    return n + appended;
  }

  /**
   * Upserts history rows through the Appender into a temp table of the history's column types, then one INSERT ...
   * ON CONFLICT: the JSON text is stored as the Appender stores appended rows (a VALUES insert would CAST it to
   * JSON, which refuses a lone surrogate's \udXXX escape that stringifyStrict writes).
   */
  protected override async upsertHistoryRows(record: RunKey, rows: HistoryRecord[]): Promise<void> {
    await upsertHistoryStaged(
      this.conn,
      (sql, params) => this.exec(sql, params),
      record,
      rows,
      this.planner,
      (chunk) => this.splitForStorage(record, chunk),
    );
  }

  /** Archive.writeRunStreamed: the history first (text rows included: src/archive/text-ingest.ts). */
  writeRunStreamed(write: StreamedRunWrite): Promise<{ historyRows: number }> {
    return this.streamedWrite(write);
  }

  withDuckDBTables<T>(_filter: ExportFilter, fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    return this.queue.run(async () => {
      this.ensureOpen();
      // What the sync wrote goes to the file first, so that the export's budget is not spent on unflushed blocks.
      if (!this.readOnly) await this.conn.run("CHECKPOINT").catch(() => undefined);
      // Exports get the larger budget (wide row groups); the write budget comes back afterwards.
      await this.conn.run(`SET memory_limit = ${quoteLiteral(duckdbMemoryLimit("export"))}`);
      try {
        return await fn(this.conn);
      } finally {
        await this.conn
          .run(`SET memory_limit = ${quoteLiteral(writeMemoryFor(this.largestValueBytes))}`)
          .catch(() => undefined);
      }
    });
  }

  protected async closeConnection(): Promise<void> {
    try {
      await untraceDuckDB(this.instance);
      this.conn.closeSync();
      this.instance.closeSync();
    } finally {
      releaseOpen(this.location);
    }
  }
}
