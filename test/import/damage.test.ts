/**
 * Damaged copies of the real offline logs, made here from a seed: a copy cut at random byte offsets keeps every
 * record that ended before the cut (and says the last one was cut short); a copy with a flipped byte loses only the
 * records from the damaged chunk to the end of its block, with a warning naming the byte offset. Nothing is written
 * for a run whose run record was not read.
 */
import assert from "node:assert/strict";
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { mulberry32 as rng } from "../../fake-wandb/random.js";
import { type Archive, openArchive } from "../../src/archive/index.js";
import { importPaths } from "../../src/import/index.js";
import { BLOCK_SIZE, type LogReadStats, readLogFile } from "../../src/import/log-reader.js";
import { decodeRecord, longValue } from "../../src/import/proto.js";
import { parseStrictJson } from "../../src/model/json.js";
import { tempDir } from "../helpers.js";
import { FIXTURES } from "./expected.js";

function fixtureFile(runId: string): string {
  const d = readdirSync(join(FIXTURES, "wandb")).find((x) => x.endsWith(`-${runId}`))!;
  return join(FIXTURES, "wandb", d, `run-${runId}.wandb`);
}

interface Layout {
  /** Every record: its first and one-past-last byte, and its history step if it is a history record. */
  records: { start: number; end: number; step: number | null; run: boolean }[];
  /** Every chunk's first byte. */
  chunks: number[];
}

function layoutOf(path: string): Layout {
  const stats: LogReadStats = { size: 0, endOffset: 0, records: 0, skippedBytes: 0, torn: false };
  const records: Layout["records"] = [];
  for (const r of readLogFile(path, () => assert.fail("the fixture is intact"), stats)) {
    const rec = decodeRecord(r.payload);
    let step: number | null = null;
    if (rec.recordType === "history") {
      const s = rec.history?.item?.find((i) => i.nestedKey?.[0] === "_step" || i.key === "_step");
      step = s ? Number(s.valueJson) : Number(longValue(rec.history?.step?.num));
    }
    records.push({ start: r.offset, end: stats.endOffset, step, run: rec.recordType === "run" });
  }
  const bytes = readFileSync(path);
  const chunks: number[] = [];
  let pos = 7;
  while (pos + 7 <= bytes.length) {
    const left = BLOCK_SIZE - (pos % BLOCK_SIZE);
    if (left < 7) {
      pos += left;
      continue;
    }
    chunks.push(pos);
    pos += 7 + bytes.readUInt16LE(pos + 4);
  }
  return { records, chunks };
}

describe("damaged logs", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let archive: Archive;
  before(async () => {
    dir = await tempDir();
    archive = await openArchive({ outputDir: join(dir.path, "out") });
  });
  after(async () => {
    await archive?.close();
    await dir?.[Symbol.asyncDispose]();
  });

  /** Imports `bytes` as run `runId`'s log into its own project; returns the stored steps and the warnings. */
  async function importCopy(runId: string, bytes: Uint8Array, project: string) {
    const folder = join(dir.path, project, `offline-run-20250101_000000-${runId}`);
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, `run-${runId}.wandb`), bytes);
    const r = await importPaths(archive, [folder], { project });
    const rows = await archive.query(
      `SELECT step, metrics FROM history WHERE project = '${project}' AND run_id = '${runId}' ORDER BY step`,
    );
    const runs = await archive.query(`SELECT state FROM runs WHERE project = '${project}'`);
    return { r, steps: rows.rows.map((x) => Number(x[0])), metrics: rows.rows.map((x) => x[1]), runs: runs.rows };
  }

  it("a copy cut at seeded random offsets keeps every record that ended before the cut", async () => {
    const random = rng(15);
    let cases = 0;
    for (const runId of ["killed01", "basic001", "values01"]) {
      const path = fixtureFile(runId);
      const full = readFileSync(path);
      const layout = layoutOf(path);
      const runEnd = layout.records.find((x) => x.run)!.end;
      const cuts = [3, 7, runEnd - 1, runEnd, full.length - 1];
      for (let i = 0; i < 5; i++) cuts.push(7 + Math.floor(random() * (full.length - 7)));
      for (const cut of cuts) {
        const project = `cut-${runId}-${cut}`;
        const got = await importCopy(runId, full.subarray(0, cut), project);
        const whole = layout.records.filter((x) => x.end <= cut);
        if (!whole.some((x) => x.run)) {
          assert.equal(got.runs.length, 0, `cut at ${cut}: nothing written without the run record`);
          assert.ok(got.r.warnings.length > 0, `cut at ${cut}: a warning`);
          continue;
        }
        const want = whole.filter((x) => x.step !== null).map((x) => x.step);
        assert.deepEqual(got.steps, want, `${runId} cut at ${cut}: the steps of the records before the cut`);
        assert.deepEqual(got.runs, [["crashed"]], `${runId} cut at ${cut}: no exit record, a crashed run`);
        const atBoundary = whole.length === layout.records.length || whole[whole.length - 1]!.end === cut;
        if (!atBoundary) {
          assert.ok(
            got.r.warnings.some((w) => /cut short/.test(w)),
            `${runId} cut at ${cut}: ${got.r.warnings.join("; ")}`,
          );
        }
        cases++;
      }
    }
    assert.ok(cases >= 20, `enough cuts landed after the run record (${cases})`);
  });

  it("a flipped byte loses only its chunk's records to the end of the block, and names the offset", async () => {
    const random = rng(42);
    const path = fixtureFile("killed01");
    const full = readFileSync(path);
    const layout = layoutOf(path);
    const reference = await importCopy("killed01", full, "flip-reference");
    for (let i = 0; i < 4; i++) {
      // a byte in block 1..4 (block 0 holds the run record)
      const at = BLOCK_SIZE * (1 + (i % 4)) + Math.floor(random() * (BLOCK_SIZE - 8));
      if (at >= full.length) continue;
      const bytes = Buffer.from(full);
      bytes[at]! ^= 0x5a;
      const chunk = layout.chunks.filter((c) => c <= at).pop()!;
      const nextBlock = chunk - (chunk % BLOCK_SIZE) + BLOCK_SIZE;
      const got = await importCopy("killed01", bytes, `flip-${at}`);
      const kept = layout.records.filter((x) => x.step !== null && (x.end <= chunk || x.start >= nextBlock));
      assert.deepEqual(
        got.steps,
        kept.map((x) => x.step),
        `flip at ${at}`,
      );
      assert.ok(got.steps.length < reference.steps.length, "some rows were lost");
      assert.ok(
        got.r.warnings.some((w) => w.includes(`at byte ${chunk}`) && w.includes(`next block at byte ${nextBlock}`)),
        `flip at ${at}: ${got.r.warnings.join("; ")}`,
      );
      // the rows kept are the rows of the intact log, value for value
      for (const [k, step] of got.steps.entries()) {
        const j = reference.steps.indexOf(step);
        assert.deepEqual(parseStrictJson(String(got.metrics[k])), parseStrictJson(String(reference.metrics[j])));
      }
    }
  });

  it("a folder copy with a torn log still imports its other runs", async () => {
    const root = join(dir.path, "mixed");
    cpSync(join(FIXTURES, "wandb"), root, { recursive: true });
    const victim = fixtureFile("basic001").replace(join(FIXTURES, "wandb"), root);
    writeFileSync(victim, readFileSync(victim).subarray(0, 5));
    const r = await importPaths(archive, [root], { project: "mixed" });
    assert.equal(r.runsWritten, 4);
    assert.ok(r.warnings.some((w) => w.includes("basic001")));
  });
});
