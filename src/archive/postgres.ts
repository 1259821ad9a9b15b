/**
 * The PostgreSQL backend: one connection per archive; a writer holds a session advisory lock for as long as the
 * archive is open. History is bulk-loaded with COPY FROM STDIN (text format).
 *
 * Over 400 lines on purpose: the PostgreSQL backend in one file, as duckdb.ts is: connection, advisory lock, COPY
 * loading and the copy into DuckDB for exports share one connection and its error mapping.
 */
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import { finished, pipeline } from "node:stream/promises";
import type { DuckDBConnection } from "@duckdb/node-api";
import pg from "pg";
import copyStreams from "pg-copy-streams";
import { duckdbMemoryLimit, duckdbThreads } from "../model/duckdb-resources.js";
import { type KindTracker, quoteIdent, quoteLiteral } from "../model/flatten.js";
import type { JsonValue } from "../model/json.js";
import { traceDuckDB, untraceDuckDB } from "../model/memory-trace.js";
import type { HistoryRecord } from "../model/records.js";
import type { DuckDBExportSource, ExportFilter, HistoryWrite, QueryResult } from "./archive.js";
import { type RunKey, SqlArchive } from "./base.js";
import { ArchiveError, firstLine, redactUrl } from "./errors.js";
import { DUCKDB_DIALECT, MIGRATIONS, POSTGRES_DIALECT } from "./schema.js";
import { jsonText, normaliseInt, type Row, unixToIso } from "./values.js";

/** pg_try_advisory_lock key of a dr-wandb archive ("dr_wandb" in ASCII); advisory locks are per database. */
export const ARCHIVE_LOCK_KEY = "7237112463414878818";

/** PostgreSQL's ISO timestamp output (TimeZone UTC) to the same ISO form the DuckDB backend gives. */
export function pgTimestampToIso(s: string): string {
  const m = /^(\d{4,}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d+))?(\+00(?::00)?)?$/.exec(s);
  if (!m) return s;
  let frac = (m[3] ?? "").padEnd(6, "0");
  if (frac.slice(3) === "000") frac = frac.slice(0, 3);
  return `${m[1]}T${m[2]}.${frac}Z`;
}

const typeOverrides = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    switch (oid) {
      case 20: // int8
        return (s: string) => normaliseInt(BigInt(s));
      case 114: // json
      case 3802: // jsonb
      case 1700: // numeric: exact text
        return (s: string) => s;
      case 1114: // timestamp
      case 1184: // timestamptz
        return pgTimestampToIso;
      default:
        // biome-ignore lint/suspicious/noExplicitAny: pg's overloads do not accept a union format
        return pg.types.getTypeParser(oid, format as any);
    }
  },
};

/** The URL node-postgres understands (the original's `postgresql+psycopg2://` scheme becomes `postgresql://`). */
export function normalisePgUrl(url: string): string {
  return url.replace(/^postgres(?:ql)?\+[a-z0-9_]+:\/\//i, "postgresql://");
}

interface PgError {
  code?: string;
  message?: string;
}

function connectError(e: unknown, url: string, password: string): ArchiveError {
  const where = redactUrl(url);
  const code = (e as PgError)?.code;
  const msg = firstLine(e, password || undefined);
  if (code === "28P01" || code === "28000" || /password|SASL|SCRAM|authentication/i.test(msg)) {
    return new ArchiveError("AUTH", `PostgreSQL rejected the login at ${where}: ${msg}`, { cause: e });
  }
  if (code === "ECONNREFUSED") {
    return new ArchiveError("CONNECT", `cannot connect to PostgreSQL at ${where}: connection refused`, { cause: e });
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return new ArchiveError("CONNECT", `cannot connect to PostgreSQL at ${where}: unknown host`, { cause: e });
  }
  return new ArchiveError("CONNECT", `cannot connect to PostgreSQL at ${where}: ${msg}`, { cause: e });
}

/** The DuckDB expression turning CSV text column `v` back into the PostgreSQL column's type. */
function duckdbCast(v: string, pgType: string): string {
  switch (pgType) {
    case "ARRAY":
      return `from_json(${v}, '["VARCHAR"]')`;
    case "jsonb":
    case "json":
      return `CAST(${v} AS JSON)`;
    case "timestamp with time zone":
      return `CAST(${v} AS TIMESTAMPTZ)`;
    case "bigint":
      return `CAST(${v} AS BIGINT)`;
    case "integer":
      return `CAST(${v} AS INTEGER)`;
    case "double precision":
      return `CAST(${v} AS DOUBLE)`;
    case "boolean":
      return `CAST(${v} AS BOOLEAN)`;
    default:
      return v;
  }
}

/** PostgreSQL text cannot hold U+0000: it is stored as U+FFFD. */
export function noNul(s: string): string {
  return s.includes("\u0000") ? s.replaceAll("\u0000", "\uFFFD") : s;
}

/** JSONB refuses the escape \u0000 (an odd number of backslashes before u0000): it becomes \ufffd. */
export function jsonWithoutNul(text: string): string {
  return text.includes("\\u0000") ? text.replace(/(?<!\\)((?:\\\\)*)\\u0000/g, "$1\\ufffd") : text;
}

function pgParams(params: unknown[] | undefined): unknown[] | undefined {
  return params?.map((p) => (typeof p === "string" ? noNul(p) : p));
}

function escapeCopy(s: string): string {
  return s.replace(/[\\\n\r\t]/g, (c) => (c === "\\" ? "\\\\" : c === "\n" ? "\\n" : c === "\r" ? "\\r" : "\\t"));
}

function copyNumber(n: number | null | undefined): string {
  if (n === null || n === undefined) return "\\N";
  if (Number.isNaN(n)) return "NaN";
  if (n === Number.POSITIVE_INFINITY) return "Infinity";
  if (n === Number.NEGATIVE_INFINITY) return "-Infinity";
  return String(n);
}

async function connectClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, types: typeOverrides, connectionTimeoutMillis: 15000 });
  client.on("error", () => {
    // a lost connection surfaces as an error on the next query; without a listener it would crash the process
  });
  await client.connect();
  await client.query("SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET client_min_messages = warning");
  return client;
}

/** Creates the database named in `url` through the maintenance database `postgres` on the same server. */
async function createDatabase(url: string, password: string): Promise<void> {
  const u = new URL(url);
  const name = decodeURIComponent(u.pathname.replace(/^\//, ""));
  if (!name) throw new ArchiveError("BAD_URL", `${redactUrl(url)} names no database`);
  const maint = new URL(url);
  maint.pathname = "/postgres";
  let client: pg.Client;
  try {
    client = await connectClient(maint.toString());
  } catch (e) {
    throw connectError(e, maint.toString(), password);
  }
  try {
    await client.query(`CREATE DATABASE ${quoteIdent(name)}`);
  } catch (e) {
    const code = (e as PgError).code;
    if (code !== "42P04") {
      throw new ArchiveError(
        "CREATE_DB",
        `database ${quoteIdent(name)} does not exist and could not be created: ${firstLine(e, password || undefined)}`,
        { cause: e },
      );
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

export class PostgresArchive extends SqlArchive implements DuckDBExportSource {
  readonly kind = "postgres" as const;

  private constructor(
    readonly location: string,
    private readonly client: pg.Client,
    readOnly: boolean,
  ) {
    super(POSTGRES_DIALECT, readOnly);
  }

  static async open(urlIn: string, readOnly: boolean): Promise<PostgresArchive> {
    const url = normalisePgUrl(urlIn);
    let password = "";
    try {
      password = decodeURIComponent(new URL(url).password);
    } catch {
      throw new ArchiveError("BAD_URL", `not a valid PostgreSQL URL: ${redactUrl(urlIn)}`);
    }
    const location = redactUrl(url);
    let client: pg.Client;
    try {
      client = await connectClient(url);
    } catch (e) {
      if ((e as PgError).code !== "3D000" || readOnly) {
        if ((e as PgError).code === "3D000") {
          throw new ArchiveError("NOT_FOUND", `no archive at ${location}: the database does not exist`, { cause: e });
        }
        throw connectError(e, url, password);
      }
      await createDatabase(url, password);
      try {
        client = await connectClient(url);
      } catch (e2) {
        throw connectError(e2, url, password);
      }
    }
    try {
      if (!readOnly) {
        const r = await client.query(`SELECT pg_try_advisory_lock(${ARCHIVE_LOCK_KEY}) AS ok`);
        if (r.rows[0]?.ok !== true) {
          throw new ArchiveError(
            "LOCKED",
            `another dr-wandb process holds the archive ${location} (PostgreSQL advisory lock); wait for it to finish`,
          );
        }
      }
      const a = new PostgresArchive(location, client, readOnly);
      await a.migrate();
      return a;
    } catch (e) {
      await client.end().catch(() => undefined);
      if (e instanceof ArchiveError) throw e;
      throw connectError(e, url, password);
    }
  }

  protected override json(v: JsonValue | undefined): string {
    return jsonWithoutNul(jsonText(v));
  }

  protected async exec(sql: string, params?: unknown[]): Promise<void> {
    try {
      await this.client.query(sql, pgParams(params));
    } catch (e) {
      throw new ArchiveError("QUERY", `PostgreSQL: ${firstLine(e)}`, { cause: e });
    }
  }

  protected async rows(sql: string, params?: unknown[]): Promise<Row[]> {
    try {
      return (await this.client.query(sql, pgParams(params))).rows as Row[];
    } catch (e) {
      throw new ArchiveError("QUERY", `PostgreSQL: ${firstLine(e)}`, { cause: e });
    }
  }

  protected async tableNames(): Promise<string[]> {
    const r = await this.rows("SELECT tablename AS t FROM pg_tables WHERE schemaname = current_schema()");
    return r.map((x) => String(x.t));
  }

  query(sql: string): Promise<QueryResult> {
    return this.queue.run(async () => {
      this.ensureOpen();
      try {
        const r = await this.client.query({ text: sql, rowMode: "array" });
        const last = Array.isArray(r) ? r[r.length - 1] : r;
        return { columns: (last?.fields ?? []).map((f: { name: string }) => f.name), rows: last?.rows ?? [] };
      } catch (e) {
        throw new ArchiveError("QUERY", firstLine(e), { cause: e });
      }
    });
  }

  protected async loadHistory(record: RunKey, history: HistoryWrite, tracker: KindTracker): Promise<number> {
    await this.deleteHistory(record, history);
    const prefix = `${escapeCopy(noNul(record.entity))}\t${escapeCopy(noNul(record.project))}\t${escapeCopy(noNul(record.run_id))}\t`;
    let max = history.replace ? Number.NEGATIVE_INFINITY : Math.trunc(history.fromStep) - 1;
    const outOfOrder = new Map<number, HistoryRecord>();
    let copy: copyStreams.CopyStreamQuery | null = null;
    let copyError: unknown = null;
    let n = 0;
    const startCopy = () => {
      const s = this.client.query(
        copyStreams.from(
          `COPY history (entity, project, run_id, step, "timestamp", runtime, wandb_metadata, metrics, extra) FROM STDIN`,
        ),
      );
      s.on("error", (e) => {
        copyError ??= e;
      });
      return s;
    };
    const write = async (s: copyStreams.CopyStreamQuery, chunk: string) => {
      if (copyError) throw copyError;
      if (!s.write(chunk)) {
        await new Promise<void>((res, rej) => {
          const onErr = (e: unknown) => rej(e);
          s.once("error", onErr);
          s.once("drain", () => {
            s.off("error", onErr);
            res();
          });
        });
      }
    };
    const endCopy = async () => {
      if (!copy) return;
      const s = copy;
      copy = null;
      s.end();
      await finished(s);
      if (copyError) throw copyError;
    };
    const flushOutOfOrder = async () => {
      if (outOfOrder.size === 0) return;
      await endCopy();
      await this.upsertHistoryRows(record, [...outOfOrder.values()]);
      outOfOrder.clear();
    };
    try {
      for await (const batch of history.batches) {
        let text = "";
        for (const row of batch) {
          const step = Math.trunc(row.step);
          tracker.observe(row.metrics ?? {});
          n++;
          if (step > max) {
            max = step;
            const ts = unixToIso(row.timestamp);
            text += `${prefix}${step}\t${ts ?? "\\N"}\t${copyNumber(row.runtime)}\t${escapeCopy(
              this.json(row.wandb_metadata),
            )}\t${escapeCopy(this.json(row.metrics))}\t${escapeCopy(this.json(row.extra))}\n`;
            if (text.length > 1 << 20) {
              copy ??= startCopy();
              await write(copy, text);
              text = "";
            }
          } else {
            if (text) {
              copy ??= startCopy();
              await write(copy, text);
              text = "";
            }
            outOfOrder.set(step, { ...row, step });
            if (outOfOrder.size >= 1000) await flushOutOfOrder();
          }
        }
        if (text) {
          copy ??= startCopy();
          await write(copy, text);
        }
      }
      await endCopy();
      await flushOutOfOrder();
    } catch (e) {
      const s = copy as copyStreams.CopyStreamQuery | null;
      if (s && !s.destroyed) {
        await new Promise<void>((res) => {
          s.once("close", () => res());
          s.destroy(e instanceof Error ? e : new Error(String(e)));
        });
      }
      if (e instanceof ArchiveError) throw e;
      if (
        (e as PgError)?.code &&
        typeof (e as PgError).code === "string" &&
        /^[0-9A-Z]{5}$/.test((e as PgError).code!)
      ) {
        throw new ArchiveError("WRITE", `PostgreSQL: ${firstLine(e)}`, { cause: e });
      }
      throw e;
    }
    return n;
  }

  /**
   * Streams the selected rows out of PostgreSQL (COPY TO STDOUT as CSV, spooled to files in a temporary folder) and
   * runs `fn` on a temporary DuckDB database over them: runs and metric_keys are loaded as tables, history and
   * system_metrics are typed views over their CSV files (read once, by the export's COPY). Everything is removed
   * afterwards.
   */
  withDuckDBTables<T>(filter: ExportFilter, fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    return this.queue.run(async () => {
      this.ensureOpen();
      const dir = await mkdtemp(join(tmpdir(), "dr-wandb-export-"));
      const { DuckDBInstance } = await import("@duckdb/node-api");
      let instance: import("@duckdb/node-api").DuckDBInstance | undefined;
      let conn: DuckDBConnection | undefined;
      try {
        instance = await DuckDBInstance.create(join(dir, "export.duckdb"), {
          temp_directory: join(dir, "spill"),
          memory_limit: duckdbMemoryLimit("export"),
          threads: duckdbThreads(),
        });
        traceDuckDB(instance);
        conn = await instance.connect();
        await conn.run("SET TimeZone = 'UTC'");
        await this.copyTablesInto(conn, dir, filter);
        return await fn(conn);
      } finally {
        if (instance) await untraceDuckDB(instance);
        conn?.closeSync();
        instance?.closeSync();
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  private async copyTablesInto(conn: DuckDBConnection, dir: string, filter: ExportFilter): Promise<void> {
    const conds: string[] = [];
    if (filter.entity !== undefined) conds.push(`entity = ${quoteLiteral(filter.entity)}`);
    if (filter.project !== undefined) conds.push(`project = ${quoteLiteral(filter.project)}`);
    const where = conds.length ? `WHERE ${conds.join(" AND ")}` : "";
    const tables: Record<string, "TABLE" | "VIEW"> = {
      runs: "TABLE",
      metric_keys: "TABLE",
      history: "VIEW",
      system_metrics: "VIEW",
    };
    const cols = await this.rows(
      `SELECT table_name AS t, column_name AS c, data_type AS ty FROM information_schema.columns
       WHERE table_schema = current_schema() AND table_name IN (${Object.keys(tables).map(quoteLiteral).join(", ")})
       ORDER BY table_name, ordinal_position`,
    );
    const byTable = new Map<string, { c: string; ty: string }[]>();
    for (const r of cols) {
      const list = byTable.get(String(r.t)) ?? [];
      list.push({ c: String(r.c), ty: String(r.ty) });
      byTable.set(String(r.t), list);
    }
    if (byTable.size === 0) {
      // an archive nothing was written to yet (opened read-only): export empty files
      for (const m of MIGRATIONS) for (const sql of m.statements(DUCKDB_DIALECT)) await conn.run(sql);
      return;
    }
    for (const [table, list] of byTable) {
      const file = join(dir, `${table}.csv`);
      const select = list
        .map(({ c, ty }) => (ty === "ARRAY" ? `array_to_json(${quoteIdent(c)})::text` : quoteIdent(c)))
        .join(", ");
      const longest = new LongestCsvRecord();
      try {
        const out = this.client.query(
          copyStreams.to(`COPY (SELECT ${select} FROM ${quoteIdent(table)} ${where}) TO STDOUT WITH (FORMAT csv)`),
        );
        await pipeline(out, longest, createWriteStream(file));
      } catch (e) {
        throw new ArchiveError("EXPORT", `reading ${table} from PostgreSQL: ${firstLine(e)}`, { cause: e });
      }
      // DuckDB sizes its read buffers from max_line_size (16x): give it the longest record seen, not a fixed 1 GiB.
      const lineSize = Math.max(2 ** 21, longest.max + 1024);
      const csvCols = list.map((_, i) => `${quoteLiteral(`c${i}`)}: 'VARCHAR'`).join(", ");
      const exprs = list.map(({ c, ty }, i) => `${duckdbCast(`c${i}`, ty)} AS ${quoteIdent(c)}`).join(", ");
      try {
        await conn.run(
          `CREATE ${tables[table]} ${quoteIdent(table)} AS SELECT ${exprs}
           FROM read_csv(${quoteLiteral(file)}, columns = {${csvCols}}, header = false, auto_detect = false,
             delim = ',', quote = '"', escape = '"', allow_quoted_nulls = false, max_line_size = ${lineSize},
             buffer_size = ${lineSize * 2})`,
        );
      } catch (e) {
        throw new ArchiveError("EXPORT", `copying ${table} from PostgreSQL: ${firstLine(e)}`, { cause: e });
      }
    }
  }

  protected async closeConnection(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }
}

/** Passes CSV bytes through and measures the longest record (newlines inside quoted fields do not end a record). */
class LongestCsvRecord extends Transform {
  max = 0;
  private current = 0;
  private inQuotes = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let current = this.current;
    let inQuotes = this.inQuotes;
    let max = this.max;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === 34)
        inQuotes = !inQuotes; // '"' (an escaped "" toggles twice)
      else if (b === 10 && !inQuotes) {
        if (current > max) max = current;
        current = 0;
        continue;
      }
      current++;
    }
    this.current = current;
    this.inQuotes = inQuotes;
    this.max = Math.max(max, current);
    done(null, chunk);
  }
}
