/**
 * The archive schema, as an ordered list of migrations shared by both backends. Each migration is applied once, in
 * order, inside one transaction together with its row in `schema_migrations`. Never edit a released migration: add a
 * new one at the end.
 */

import { doubleSql } from "../model/sql-json.js";
import type { ArchiveKind } from "./archive.js";
import type { Row } from "./values.js";

export interface Dialect {
  kind: ArchiveKind;
  /** The JSON column type (JSON in DuckDB, JSONB in PostgreSQL). */
  json: string;
  double: string;
  textArray: string;
  /** A list of doubles (DOUBLE[] in DuckDB, DOUBLE PRECISION[] in PostgreSQL). */
  doubleArray: string;
}

export const DUCKDB_DIALECT: Dialect = {
  kind: "duckdb",
  json: "JSON",
  double: "DOUBLE",
  textArray: "VARCHAR[]",
  doubleArray: "DOUBLE[]",
};
export const POSTGRES_DIALECT: Dialect = {
  kind: "postgres",
  json: "JSONB",
  double: "DOUBLE PRECISION",
  textArray: "TEXT[]",
  doubleArray: "DOUBLE PRECISION[]",
};

export interface Migration {
  version: number;
  description: string;
  statements: (d: Dialect) => string[];
  /**
   * When given, asked (inside the migration's transaction) whether this archive needs the statements; when not, the
   * version is recorded without them.
   */
  needed?: (rows: (sql: string) => Promise<Row[]>) => Promise<boolean>;
}

/** Every table dr-wandb creates (a database holding some of these but no schema_migrations is not ours). */
export const ARCHIVE_TABLES = [
  "schema_migrations",
  "runs",
  "history",
  "history_rows",
  "history_keysets",
  "history_versions",
  "system_metrics",
  "files",
  "sync_state",
  "metric_keys",
  "sync_log",
] as const;

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: "initial schema: runs, history, system_metrics, files, sync_state, metric_keys, sync_log",
    statements: (d) => [
      `CREATE TABLE runs (
        entity TEXT NOT NULL,
        project TEXT NOT NULL,
        run_id TEXT NOT NULL,
        run_name TEXT,
        state TEXT,
        created_at TIMESTAMPTZ,
        heartbeat_at TIMESTAMPTZ,
        config ${d.json},
        summary ${d.json},
        wandb_metadata ${d.json},
        system_metrics ${d.json},
        system_attrs ${d.json},
        sweep_info ${d.json},
        tags ${d.textArray},
        "group" TEXT,
        job_type TEXT,
        "user" TEXT,
        notes TEXT,
        "commit" TEXT,
        history_keys ${d.json},
        last_history_step BIGINT,
        storage_id TEXT,
        deleted BOOLEAN NOT NULL DEFAULT false,
        deleted_at TIMESTAMPTZ,
        synced_at TIMESTAMPTZ,
        PRIMARY KEY (entity, project, run_id)
      )`,
      `CREATE TABLE history (
        entity TEXT NOT NULL,
        project TEXT NOT NULL,
        run_id TEXT NOT NULL,
        step BIGINT NOT NULL,
        "timestamp" TIMESTAMPTZ,
        runtime ${d.double},
        wandb_metadata ${d.json},
        metrics ${d.json},
        extra ${d.json},
        PRIMARY KEY (entity, project, run_id, step)
      )`,
      `CREATE TABLE system_metrics (
        entity TEXT NOT NULL,
        project TEXT NOT NULL,
        run_id TEXT NOT NULL,
        "timestamp" TIMESTAMPTZ,
        runtime ${d.double},
        metrics ${d.json}
      )`,
      `CREATE INDEX system_metrics_run ON system_metrics (entity, project, run_id)`,
      `CREATE TABLE files (
        entity TEXT NOT NULL,
        project TEXT NOT NULL,
        run_id TEXT NOT NULL,
        name TEXT NOT NULL,
        size BIGINT,
        md5 TEXT,
        updated_at TIMESTAMPTZ,
        local_path TEXT,
        PRIMARY KEY (entity, project, run_id, name)
      )`,
      `CREATE TABLE sync_state (
        entity TEXT NOT NULL,
        project TEXT NOT NULL,
        run_id TEXT NOT NULL,
        state TEXT,
        heartbeat_at TEXT,
        last_step BIGINT NOT NULL,
        history_complete BOOLEAN NOT NULL,
        fingerprint TEXT NOT NULL,
        deleted BOOLEAN NOT NULL,
        synced_at TEXT NOT NULL,
        selection TEXT NOT NULL,
        PRIMARY KEY (entity, project, run_id)
      )`,
      `CREATE TABLE metric_keys (
        entity TEXT NOT NULL,
        project TEXT NOT NULL,
        key TEXT NOT NULL,
        kinds INTEGER NOT NULL,
        PRIMARY KEY (entity, project, key)
      )`,
      `CREATE TABLE sync_log (
        entity TEXT NOT NULL,
        project TEXT NOT NULL,
        started_at TIMESTAMPTZ,
        finished_at TIMESTAMPTZ,
        runs_seen BIGINT,
        runs_written BIGINT,
        history_rows BIGINT,
        requests BIGINT,
        options TEXT
      )`,
    ],
  },
  {
    version: 2,
    description: "runs.source: where a run came from (wandb-server, or the local .wandb file it was imported from)",
    statements: () => [`ALTER TABLE runs ADD COLUMN source TEXT DEFAULT 'wandb-server'`],
  },
  {
    version: 3,
    description:
      "typed history: history becomes history_rows (metrics renamed rest; numbers in vals, named by history_keysets); history is a view",
    statements: (d) => [
      // Renames and added columns only: an archive of millions of rows is upgraded in milliseconds. Its rows keep
      // every metric in `rest` (keyset and vals NULL), which every reader takes as it takes new rows' rest.
      `ALTER TABLE history RENAME TO history_rows`,
      `ALTER TABLE history_rows RENAME COLUMN metrics TO rest`,
      `ALTER TABLE history_rows ADD COLUMN keyset INTEGER`,
      `ALTER TABLE history_rows ADD COLUMN vals ${d.doubleArray}`,
      `CREATE TABLE history_keysets (
        entity TEXT NOT NULL,
        project TEXT NOT NULL,
        keyset INTEGER NOT NULL,
        keys ${d.textArray} NOT NULL,
        PRIMARY KEY (entity, project, keyset)
      )`,
      historyView(d),
    ],
  },
  {
    version: 4,
    description: "history_versions: a token per run, changed by every write of its history (what an export rewrites)",
    statements: () => [
      `CREATE TABLE history_versions (
        entity TEXT NOT NULL,
        project TEXT NOT NULL,
        run_id TEXT NOT NULL,
        version TEXT NOT NULL,
        PRIMARY KEY (entity, project, run_id)
      )`,
      // every run with history rows has a version (a run without one has none: its delete is skipped)
      `INSERT INTO history_versions (entity, project, run_id, version)
       SELECT DISTINCT entity, project, run_id, '-' FROM history_rows`,
    ],
  },
  {
    version: 5,
    description:
      "DuckDB: a new archive's history_rows has no primary key (the writers keep a run's steps unique; its index cost ~10% of a sync's CPU); an archive holding rows keeps it",
    // DuckDB cannot drop a primary key, so the (empty) table is rebuilt. An archive that already holds rows keeps its
    // key: rebuilding it would copy every row and leave the file about twice its size (DuckDB reuses the freed
    // blocks but never shrinks the file); nothing reads or relies on the key. PostgreSQL keeps its key everywhere:
    // its upserts (ON CONFLICT) name it.
    needed: async (rows) => {
      const r = await rows("SELECT EXISTS (SELECT 1 FROM history_rows) AS has_rows");
      return r[0]?.has_rows !== true;
    },
    statements: (d) =>
      d.kind === "postgres"
        ? []
        : [
            `DROP VIEW history`,
            `CREATE TABLE history_rows_v5 (
              entity TEXT NOT NULL,
              project TEXT NOT NULL,
              run_id TEXT NOT NULL,
              step BIGINT NOT NULL,
              "timestamp" TIMESTAMPTZ,
              runtime ${d.double},
              wandb_metadata ${d.json},
              rest ${d.json},
              extra ${d.json},
              keyset INTEGER,
              vals ${d.doubleArray}
            )`,
            `INSERT INTO history_rows_v5
             SELECT entity, project, run_id, step, "timestamp", runtime, wandb_metadata, rest, extra, keyset, vals
             FROM history_rows`,
            `DROP TABLE history_rows`,
            `ALTER TABLE history_rows_v5 RENAME TO history_rows`,
            historyView(d),
          ],
  },
];

/**
 * The view `history` (the table of schema versions 1-2, for queries written against it): each row's metrics as one
 * strict JSON text again, numbers from vals (NaN/±Infinity as the strings "NaN"/"Infinity"/"-Infinity", integral
 * values without a fraction, as stringifyStrict writes them) before the keys of rest. Key order is not the logged
 * order. DuckDB gives it as VARCHAR (a JSON cast would refuse a lone surrogate's escape), PostgreSQL as JSONB.
 */
function historyView(d: Dialect): string {
  const join = `FROM history_rows h LEFT JOIN history_keysets k
      ON k.entity = h.entity AND k.project = h.project AND k.keyset = h.keyset`;
  if (d.kind === "postgres") {
    return `CREATE VIEW history AS
    SELECT h.entity, h.project, h.run_id, h.step, h."timestamp", h.runtime, h.wandb_metadata,
      coalesce((SELECT jsonb_object_agg(u.k, CASE WHEN u.v = 'NaN'::float8 THEN to_jsonb('NaN'::text)
                  WHEN u.v = 'Infinity'::float8 THEN to_jsonb('Infinity'::text)
                  WHEN u.v = '-Infinity'::float8 THEN to_jsonb('-Infinity'::text) ELSE to_jsonb(u.v) END)
                FROM unnest(k.keys, h.vals) AS u(k, v) WHERE u.v IS NOT NULL), '{}'::jsonb)
        || coalesce(h.rest, '{}'::jsonb) AS metrics,
      h.extra
    ${join}`;
  }
  return `CREATE VIEW history AS
    SELECT h.entity, h.project, h.run_id, h.step, h."timestamp", h.runtime, h.wandb_metadata,
      '{' || concat_ws(',',
        nullif(array_to_string(list_transform(list_filter(list_zip(k.keys, h.vals), lambda p: p[2] IS NOT NULL),
          lambda p: CAST(to_json(p[1]) AS VARCHAR) || ':' || ${doubleSql("p[2]")}), ','), ''),
        nullif(substr(CAST(h.rest AS VARCHAR), 2, length(CAST(h.rest AS VARCHAR)) - 2), '')) || '}' AS metrics,
      h.extra
    ${join}`;
}

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  description TEXT NOT NULL,
  applied_at TIMESTAMPTZ NOT NULL
)`;
