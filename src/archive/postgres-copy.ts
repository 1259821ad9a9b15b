/**
 * COPY ... FROM STDIN (text format) on the PostgreSQL archive's connection: a stream started at the first write and
 * ended (or destroyed after an error) by the caller, with the text format's escapes.
 */
import { finished } from "node:stream/promises";
import type pg from "pg";
import copyStreams from "pg-copy-streams";

/** A text-format field: backslash, newline, carriage return and tab escaped. */
export function escapeCopy(s: string): string {
  return s.replace(/[\\\n\r\t]/g, (c) => (c === "\\" ? "\\\\" : c === "\n" ? "\\n" : c === "\r" ? "\\r" : "\\t"));
}

/** A double precision field (NaN, Infinity, -Infinity, -0 as PostgreSQL reads them), or \N. */
export function copyNumber(n: number | null | undefined): string {
  if (n === null || n === undefined) return "\\N";
  if (Number.isNaN(n)) return "NaN";
  if (n === Number.POSITIVE_INFINITY) return "Infinity";
  if (n === Number.NEGATIVE_INFINITY) return "-Infinity";
  return Object.is(n, -0) ? "-0" : String(n);
}

/** One COPY FROM STDIN, started by the first write; `end` completes it (the next write starts another). */
export class CopyIn {
  private stream: copyStreams.CopyStreamQuery | null = null;
  private error: unknown = null;

  constructor(
    private readonly client: pg.Client,
    private readonly sql: string,
  ) {}

  async write(text: string): Promise<void> {
    if (this.stream === null) {
      const s = this.client.query(copyStreams.from(this.sql));
      s.on("error", (e) => {
        this.error ??= e;
      });
      this.stream = s;
    }
    if (this.error) throw this.error;
    const s = this.stream;
    if (!s.write(text)) {
      await new Promise<void>((res, rej) => {
        const onErr = (e: unknown) => rej(e);
        s.once("error", onErr);
        s.once("drain", () => {
          s.off("error", onErr);
          res();
        });
      });
    }
  }

  /** Completes the COPY in progress (none: nothing to do); its error, if any, is thrown. */
  async end(): Promise<void> {
    const s = this.stream;
    if (s === null) return;
    this.stream = null;
    s.end();
    await finished(s);
    if (this.error) throw this.error;
  }

  /** After an error elsewhere: the COPY in progress is abandoned (the caller's transaction rolls back). */
  async destroy(cause: unknown): Promise<void> {
    const s = this.stream;
    this.stream = null;
    if (s && !s.destroyed) {
      await new Promise<void>((res) => {
        s.once("close", () => res());
        s.destroy(cause instanceof Error ? cause : new Error(String(cause)));
      });
    }
  }
}
