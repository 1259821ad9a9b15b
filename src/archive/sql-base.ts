/**
 * The lowest layer the two backends share: the connection's statements (supplied by each backend), parameter casts,
 * the one-operation-at-a-time queue, the schema check and migrations, and transactions. The row writes are
 * sql-writes.ts, the archive's operations base.ts.
 */
import type { JsonValue } from "../model/json.js";
import type { ArchiveKind } from "./archive.js";
import type { Cast } from "./columns.js";
import { ArchiveError } from "./errors.js";
import { migrateSchema } from "./migrate.js";
import type { Dialect } from "./schema.js";
import { jsonText, type Row } from "./values.js";

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

/** Statements, casts, migrations and transactions on one connection; subclasses supply the connection. */
export abstract class SqlBase {
  abstract readonly kind: ArchiveKind;
  abstract readonly location: string;
  protected readonly queue = new SerialQueue();
  protected closed = false;
  schemaVersion = 0;

  constructor(
    protected readonly dialect: Dialect,
    protected readonly readOnly: boolean,
  ) {}

  /** Runs a statement and returns the rows it changed (the driver's error becomes a one-line ArchiveError). */
  protected abstract exec(sql: string, params?: unknown[]): Promise<number>;
  /** Runs a query; values are plain JS (numbers, bigints beyond 2^53, ISO strings for timestamps, JSON as text). */
  protected abstract rows(sql: string, params?: unknown[]): Promise<Row[]>;
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
      case "int":
        return `CAST(${p} AS INTEGER)`;
      case "doubles":
        return `CAST(${p} AS ${this.dialect.doubleArray})`;
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

  /** Called once a transaction of inTransaction has ended (committed, or rolled back). */
  protected transactionEnded(_committed: boolean): void {}

  protected async inTransaction<T>(fn: () => Promise<T>): Promise<T> {
    await this.exec("BEGIN");
    let out: T;
    try {
      out = await fn();
      await this.exec("COMMIT");
    } catch (e) {
      await this.rollbackQuietly();
      this.transactionEnded(false);
      throw e;
    }
    this.transactionEnded(true);
    return out;
  }
}
