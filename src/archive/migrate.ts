/**
 * The migration runner: checks that the database is ours (or empty), refuses a schema newer than this dr-wandb knows,
 * and applies the pending MIGRATIONS of schema.ts in one transaction (writers only; a reader of an older schema is
 * told to sync). Run by SqlArchive.migrate() when a backend opens.
 */
import { ArchiveError } from "./errors.js";
import { ARCHIVE_TABLES, CREATE_MIGRATIONS_TABLE, type Dialect, LATEST_SCHEMA_VERSION, MIGRATIONS } from "./schema.js";
import { type Row, toNumber } from "./values.js";

/** What the runner needs of an opened backend. */
export interface MigrationTarget {
  location: string;
  readOnly: boolean;
  dialect: Dialect;
  exec(sql: string, params?: unknown[]): Promise<unknown>;
  rows(sql: string, params?: unknown[]): Promise<Row[]>;
  tableNames(): Promise<string[]>;
  rollbackQuietly(): Promise<void>;
}

/** Returns the schema version the archive has afterwards (0 for an empty database opened read-only). */
export async function migrateSchema(db: MigrationTarget): Promise<number> {
  const tables = new Set((await db.tableNames()).map((t) => t.toLowerCase()));
  if (!tables.has("schema_migrations")) {
    const ours = ARCHIVE_TABLES.filter((t) => tables.has(t));
    const foreign = db.dialect.kind === "duckdb" ? [...tables] : ours;
    if (foreign.length > 0) {
      throw new ArchiveError(
        "CORRUPT",
        `${db.location} is not a dr-wandb archive (it has table${foreign.length > 1 ? "s" : ""} ${foreign.slice(0, 5).join(", ")} but no schema_migrations); refusing to touch it`,
      );
    }
    if (db.readOnly) {
      return 0;
    }
  }
  let current = 0;
  if (tables.has("schema_migrations")) {
    const r = await db.rows("SELECT max(version) AS v FROM schema_migrations");
    current = r[0]?.v === null || r[0]?.v === undefined ? 0 : toNumber(r[0].v);
  }
  if (current > LATEST_SCHEMA_VERSION) {
    throw new ArchiveError(
      "SCHEMA_NEWER",
      `${db.location} has archive schema version ${current}, newer than this dr-wandb knows (${LATEST_SCHEMA_VERSION}); upgrade dr-wandb`,
    );
  }
  if (current === LATEST_SCHEMA_VERSION) {
    return current;
  }
  if (db.readOnly) {
    throw new ArchiveError(
      "SCHEMA_OLDER",
      `${db.location} has archive schema version ${current}, older than ${LATEST_SCHEMA_VERSION}; run a sync to upgrade it`,
    );
  }
  await db.exec("BEGIN");
  try {
    await db.exec(CREATE_MIGRATIONS_TABLE);
    const r = await db.rows("SELECT max(version) AS v FROM schema_migrations");
    const now = r[0]?.v === null || r[0]?.v === undefined ? 0 : toNumber(r[0].v);
    for (const m of MIGRATIONS) {
      if (m.version <= now) continue;
      if (m.needed === undefined || (await m.needed((sql) => db.rows(sql)))) {
        for (const sql of m.statements(db.dialect)) await db.exec(sql);
      }
      await db.exec("INSERT INTO schema_migrations (version, description, applied_at) VALUES ($1, $2, now())", [
        m.version,
        m.description,
      ]);
    }
    await db.exec("COMMIT");
  } catch (e) {
    await db.rollbackQuietly();
    throw e;
  }
  return LATEST_SCHEMA_VERSION;
}
