/**
 * The archive schema, as an ordered list of migrations shared by both backends. Each migration is applied once, in
 * order, inside one transaction together with its row in `schema_migrations`. Never edit a released migration: add a
 * new one at the end.
 */
import type { ArchiveKind } from "./archive.js";

export interface Dialect {
  kind: ArchiveKind;
  /** The JSON column type (JSON in DuckDB, JSONB in PostgreSQL). */
  json: string;
  double: string;
  textArray: string;
}

export const DUCKDB_DIALECT: Dialect = { kind: "duckdb", json: "JSON", double: "DOUBLE", textArray: "VARCHAR[]" };
export const POSTGRES_DIALECT: Dialect = {
  kind: "postgres",
  json: "JSONB",
  double: "DOUBLE PRECISION",
  textArray: "TEXT[]",
};

export interface Migration {
  version: number;
  description: string;
  statements: (d: Dialect) => string[];
}

/** Every table dr-wandb creates (a database holding some of these but no schema_migrations is not ours). */
export const ARCHIVE_TABLES = [
  "schema_migrations",
  "runs",
  "history",
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
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  description TEXT NOT NULL,
  applied_at TIMESTAMPTZ NOT NULL
)`;
