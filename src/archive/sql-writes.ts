/**
 * The row writes of both backends, each one step of a run's single transaction (base.ts runs them in order inside
 * inTransaction): runs, sync state, history rows out of step order, metric keys, system metrics, files. DuckDB
 * overrides insertRows with its bulk path.
 */
import { randomBytes } from "node:crypto";
import type { KindTracker } from "../model/flatten.js";
import type { FileRecord, HistoryRecord, RunRecord, SystemMetricsRecord } from "../model/records.js";
import type { HistoryWrite, RunSyncState } from "./archive.js";
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
import { type SplitChunk, splitRows } from "./history-split.js";
import { KeysetRegistry } from "./keysets.js";
import { SqlBase } from "./sql-base.js";
import { doublesText, kindsToMask, microsToIsoText, tsText, unixToIso } from "./values.js";

/** The key of a run's rows (what the history writes need of its record). */
export type RunKey = Pick<RunRecord, "entity" | "project" | "run_id">;

/** The write statements of one run's transaction. */
export abstract class SqlWrites extends SqlBase {
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

  /** The keysets of history_rows.vals (keysets.ts), created inside the run's transaction. */
  protected readonly keysets = new KeysetRegistry({
    load: (entity, project) =>
      this.rows("SELECT keyset, keys FROM history_keysets WHERE entity = $1 AND project = $2", [entity, project]),
    insert: (entity, project, id, keys) =>
      this.exec(
        `INSERT INTO history_keysets (entity, project, keyset, keys) VALUES ($1, $2, ${this.cast("$3", "int")}, ${this.cast("$4", "tags")})`,
        [entity, project, id, JSON.stringify(keys)],
      ),
  });

  protected override transactionEnded(committed: boolean): void {
    this.keysets.transactionEnded(committed);
  }

  /** True where text may hold U+0000 (DuckDB); PostgreSQL's text cannot, so such keys keep their values in rest. */
  protected get textHoldsNul(): boolean {
    return this.dialect.kind === "duckdb";
  }

  /** Rows split for history_rows (history-split.ts), with the id of their keyset in the project. */
  protected async splitForStorage(
    record: RunKey,
    rows: readonly HistoryRecord[],
  ): Promise<SplitChunk & { keyset: number | null }> {
    const chunk = splitRows(rows, { allowNul: this.textHoldsNul, json: (t) => this.jsonTextOut(t) });
    const keyset = chunk.keys.length > 0 ? await this.keysets.id(record.entity, record.project, chunk.keys) : null;
    return { ...chunk, keyset };
  }

  /** Stored JSON text as the backend writes it (PostgreSQL replaces U+0000). */
  protected jsonTextOut(text: string): string {
    return text;
  }

  /** Upserts history rows (used for rows that arrive out of step order, which the bulk path cannot take). */
  protected async upsertHistoryRows(record: RunKey, rows: HistoryRecord[]): Promise<void> {
    const update = HISTORY_COLUMNS.slice(4)
      .map(([c]) => `${q(c)} = excluded.${q(c)}`)
      .join(", ");
    const pg = this.dialect.kind === "postgres";
    for (let i = 0; i < rows.length; i += 500) {
      const chunk = await this.splitForStorage(record, rows.slice(i, i + 500));
      const params = chunk.rows.flatMap((r) => [
        record.entity,
        record.project,
        record.run_id,
        r.step,
        microsToIsoText(r.micros),
        r.runtime,
        r.wandbMetadata,
        r.extra,
        chunk.keyset,
        chunk.keyset === null ? null : doublesText(r.vals, pg),
        r.rest,
      ]);
      await this.exec(
        `INSERT INTO history_rows (${colList(HISTORY_COLUMNS)}) VALUES ${this.valuesSql(HISTORY_COLUMNS, chunk.rows.length)}
         ON CONFLICT (entity, project, run_id, step) DO UPDATE SET ${update}`,
        params,
      );
    }
  }

  /** Marks the run's history as changed (history_versions): a new random token, so the next export rewrites it. */
  protected async bumpHistoryVersion(record: RunKey): Promise<void> {
    await this.exec(
      `INSERT INTO history_versions (entity, project, run_id, version) VALUES ($1, $2, $3, $4)
       ON CONFLICT (entity, project, run_id) DO UPDATE SET version = excluded.version`,
      [record.entity, record.project, record.run_id, randomBytes(8).toString("hex")],
    );
  }

  /**
   * Deletes the stored history `history` replaces (all of the run's, or its steps from fromStep); returns the rows.
   * A run without a history version has no rows: nothing to scan for (a new run of a large archive).
   */
  protected async deleteHistory(record: RunKey, history: HistoryWrite): Promise<number> {
    const known = await this.rows(
      "SELECT 1 AS x FROM history_versions WHERE entity = $1 AND project = $2 AND run_id = $3",
      [record.entity, record.project, record.run_id],
    );
    if (known.length === 0) return 0;
    if (history.replace) {
      return this.exec("DELETE FROM history_rows WHERE entity = $1 AND project = $2 AND run_id = $3", [
        record.entity,
        record.project,
        record.run_id,
      ]);
    } else {
      return this.exec("DELETE FROM history_rows WHERE entity = $1 AND project = $2 AND run_id = $3 AND step >= $4", [
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
}
