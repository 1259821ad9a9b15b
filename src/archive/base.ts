/**
 * What the two backends share: SqlArchive, the SQL of every operation except bulk history loading, and the
 * one-operation-at-a-time queue. Column catalogues are columns.ts, value conversions values.ts, the migration runner
 * migrate.ts.
 * Over 400 lines on purpose: it is one class whose write methods are the steps of writeRun's single transaction on
 * one connection and queue; split across files, a newcomer could no longer read a transaction in one place.
 */
import type { DuckDBConnection } from "@duckdb/node-api";
import { KindTracker } from "../model/flatten.js";
import type { JsonValue } from "../model/json.js";
import type { FileRecord, HistoryRecord, RunRecord, SystemMetricsRecord } from "../model/records.js";
import type {
  Archive,
  ArchiveKind,
  ArchiveStatus,
  ExportFilter,
  HistoryWrite,
  ProjectStatus,
  QueryResult,
  RunSyncState,
  RunWrite,
  StreamedRunWrite,
  SyncLogEntry,
} from "./archive.js";
import {
  type Cast,
  colList,
  FILE_COLUMNS,
  HISTORY_COLUMNS,
  paramRuns,
  paramState,
  q,
  RUN_COLUMNS,
  runWeight,
  STATE_COLUMNS,
  SYSTEM_COLUMNS,
} from "./columns.js";
import { ArchiveError } from "./errors.js";
import { migrateSchema } from "./migrate.js";
import { withDecodedSources } from "./parquet-ingest.js";
import type { Dialect } from "./schema.js";
import { jsonText, kindsToMask, type Row, toIsoOrNull, toNumber, tsText, unixToIso } from "./values.js";
import type { ViewerReads } from "./viewer.js";
import { ViewerSql } from "./viewer-reads.js";

/** The key of a run's rows (what the history writes need of its record). */
export type RunKey = Pick<RunRecord, "entity" | "project" | "run_id">;

/** Runs async operations one at a time, in call order (one connection, one transaction at a time). */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

export interface BackendOptions {
  readOnly: boolean;
}

/** The SQL-level archive; subclasses supply the connection and the bulk history path. */
export abstract class SqlArchive implements Archive {
  abstract readonly kind: ArchiveKind;
  abstract readonly location: string;
  protected readonly queue = new SerialQueue();
  protected closed = false;
  schemaVersion = 0;

  constructor(
    protected readonly dialect: Dialect,
    protected readonly readOnly: boolean,
  ) {}

  /** Runs a statement (the driver's error becomes a one-line ArchiveError). */
  protected abstract exec(sql: string, params?: unknown[]): Promise<void>;
  /** Runs a query; values are plain JS (numbers, bigints beyond 2^53, ISO strings for timestamps, JSON as text). */
  protected abstract rows(sql: string, params?: unknown[]): Promise<Row[]>;
  /** True when loadHistory takes `history.parquetSources` itself; otherwise writeRun decodes them to batches. */
  protected readonly ingestsParquet: boolean = false;
  /** Deletes (per `history`) and bulk-inserts one run's history inside the open transaction. */
  protected abstract loadHistory(record: RunKey, history: HistoryWrite, tracker: KindTracker): Promise<number>;
  abstract query(sql: string): Promise<QueryResult>;
  abstract withDuckDBTables<T>(filter: ExportFilter, fn: (conn: DuckDBConnection) => Promise<T>): Promise<T>;
  protected abstract closeConnection(): Promise<void>;
  /** Names of the tables in the database's default schema. */
  protected abstract tableNames(): Promise<string[]>;

  /** The text stored in a JSON column (strict JSON; the PostgreSQL backend also replaces U+0000, which JSONB refuses). */
  protected json(v: JsonValue | undefined): string {
    return jsonText(v);
  }

  protected cast(p: string, c: Cast): string {
    switch (c) {
      case "text":
        return p;
      case "ts":
        return `CAST(${p} AS TIMESTAMPTZ)`;
      case "json":
        return `CAST(${p} AS ${this.dialect.json})`;
      case "bigint":
        return `CAST(${p} AS BIGINT)`;
      case "bool":
        return `CAST(${p} AS BOOLEAN)`;
      case "double":
        return `CAST(${p} AS ${this.dialect.double})`;
      case "tags":
        return this.dialect.kind === "duckdb"
          ? `from_json(CAST(${p} AS VARCHAR), '["VARCHAR"]')`
          : `ARRAY(SELECT jsonb_array_elements_text(CAST(${p} AS JSONB)))`;
    }
  }

  /** `(cast($1), cast($2), ...), (...)` for `rows` rows of `cols`. */
  protected valuesSql(cols: [string, Cast][], rows: number): string {
    const out: string[] = [];
    let i = 1;
    for (let r = 0; r < rows; r++) {
      out.push(`(${cols.map(([, c]) => this.cast(`$${i++}`, c)).join(", ")})`);
    }
    return out.join(",\n");
  }

  protected ensureOpen(): void {
    if (this.closed) throw new ArchiveError("CLOSED", "the archive is closed");
  }

  protected ensureWritable(): void {
    this.ensureOpen();
    if (this.readOnly) throw new ArchiveError("WRITE", "the archive was opened read-only");
  }

  // -------------------------------------------------------------------------------------------------------------
  // Schema

  /** Checks the database is ours (or empty), refuses a newer schema, and applies pending migrations (writers only). */
  protected async migrate(): Promise<void> {
    this.schemaVersion = await migrateSchema({
      location: this.location,
      readOnly: this.readOnly,
      dialect: this.dialect,
      exec: (sql, params) => this.exec(sql, params),
      rows: (sql, params) => this.rows(sql, params),
      tableNames: () => this.tableNames(),
      rollbackQuietly: () => this.rollbackQuietly(),
    });
  }

  protected async rollbackQuietly(): Promise<void> {
    try {
      await this.exec("ROLLBACK");
    } catch {
      // no transaction open, or the connection is gone: nothing to undo here
    }
  }

  protected async inTransaction<T>(fn: () => Promise<T>): Promise<T> {
    await this.exec("BEGIN");
    try {
      const out = await fn();
      await this.exec("COMMIT");
      return out;
    } catch (e) {
      await this.rollbackQuietly();
      throw e;
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Writes

  /** Upserts runs rows; `preserve` names columns a stored row keeps (RunWrite.preserve). */
  protected async upsertRuns(
    items: { record: RunRecord; state: RunSyncState; source?: string }[],
    preserve: readonly string[] = [],
  ): Promise<void> {
    const dedup = new Map<string, (typeof items)[number]>();
    for (const it of items) dedup.set(JSON.stringify([it.record.entity, it.record.project, it.record.run_id]), it);
    const all = [...dedup.values()];
    const update = RUN_COLUMNS.slice(3)
      .filter(([c]) => !preserve.includes(c))
      .map(([c]) =>
        c === "deleted_at"
          ? `deleted_at = CASE WHEN excluded.deleted THEN coalesce(runs.deleted_at, excluded.deleted_at) ELSE NULL END`
          : `${q(c)} = excluded.${q(c)}`,
      )
      .join(", ");
    await this.insertRows(
      "runs",
      RUN_COLUMNS,
      all.map((it) => paramRuns(it.record, it.state, (v) => this.json(v), it.source)),
      `ON CONFLICT (entity, project, run_id) DO UPDATE SET ${update}`,
      all.map((it) => runWeight(it.record)),
    );
  }

  /**
   * Inserts rows (each the parameters of `cols`, in order) with `tail` (e.g. an ON CONFLICT clause): here, multi-row
   * VALUES statements of at most 200 rows and about 4 MB of parameters; DuckDB overrides it with a bulk path.
   */
  protected async insertRows(
    table: string,
    cols: [string, Cast][],
    rows: unknown[][],
    tail: string,
    weights?: number[],
  ): Promise<void> {
    let i = 0;
    while (i < rows.length) {
      const start = i;
      let weight = 0;
      while (i < rows.length && i - start < 200 && (i === start || weight < 4_000_000)) {
        weight += weights?.[i] ?? 0;
        i++;
      }
      const chunk = rows.slice(start, i);
      await this.exec(
        `INSERT INTO ${q(table)} (${colList(cols)}) VALUES ${this.valuesSql(cols, chunk.length)}\n         ${tail}`,
        chunk.flat(),
      );
    }
  }

  protected async upsertStates(states: RunSyncState[]): Promise<void> {
    const dedup = new Map<string, RunSyncState>();
    for (const s of states) dedup.set(JSON.stringify([s.entity, s.project, s.run_id]), s);
    const all = [...dedup.values()];
    const update = STATE_COLUMNS.slice(3)
      .map(([c]) => `${q(c)} = excluded.${q(c)}`)
      .join(", ");
    await this.insertRows(
      "sync_state",
      STATE_COLUMNS,
      all.map(paramState),
      `ON CONFLICT (entity, project, run_id) DO UPDATE SET ${update}`,
    );
  }

  /** Upserts history rows (used for rows that arrive out of step order, which the bulk path cannot take). */
  protected async upsertHistoryRows(record: RunKey, rows: HistoryRecord[]): Promise<void> {
    const update = HISTORY_COLUMNS.slice(4)
      .map(([c]) => `${q(c)} = excluded.${q(c)}`)
      .join(", ");
    for (let i = 0; i < rows.length; i += 500) {
      const chunk = rows.slice(i, i + 500);
      const params = chunk.flatMap((r) => [
        record.entity,
        record.project,
        record.run_id,
        Math.trunc(r.step),
        unixToIso(r.timestamp),
        r.runtime,
        this.json(r.wandb_metadata),
        this.json(r.metrics),
        this.json(r.extra),
      ]);
      await this.exec(
        `INSERT INTO history (${colList(HISTORY_COLUMNS)}) VALUES ${this.valuesSql(HISTORY_COLUMNS, chunk.length)}
         ON CONFLICT (entity, project, run_id, step) DO UPDATE SET ${update}`,
        params,
      );
    }
  }

  protected async deleteHistory(record: RunKey, history: HistoryWrite): Promise<void> {
    if (history.replace) {
      await this.exec("DELETE FROM history WHERE entity = $1 AND project = $2 AND run_id = $3", [
        record.entity,
        record.project,
        record.run_id,
      ]);
    } else {
      await this.exec("DELETE FROM history WHERE entity = $1 AND project = $2 AND run_id = $3 AND step >= $4", [
        record.entity,
        record.project,
        record.run_id,
        Math.trunc(history.fromStep),
      ]);
    }
  }

  protected async mergeMetricKeys(entity: string, project: string, tracker: KindTracker): Promise<void> {
    const keys = tracker.keys();
    for (let i = 0; i < keys.length; i += 1000) {
      const chunk = keys.slice(i, i + 1000);
      const params = chunk.flatMap((k) => [entity, project, k, kindsToMask(tracker.kinds(k))]);
      const cols: [string, Cast][] = [
        ["entity", "text"],
        ["project", "text"],
        ["key", "text"],
        ["kinds", "bigint"],
      ];
      await this.exec(
        `INSERT INTO metric_keys (entity, project, key, kinds) VALUES ${this.valuesSql(cols, chunk.length)}
         ON CONFLICT (entity, project, key) DO UPDATE SET kinds = metric_keys.kinds | excluded.kinds`,
        params,
      );
    }
  }

  protected async replaceSystemMetrics(record: RunRecord, rows: SystemMetricsRecord[]): Promise<void> {
    const key = [record.entity, record.project, record.run_id];
    await this.exec("DELETE FROM system_metrics WHERE entity = $1 AND project = $2 AND run_id = $3", key);
    for (let i = 0; i < rows.length; i += 1000) {
      const chunk = rows.slice(i, i + 1000);
      const params = chunk.flatMap((r) => [...key, unixToIso(r.timestamp), r.runtime, this.json(r.metrics)]);
      await this.exec(
        `INSERT INTO system_metrics (${colList(SYSTEM_COLUMNS)}) VALUES ${this.valuesSql(SYSTEM_COLUMNS, chunk.length)}`,
        params,
      );
    }
  }

  protected async replaceFiles(record: RunRecord, files: FileRecord[]): Promise<void> {
    const key = [record.entity, record.project, record.run_id];
    await this.exec("DELETE FROM files WHERE entity = $1 AND project = $2 AND run_id = $3", key);
    const dedup = new Map<string, FileRecord>();
    for (const f of files) dedup.set(f.name, f);
    const all = [...dedup.values()];
    for (let i = 0; i < all.length; i += 1000) {
      const chunk = all.slice(i, i + 1000);
      const params = chunk.flatMap((f) => [
        ...key,
        f.name,
        Math.trunc(f.size ?? 0),
        f.md5,
        tsText(f.updated_at),
        f.local_path,
      ]);
      await this.exec(
        `INSERT INTO files (${colList(FILE_COLUMNS)}) VALUES ${this.valuesSql(FILE_COLUMNS, chunk.length)}`,
        params,
      );
    }
  }

  writeRun(write: RunWrite): Promise<{ historyRows: number }> {
    return this.queue.run(async () => {
      this.ensureWritable();
      const { record } = write;
      if (write.history?.textRows !== undefined) {
        throw new ArchiveError("WRITE", "writeRun takes no history.textRows (use writeRunStreamed)");
      }
      return this.inTransaction(async () => {
        await this.upsertRuns([{ record, state: write.state, source: write.source }], write.preserve ?? []);
        let historyRows = 0;
        if (write.history) {
          const tracker = new KindTracker();
          let history = write.history;
          const sources = history.parquetSources ?? [];
          if (sources.length > 0 && !this.ingestsParquet) {
            history = {
              ...history,
              parquetSources: [],
              batches: withDecodedSources(sources, record.run_id, history.batches),
            };
          }
          historyRows = await this.loadHistory(record, history, tracker);
          await this.mergeMetricKeys(record.entity, record.project, tracker);
        }
        if (write.systemMetrics) await this.replaceSystemMetrics(record, write.systemMetrics);
        if (write.files) await this.replaceFiles(record, write.files);
        await this.upsertStates([write.state]);
        return { historyRows };
      });
    });
  }

  /**
   * writeRunStreamed for backends whose loadHistory takes `history.textRows` (DuckDB): the history first, then
   * `finish()`'s record, metrics, files and state, in one transaction.
   */
  protected streamedWrite(write: StreamedRunWrite): Promise<{ historyRows: number }> {
    return this.queue.run(async () => {
      this.ensureWritable();
      if ((write.history.parquetSources ?? []).length > 0 && !this.ingestsParquet) {
        throw new ArchiveError("WRITE", "writeRunStreamed takes parquetSources only where they are ingested with SQL");
      }
      return this.inTransaction(async () => {
        const tracker = new KindTracker();
        const key = { entity: write.entity, project: write.project, run_id: write.run_id };
        const historyRows = await this.loadHistory(key, write.history, tracker);
        await this.mergeMetricKeys(key.entity, key.project, tracker);
        const rest = write.finish();
        const { record } = rest;
        if (record.entity !== key.entity || record.project !== key.project || record.run_id !== key.run_id) {
          throw new ArchiveError("WRITE", "writeRunStreamed: finish() returned another run");
        }
        await this.upsertRuns([{ record, state: rest.state, source: rest.source }], rest.preserve ?? []);
        if (rest.systemMetrics) await this.replaceSystemMetrics(record, rest.systemMetrics);
        if (rest.files) await this.replaceFiles(record, rest.files);
        await this.upsertStates([rest.state]);
        return { historyRows };
      });
    });
  }

  writeRunRecords(items: { record: RunRecord; state: RunSyncState }[]): Promise<void> {
    return this.queue.run(async () => {
      this.ensureWritable();
      if (items.length === 0) return;
      await this.inTransaction(async () => {
        await this.upsertRuns(items);
        await this.upsertStates(items.map((i) => i.state));
      });
    });
  }

  markDeleted(entity: string, project: string, runIds: string[]): Promise<void> {
    return this.queue.run(async () => {
      this.ensureWritable();
      if (runIds.length === 0) return;
      await this.inTransaction(async () => {
        for (let i = 0; i < runIds.length; i += 1000) {
          const ids = runIds.slice(i, i + 1000);
          const list = ids.map((_, j) => `$${j + 3}`).join(", ");
          await this.exec(
            `UPDATE runs SET deleted = true, deleted_at = coalesce(deleted_at, now())
             WHERE entity = $1 AND project = $2 AND run_id IN (${list}) AND NOT deleted`,
            [entity, project, ...ids],
          );
          await this.exec(
            `UPDATE sync_state SET deleted = true WHERE entity = $1 AND project = $2 AND run_id IN (${list}) AND NOT deleted`,
            [entity, project, ...ids],
          );
        }
      });
    });
  }

  logSync(entry: SyncLogEntry): Promise<void> {
    return this.queue.run(async () => {
      this.ensureWritable();
      await this.exec(
        `INSERT INTO sync_log (entity, project, started_at, finished_at, runs_seen, runs_written, history_rows, requests, options)
         VALUES ($1, $2, CAST($3 AS TIMESTAMPTZ), CAST($4 AS TIMESTAMPTZ), CAST($5 AS BIGINT), CAST($6 AS BIGINT), CAST($7 AS BIGINT), CAST($8 AS BIGINT), $9)`,
        [
          entry.entity,
          entry.project,
          tsText(entry.started_at),
          tsText(entry.finished_at),
          Math.trunc(entry.runs_seen),
          Math.trunc(entry.runs_written),
          Math.trunc(entry.history_rows),
          Math.trunc(entry.requests),
          entry.options,
        ],
      );
    });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Reads

  loadSyncState(entity: string, project: string): Promise<Map<string, RunSyncState>> {
    return this.queue.run(async () => {
      this.ensureOpen();
      const out = new Map<string, RunSyncState>();
      if (this.schemaVersion === 0) return out;
      const rows = await this.rows(
        `SELECT ${colList(STATE_COLUMNS)} FROM sync_state WHERE entity = $1 AND project = $2 ORDER BY run_id`,
        [entity, project],
      );
      for (const r of rows) {
        out.set(String(r.run_id), {
          entity: String(r.entity),
          project: String(r.project),
          run_id: String(r.run_id),
          state: r.state === null ? null : String(r.state),
          heartbeat_at: r.heartbeat_at === null ? null : String(r.heartbeat_at),
          last_step: toNumber(r.last_step),
          history_complete: r.history_complete === true,
          fingerprint: String(r.fingerprint),
          deleted: r.deleted === true,
          synced_at: String(r.synced_at),
          selection: String(r.selection),
        });
      }
      return out;
    });
  }

  viewer(): ViewerReads {
    return new ViewerSql(this.kind, (sql, params) =>
      this.queue.run(async () => {
        this.ensureOpen();
        return this.rows(sql, params);
      }),
    );
  }

  status(): Promise<ArchiveStatus> {
    return this.queue.run(async () => {
      this.ensureOpen();
      const projects = new Map<string, ProjectStatus>();
      const get = (r: Row): ProjectStatus => {
        const k = JSON.stringify([r.entity, r.project]);
        let p = projects.get(k);
        if (!p) {
          p = {
            entity: String(r.entity),
            project: String(r.project),
            runs: 0,
            runsByState: {},
            deletedRuns: 0,
            historyRows: 0,
            lastSyncAt: null,
          };
          projects.set(k, p);
        }
        return p;
      };
      if (this.schemaVersion > 0) {
        for (const r of await this.rows(
          `SELECT entity, project, coalesce(state, 'unknown') AS state, count(*) AS n,
                  sum(CASE WHEN deleted THEN 1 ELSE 0 END) AS deleted, max(synced_at) AS synced
           FROM runs GROUP BY entity, project, coalesce(state, 'unknown') ORDER BY entity, project, 3`,
        )) {
          const p = get(r);
          const n = toNumber(r.n);
          p.runs += n;
          p.runsByState[String(r.state)] = n;
          p.deletedRuns += toNumber(r.deleted);
          const synced = toIsoOrNull(r.synced);
          if (synced && (!p.lastSyncAt || synced > p.lastSyncAt)) p.lastSyncAt = synced;
        }
        for (const r of await this.rows(
          "SELECT entity, project, count(*) AS n FROM history GROUP BY entity, project",
        )) {
          get(r).historyRows = toNumber(r.n);
        }
        for (const r of await this.rows(
          "SELECT entity, project, max(finished_at) AS f FROM sync_log GROUP BY entity, project",
        )) {
          const f = toIsoOrNull(r.f);
          const p = get(r);
          if (f && (!p.lastSyncAt || f > p.lastSyncAt)) p.lastSyncAt = f;
        }
      }
      return {
        kind: this.kind,
        location: this.location,
        schemaVersion: this.schemaVersion,
        projects: [...projects.values()].sort((a, b) =>
          a.entity === b.entity ? a.project.localeCompare(b.project) : a.entity.localeCompare(b.entity),
        ),
      };
    });
  }

  close(): Promise<void> {
    return this.queue.run(async () => {
      if (this.closed) return;
      this.closed = true;
      await this.closeConnection();
    });
  }
}
