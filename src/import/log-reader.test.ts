/**
 * The framing reader against our writer (laid out as wandb-core's leveldb writer does): records of every size
 * across block boundaries come back byte for byte, block trailers are skipped, headers are checked.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ImportError } from "./errors.js";
import { BLOCK_SIZE, type LogReadStats, readLogFile } from "./log-reader.js";
import { LogWriter } from "./log-writer.js";

const dir = mkdtempSync(join(tmpdir(), "drwandb-logreader-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function file(bytes: Uint8Array): string {
  const p = join(dir, `f${++n}.wandb`);
  writeFileSync(p, bytes);
  return p;
}

function readAll(path: string): { records: Buffer[]; offsets: number[]; warnings: string[]; stats: LogReadStats } {
  const warnings: string[] = [];
  const stats: LogReadStats = { size: 0, endOffset: 0, records: 0, skippedBytes: 0, torn: false };
  const records: Buffer[] = [];
  const offsets: number[] = [];
  for (const r of readLogFile(path, (w) => warnings.push(w.message), stats)) {
    records.push(Buffer.from(r.payload));
    offsets.push(r.offset);
  }
  return { records, offsets, warnings, stats };
}

function payload(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

describe("log framing", () => {
  it("reads back records of every size, across block boundaries, with their offsets", () => {
    const sizes = [0, 1, 100, BLOCK_SIZE - 14, 5, BLOCK_SIZE * 3 + 17, 6, 0, BLOCK_SIZE - 7 - 7, 1000, 70_000];
    const w = new LogWriter();
    const want = sizes.map((s, i) => payload(s, i));
    const offsets = want.map((p) => w.write(p));
    const { records, offsets: got, warnings, stats } = readAll(file(w.bytes()));
    assert.deepEqual(warnings, []);
    assert.equal(records.length, want.length);
    for (const [i, r] of records.entries()) assert.ok(r.equals(want[i]!), `record ${i} (${sizes[i]} bytes)`);
    assert.deepEqual(got, offsets);
    assert.equal(stats.endOffset, w.bytes().length);
    assert.equal(stats.torn, false);
    assert.ok(w.bytes().length > 5 * BLOCK_SIZE, "the test spans several blocks");
  });

  it("skips a block trailer shorter than a chunk header", () => {
    const w = new LogWriter();
    // fill the first block up to 3 bytes before its end: the next record starts in block 2
    w.write(payload(BLOCK_SIZE - 7 - 7 - 3, 1));
    const second = w.write(payload(10, 2));
    assert.equal(second, BLOCK_SIZE);
    const { records, warnings } = readAll(file(w.bytes()));
    assert.deepEqual(warnings, []);
    assert.equal(records.length, 2);
  });

  it("refuses a file that is not a W&B log, and a newer log version", () => {
    assert.throws(
      () => readAll(file(Buffer.from("hello, world\n"))),
      (e: unknown) => e instanceof ImportError && e.code === "NOT_WANDB" && /not a W&B log/.test(e.message),
    );
    const bad = Buffer.from(new LogWriter().bytes());
    bad[4] = 0;
    assert.throws(
      () => readAll(file(bad)),
      (e: unknown) => e instanceof ImportError && e.code === "NOT_WANDB",
    );
    assert.throws(
      () => readAll(file(new LogWriter(1).bytes())),
      (e: unknown) => e instanceof ImportError && e.code === "NEWER_VERSION" && /version 1/.test(e.message),
    );
  });

  it("an empty log, and one cut inside its header, read as no records", () => {
    assert.equal(readAll(file(new LogWriter().bytes())).records.length, 0);
    const cut = readAll(file(new LogWriter().bytes().subarray(0, 4)));
    assert.equal(cut.records.length, 0);
    assert.equal(cut.warnings.length, 1);
    assert.equal(readAll(file(Buffer.alloc(0))).warnings.length, 0);
  });

  it("a record cut at its end is dropped with a warning; the records before it are kept", () => {
    const w = new LogWriter();
    w.write(payload(50, 1));
    w.write(payload(BLOCK_SIZE * 2, 2));
    const all = w.bytes();
    for (const cut of [all.length - 1, BLOCK_SIZE + 5, BLOCK_SIZE, 7 + 7 + 50 + 3]) {
      const { records, warnings, stats } = readAll(file(all.subarray(0, cut)));
      assert.equal(records.length, 1, `cut at ${cut}`);
      assert.equal(warnings.length, 1, `cut at ${cut}: ${warnings.join("; ")}`);
      assert.match(warnings[0]!, /cut short/);
      assert.equal(stats.torn, true);
    }
  });

  it("a bad checksum skips to the next block and says where", () => {
    const w = new LogWriter();
    const offs: number[] = [];
    for (let i = 0; i < 40; i++) offs.push(w.write(payload(3000, i)));
    const bytes = Buffer.from(w.bytes());
    const victim = offs.findIndex((o) => o > BLOCK_SIZE + 100);
    bytes[offs[victim]! + 20]! ^= 0xff;
    const { records, warnings } = readAll(file(bytes));
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0]!,
      new RegExp(`bad checksum at byte ${offs[victim]}; skipped to the next block at byte ${2 * BLOCK_SIZE}`),
    );
    const kept = offs.map((o, i) => ({ o, i })).filter(({ o, i }) => i < victim || o >= 2 * BLOCK_SIZE);
    assert.equal(records.length, kept.length);
    for (const [k, { i }] of kept.entries()) assert.ok(records[k]!.equals(payload(3000, i)));
  });
});
