/**
 * How the viewer reaches the archive, read-only, so that a sync can run beside it.
 *
 * DuckDB lets one process write a file, or any number of processes read it, never both: a reader cannot open the
 * file while a sync holds it (IO Error "Could not set lock on file ... Conflicting lock is held"), and a sync cannot
 * start while a reader holds it. So the DuckDB archive is opened read-only only while requests are being answered
 * (concurrent requests share one open) and closed as soon as none is left. While a sync writes, an open fails with
 * LOCKED: it is retried for about 1.5 s, then the request answers 503 "archive busy" and the page retries.
 * PostgreSQL has no such lock: one read-only connection stays open and reads see each committed sync transaction.
 */
import { type Archive, ArchiveError, openArchive, parseArchiveTarget, type ViewerReads } from "../archive/index.js";

/** The archive is being written by another process (a sync); try again later. */
export class ArchiveBusyError extends Error {
  override name = "ArchiveBusyError";
}

export interface ArchiveSource {
  readonly kind: "duckdb" | "postgres";
  readonly location: string;
  /** Runs `fn` with the archive's reads (opening the archive if needed). */
  use<T>(fn: (reads: ViewerReads) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface SourceOptions {
  dbUrl?: string;
  outputDir: string;
  /** Waits between attempts to open a DuckDB file a sync holds (default 50, 100, 200, 400, 800 ms). */
  busyRetriesMs?: number[];
}

const DEFAULT_RETRIES = [50, 100, 200, 400, 800];

/** Opens the archive once to check it is there and readable (a clear error at start-up), then serves from it. */
export async function openSource(opts: SourceOptions): Promise<ArchiveSource> {
  const target = parseArchiveTarget(opts);
  if (target.kind === "postgres") {
    const archive = await openArchive({ dbUrl: opts.dbUrl, outputDir: opts.outputDir, readOnly: true });
    return {
      kind: "postgres",
      location: archive.location,
      use: (fn) => fn(archive.viewer()),
      close: () => archive.close(),
    };
  }
  const source = new ReopeningDuckDB(opts, opts.busyRetriesMs ?? DEFAULT_RETRIES);
  await source.use(async () => undefined);
  return source;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class ReopeningDuckDB implements ArchiveSource {
  readonly kind = "duckdb" as const;
  readonly location: string;
  private current: Promise<Archive> | null = null;
  private inFlight = 0;
  private closed = false;

  constructor(
    private readonly opts: SourceOptions,
    private readonly retries: number[],
  ) {
    const t = parseArchiveTarget(opts);
    this.location = t.kind === "duckdb" ? t.path : "";
  }

  private async openWithRetry(): Promise<Archive> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await openArchive({ dbUrl: this.opts.dbUrl, outputDir: this.opts.outputDir, readOnly: true });
      } catch (e) {
        if (!(e instanceof ArchiveError) || e.code !== "LOCKED") throw e;
        const wait = this.retries[attempt];
        if (wait === undefined) {
          throw new ArchiveBusyError(
            `the archive is busy: another process (a sync) is writing ${this.location}; the viewer retries`,
          );
        }
        await sleep(wait);
      }
    }
  }

  async use<T>(fn: (reads: ViewerReads) => Promise<T>): Promise<T> {
    if (this.closed) throw new ArchiveError("CLOSED", "the viewer is shutting down");
    this.inFlight++;
    try {
      if (!this.current) {
        const opening = this.openWithRetry();
        this.current = opening;
        opening.catch(() => {
          if (this.current === opening) this.current = null;
        });
      }
      const archive = await this.current;
      return await fn(archive.viewer());
    } finally {
      this.inFlight--;
      if (this.inFlight === 0 && this.current) {
        const done = this.current;
        this.current = null;
        await done.then((a) => a.close()).catch(() => undefined);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const done = this.current;
    this.current = null;
    if (done) await done.then((a) => a.close()).catch(() => undefined);
  }
}
