/**
 * A run's history rows between reading and writing, with bounded memory: batches are packed (src/model/
 * packed-history.ts: ~8 bytes a number cell instead of 40-80 as objects) and stay in memory up to a number of cells
 * (rows x keys); the rest goes to a temp file (V8's structured serialization: NaN, ±Infinity, -0, bigints, nested
 * objects and unusual keys come back exactly) and is read back batch by batch when the rows are written. So one run
 * with millions of steps costs disk, not memory. Iterating gives new record objects, equal to the ones added.
 * Temp files are removed after use, and on exit.
 */
import { closeSync, openSync, rmSync, writeSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deserialize, serialize } from "node:v8";
import { envSetting } from "../model/env-setting.js";
import { type PackedHistory, packHistory, unpackHistory } from "../model/packed-history.js";
import type { HistoryRecord } from "../model/records.js";

/** Cells of one run kept in memory before the rest is spooled to disk. */
export const SPOOL_MEMORY_CELLS = Number(envSetting(process.env, "DR_WANDB_SPOOL_CELLS") ?? 1_000_000);

const liveFiles = new Set<string>();
let exitHook = false;
let counter = 0;

function track(path: string): void {
  liveFiles.add(path);
  if (!exitHook) {
    exitHook = true;
    process.once("exit", () => {
      for (const f of liveFiles) rmSync(f, { force: true });
    });
  }
}

/** Cells of a batch: each row's step, timestamp and runtime, plus its metrics and extra keys. */
export function cellsOf(batch: HistoryRecord[]): number {
  let n = 0;
  for (const r of batch) n += 3 + Object.keys(r.metrics).length + (r.extra ? Object.keys(r.extra).length : 0);
  return n;
}

export class HistorySpool implements AsyncIterable<HistoryRecord[]> {
  private readonly memory: Held[] = [];
  private cells = 0;
  private path: string | undefined;
  private fd: number | undefined;
  private spooled = 0;
  private closed = false;

  constructor(
    private readonly memoryCells = SPOOL_MEMORY_CELLS,
    private readonly dir = tmpdir(),
  ) {}

  /** Batches written to disk so far. */
  get spooledBatches(): number {
    return this.spooled;
  }

  add(batch: HistoryRecord[]): void {
    if (batch.length === 0) return;
    const packed = packHistory(batch);
    const held: Held = packed ?? batch;
    const cells = packed ? packed.cells + 3 * packed.rows : cellsOf(batch);
    if (this.fd === undefined && this.cells + cells <= this.memoryCells) {
      this.memory.push(held);
      this.cells += cells;
      return;
    }
    if (this.fd === undefined) {
      this.path = join(this.dir, `.dr-wandb-spool-${process.pid}-${++counter}-${Date.now().toString(36)}`);
      this.fd = openSync(this.path, "wx", 0o600);
      track(this.path);
    }
    const body = serialize(held);
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32LE(body.length, 0);
    writeSync(this.fd, head);
    writeSync(this.fd, body);
    this.spooled++;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<HistoryRecord[]> {
    for (const b of this.memory) yield records(b);
    if (this.path === undefined) return;
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
    const fh = await open(this.path, "r");
    try {
      const head = Buffer.alloc(4);
      let pos = 0;
      for (let i = 0; i < this.spooled; i++) {
        await readFully(fh, head, pos);
        pos += 4;
        const body = Buffer.allocUnsafe(head.readUInt32LE(0));
        await readFully(fh, body, pos);
        pos += body.length;
        yield records(deserialize(body) as Held);
      }
    } finally {
      await fh.close();
    }
  }

  /** Removes the temp file (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    if (this.path !== undefined) {
      rmSync(this.path, { force: true });
      liveFiles.delete(this.path);
    }
    this.memory.length = 0;
  }
}

/** A batch as the spool keeps it: packed, or (when packing does not apply) as the records themselves. */
type Held = PackedHistory | HistoryRecord[];

function records(h: Held): HistoryRecord[] {
  return Array.isArray(h) ? h : unpackHistory(h);
}

async function readFully(fh: import("node:fs/promises").FileHandle, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesRead } = await fh.read(buf, off, buf.length - off, position + off);
    if (bytesRead === 0) throw new Error("history spool file ended early");
    off += bytesRead;
  }
}
