/**
 * The PostgreSQL backend: one connection per archive; a writer holds a session advisory lock for as long as the
 * archive is open. History is bulk-loaded with COPY FROM STDIN (text format). Connecting (URL forms, type parsers,
 * a missing database, the NUL rules): postgres-connect.ts; the copy of the rows into DuckDB for the exports:
 * postgres-export.ts.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import type pg from "pg";
import { loadDuckDB } from "../model/duckdb-module.js";
import { duckdbMemoryLimit, duckdbThreads } from "../model/duckdb-resources.js";
import type { KindTracker } from "../model/flatten.js";
import type { JsonValue } from "../model/json.js";
import { traceDuckDB, untraceDuckDB } from "../model/memory-trace.js";
import type { HistoryRecord } from "../model/records.js";
import type { DuckDBExportSource, ExportFilter, HistoryWrite, QueryResult } from "./archive.js";
import { type RunKey, SqlArchive } from "./base.js";
import { ArchiveError, firstLine, redactUrl } from "./errors.js";
import { splitRows } from "./history-split.js";
import {
  connectClient,
  connectError,
  createDatabase,
  jsonWithoutNul,
  noNul,
  normalisePgUrl,
  type PgError,
  pgParams,
} from "./postgres-connect.js";
import { CopyIn, copyNumber, escapeCopy } from "./postgres-copy.js";
import { copyTablesInto } from "./postgres-export.js";
import { POSTGRES_DIALECT } from "./schema.js";
import { doublesText, jsonText, microsToIsoText, type Row } from "./values.js";

/** pg_try_advisory_lock key of a dr-wandb archive ("dr_wandb" in ASCII); advisory locks are per database. */
export const ARCHIVE_LOCK_KEY = "7237112463414878818";

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

  protected async exec(sql: string, params?: unknown[]): Promise<number> {
    try {
      return (await this.client.query(sql, pgParams(params))).rowCount ?? 0;
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

  protected override jsonTextOut(text: string): string {
    return jsonWithoutNul(text);
  }

  /**
   * COPY history_rows FROM STDIN (text format) of the rows in step order, split for storage a chunk of up to 2,048
   * rows at a time; a chunk with a keyset not stored yet ends the COPY first (its row of history_keysets is an
   * INSERT on the same connection). Rows out of step order are upserted after the rows before them.
   */
  protected async loadHistory(record: RunKey, history: HistoryWrite, tracker: KindTracker): Promise<number> {
    const prefix = `${escapeCopy(noNul(record.entity))}\t${escapeCopy(noNul(record.project))}\t${escapeCopy(noNul(record.run_id))}\t`;
    let max = history.replace ? Number.NEGATIVE_INFINITY : Math.trunc(history.fromStep) - 1;
    const outOfOrder = new Map<number, HistoryRecord>();
    let pending: HistoryRecord[] = [];
    const copy = new CopyIn(
      this.client,
      `COPY history_rows (entity, project, run_id, step, "timestamp", runtime, wandb_metadata, extra, keyset, vals, rest) FROM STDIN`,
    );
    let n = 0;
    const flushPending = async () => {
      if (pending.length === 0) return;
      const chunk = splitRows(pending, { allowNul: false, json: jsonWithoutNul });
      pending = [];
      let keyset: number | null = null;
      if (chunk.keys.length > 0) {
        const keys = chunk.keys;
        keyset = this.keysets.peek(record.entity, record.project, keys) ?? null;
        if (keyset === null) {
          await copy.end();
          keyset = await this.keysets.id(record.entity, record.project, keys);
        }
      }
      const ks = keyset === null ? "\\N" : String(keyset);
      let text = "";
      for (const r of chunk.rows) {
        const ts = microsToIsoText(r.micros);
        const vals = keyset === null ? "\\N" : doublesText(r.vals, true);
        const rest = r.rest === null ? "\\N" : escapeCopy(r.rest);
        text += `${prefix}${r.step}\t${ts ?? "\\N"}\t${copyNumber(r.runtime)}\t${escapeCopy(r.wandbMetadata)}\t${escapeCopy(r.extra)}\t${ks}\t${vals}\t${rest}\n`;
        if (text.length > 1 << 20) {
          await copy.write(text);
          text = "";
        }
      }
      if (text) await copy.write(text);
    };
    const flushOutOfOrder = async () => {
      if (outOfOrder.size === 0) return;
      await flushPending();
      await copy.end();
      await this.upsertHistoryRows(record, [...outOfOrder.values()]);
      outOfOrder.clear();
    };
    try {
      for await (const batch of history.batches) {
        for (const row of batch) {
          const step = Math.trunc(row.step);
          tracker.observe(row.metrics ?? {});
          n++;
          if (step > max) {
            max = step;
            pending.push(step === row.step ? row : { ...row, step });
            if (pending.length >= 2048) await flushPending();
          } else {
            outOfOrder.set(step, { ...row, step });
            if (outOfOrder.size >= 1000) await flushOutOfOrder();
          }
        }
      }
      await flushPending();
      await copy.end();
      await flushOutOfOrder();
    } catch (e) {
      await copy.destroy(e);
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
      const { DuckDBInstance } = await loadDuckDB();
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
        await copyTablesInto(this.client, (sql) => this.rows(sql), conn, dir, filter);
        return await fn(conn);
      } finally {
        if (instance) await untraceDuckDB(instance);
        conn?.closeSync();
        instance?.closeSync();
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  protected async closeConnection(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }
}
