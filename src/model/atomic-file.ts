/**
 * Files that appear whole or not at all.
 *
 * An {@link AtomicFile} writes to a hidden temp file beside its final path (`.<name>.tmp-<pid>-<random>`), and
 * only `commit()` renames it into place, after it was flushed and fsynced. A rename within one folder is atomic on
 * POSIX file systems, so a reader (or a later run after a crash, even SIGKILL) sees the previous complete file or
 * the new complete file, never a torn one. A crash leaves at most a hidden temp file, which
 * {@link removeStaleTempFiles} deletes on the next run once its process is gone.
 */
import { randomBytes } from "node:crypto";
import { type FileHandle, open, readdir, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Writes are gathered up to this many bytes before they go to the file. */
const FLUSH_BYTES = 1 << 20;

/** The temp name tags dr-wandb uses ("old": a folder being replaced); anything else in the folder is never touched. */
export type TempTag = "tmp" | "spool" | "old";

export function tempPathFor(finalPath: string, tag: TempTag = "tmp"): string {
  const rnd = randomBytes(6).toString("hex");
  return join(dirname(finalPath), `.${basename(finalPath)}.${tag}-${process.pid}-${rnd}`);
}

export class AtomicFile {
  private fh: FileHandle | null;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private written = 0;
  private state: "open" | "finished" | "committed" | "aborted" = "open";

  private constructor(
    readonly finalPath: string,
    readonly tempPath: string,
    fh: FileHandle,
  ) {
    this.fh = fh;
  }

  /** Creates the temp file for `finalPath` (the folder must exist). */
  static async create(finalPath: string, tag: TempTag = "tmp"): Promise<AtomicFile> {
    const tempPath = tempPathFor(finalPath, tag);
    const fh = await open(tempPath, "wx", 0o666); // as any new file: the umask decides
    return new AtomicFile(finalPath, tempPath, fh);
  }

  /** Bytes handed to write() so far. */
  get size(): number {
    return this.written + this.pendingBytes;
  }

  async write(data: Uint8Array | string): Promise<void> {
    if (this.state !== "open") throw new Error(`write after ${this.state}: ${this.finalPath}`);
    const chunk = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    if (chunk.length === 0) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0 || this.fh === null) return;
    const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    const n = this.pendingBytes;
    this.pendingBytes = 0;
    let off = 0;
    while (off < n) {
      const { bytesWritten } = await this.fh.write(buf, off, n - off);
      off += bytesWritten;
    }
    this.written += n;
  }

  /** Writes what is buffered, fsyncs (unless `sync` is false) and closes the temp file. */
  async finish(opts: { sync?: boolean } = {}): Promise<void> {
    if (this.state !== "open") throw new Error(`finish after ${this.state}: ${this.finalPath}`);
    await this.flush();
    const fh = this.fh!;
    if (opts.sync !== false) await fh.sync();
    this.fh = null;
    await fh.close();
    this.state = "finished";
  }

  /** Renames the finished temp file to its final name and fsyncs the folder. Returns the final path. */
  async commit(): Promise<string> {
    if (this.state !== "finished") throw new Error(`commit before finish: ${this.finalPath}`);
    await rename(this.tempPath, this.finalPath);
    this.state = "committed";
    return this.finalPath;
  }

  /** Closes and deletes the temp file (never the final file). Safe to call more than once, and after commit. */
  async abort(): Promise<void> {
    if (this.state === "committed" || this.state === "aborted") return;
    this.state = "aborted";
    const fh = this.fh;
    this.fh = null;
    this.pending = [];
    this.pendingBytes = 0;
    if (fh !== null) await fh.close().catch(() => undefined);
    await unlinkIfExists(this.tempPath);
  }
}

export async function unlinkIfExists(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
}

/** fsyncs a file by path (for files written by someone else, such as DuckDB's COPY). */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsyncs a folder so that renames in it are durable. Best effort: some file systems refuse it. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, "r");
    await fh.sync();
  } catch {
    // EISDIR/EINVAL/EPERM on some platforms and file systems: the rename is still atomic, only less durable.
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** Whether a process with this id runs (on this host). */
export function isProcessAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Deletes temp files that a killed earlier process left for the given final file names in `dir`
 * (`.<name>.tmp-<pid>-<hex>` / `.<name>.spool-<pid>-<hex>` whose process no longer exists). Returns what it removed.
 */
export async function removeStaleTempFiles(dir: string, finalNames: string[]): Promise<string[]> {
  if (finalNames.length === 0) return [];
  const re = new RegExp(`^\\.(?:${finalNames.map(escapeRegExp).join("|")})\\.(?:tmp|spool)-(\\d+)-[0-9a-f]+$`);
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of entries) {
    const m = re.exec(name);
    if (m === null || isProcessAlive(Number(m[1]))) continue;
    const p = join(dir, name);
    try {
      await unlinkIfExists(p);
      removed.push(p);
    } catch {
      // not ours to fight over; leave it
    }
  }
  return removed;
}
