/**
 * Connecting to PostgreSQL: URL forms, the client with dr-wandb's type parsers (exact integers, JSON and numeric as
 * text, ISO timestamps), creating a missing database, one-line connection errors, and the U+0000 rules of
 * PostgreSQL text and JSONB.
 */
import pg from "pg";
import { quoteIdent } from "../model/flatten.js";
import { ArchiveError, firstLine, redactUrl } from "./errors.js";
import { normaliseInt } from "./values.js";

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

export interface PgError {
  code?: string;
  message?: string;
}

export function connectError(e: unknown, url: string, password: string): ArchiveError {
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

/** PostgreSQL text cannot hold U+0000: it is stored as U+FFFD. */
export function noNul(s: string): string {
  return s.includes("\u0000") ? s.replaceAll("\u0000", "\uFFFD") : s;
}

/** JSONB refuses the escape \u0000 (an odd number of backslashes before u0000): it becomes \ufffd. */
export function jsonWithoutNul(text: string): string {
  return text.includes("\\u0000") ? text.replace(/(?<!\\)((?:\\\\)*)\\u0000/g, "$1\\ufffd") : text;
}

export function pgParams(params: unknown[] | undefined): unknown[] | undefined {
  return params?.map((p) => (typeof p === "string" ? noNul(p) : p));
}

export async function connectClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, types: typeOverrides, connectionTimeoutMillis: 15000 });
  client.on("error", () => {
    // a lost connection surfaces as an error on the next query; without a listener it would crash the process
  });
  await client.connect();
  await client.query("SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET client_min_messages = warning");
  return client;
}

export /** Creates the database named in `url` through the maintenance database `postgres` on the same server. */
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
