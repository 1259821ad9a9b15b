/**
 * SqlArchive: the archive's operations on either backend (Archive in archive.ts), each queued on the one connection
 * and, for writes, one transaction: writeRun and writeRunStreamed run the row writes of sql-writes.ts in order, so a
 * run's whole transaction reads here in one place. The connection layer is sql-base.ts; the bulk history load is
 * each backend's loadHistory.
 */
import type { DuckDBConnection } from "@duckdb/node-api";
import { KindTracker } from "../model/flatten.js";
import { withDecodedSources } from "../model/parquet-decode.js";
import type { RunRecord } from "../model/records.js";
import type {
  Archive,
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
import { colList, STATE_COLUMNS } from "./columns.js";
import { ArchiveError } from "./errors.js";
import { type RunKey, SqlWrites } from "./sql-writes.js";
import { type Row, toIsoOrNull, toNumber, tsText } from "./values.js";
import type { ViewerReads } from "./viewer.js";
import { ViewerSql } from "./viewer-reads.js";

export { type BackendOptions, SerialQueue } from "./sql-base.js";
export type { RunKey } from "./sql-writes.js";

/** The SQL-level archive; subclasses supply the connection and the bulk history path. */
export abstract class SqlArchive extends SqlWrites implements Archive {
  /** True when loadHistory takes `history.parquetSources` itself; otherwise writeRun decodes them to batches. */
  protected readonly ingestsParquet: boolean = false;
  /** Bulk-inserts one run's history inside the open transaction (deleteHistory ran first); returns the rows taken. */
  protected abstract loadHistory(record: RunKey, history: HistoryWrite, tracker: KindTracker): Promise<number>;
  abstract query(sql: string): Promise<QueryResult>;
  abstract withDuckDBTables<T>(filter: ExportFilter, fn: (conn: DuckDBConnection) => Promise<T>): Promise<T>;

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
          const deleted = await this.deleteHistory(record, history);
          historyRows = await this.loadHistory(record, history, tracker);
          await this.mergeMetricKeys(record.entity, record.project, tracker);
          if (deleted > 0 || historyRows > 0) await this.bumpHistoryVersion(record);
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
        const deleted = await this.deleteHistory(key, write.history);
        const historyRows = await this.loadHistory(key, write.history, tracker);
        await this.mergeMetricKeys(key.entity, key.project, tracker);
        if (deleted > 0 || historyRows > 0) await this.bumpHistoryVersion(key);
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
          "SELECT entity, project, count(*) AS n FROM history_rows GROUP BY entity, project",
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
