/**
 * The archive's Parquet export of a wide history (the edge profile: a run of 1,000+ keys beside thousands of rows of
 * other runs) fits the DuckDB budget it sets itself, with no retry: a few thousand rows of 1,126 columns once ran
 * out of memory at 512 MiB (one sorted wide pivot and a list of every key's text per row). The rows come out in
 * (run_id, step) order, and an incremental export (unchanged runs copied from the previous file) is the same file
 * as a full export of the same archive, as is an export cut into segments of a few runs each; with no run changed,
 * the file is not rewritten at all.
 */
import assert from "node:assert/strict";
import { copyFile, mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import { duckObjects, mutate, parquetDiff, runCli, tempDir, truthHistory, truthRuns } from "../helpers.js";

let fake: FakeWandb;
let env: NodeJS.ProcessEnv;
before(async () => {
  fake = await startFakeWandb({ seed: 11, runs: 12, steps: 420, metrics: 6, profile: "edge", runningFraction: 0.3 });
  env = { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey };
});
after(async () => {
  await fake?.close();
});

const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;

async function rowsOutOfOrder(file: string): Promise<number> {
  const [r] = await duckObjects(
    `SELECT count(*) FILTER (WHERE NOT ok)::INTEGER AS bad FROM (
       SELECT (run_id, step) >= lag((run_id, step)) OVER (ORDER BY file_row_number) AS ok
       FROM read_parquet(${lit(file)}, file_row_number = true))`,
  );
  return Number(r!.bad);
}

describe("export of a wide history", () => {
  it("fits its own memory budget, keeps (run_id, step) order, and an incremental export equals a full one", async () => {
    await using dir = await tempDir();
    const args = ["sync", `${fake.entity}/${fake.project}`, "--output-dir", dir.path];
    const first = await runCli([...args, "-q"], { env });
    assert.equal(first.code, 0, first.stderr);
    const file = join(dir.path, "runs_history.parquet");
    const cols = await duckObjects(`DESCRIBE SELECT * FROM read_parquet(${lit(file)})`);
    assert.ok(cols.length > 1100, `${cols.length} columns`);
    let truthRows = 0;
    for (const t of await truthRuns(fake.url)) truthRows += (await truthHistory(fake.url, t.name as string)).length;
    assert.ok(truthRows > 2 * 2048, `${truthRows} rows: more than one chunk of rows per thread`);
    const [n] = await duckObjects(`SELECT count(*)::INTEGER AS n FROM read_parquet(${lit(file)})`);
    assert.equal(Number(n!.n), truthRows);
    assert.equal(await rowsOutOfOrder(file), 0, "rows out of (run_id, step) order");

    // Changed runs between unchanged ones: the next export copies the unchanged runs' rows from this file.
    const names = (await truthRuns(fake.url)).map((t) => t.name as string).sort();
    await mutate(fake.url, [
      { op: "appendSteps", run: names[3]!, steps: 50 },
      { op: "appendSteps", run: names[7]!, steps: 50 },
      { op: "addRuns", count: 1 },
    ]);
    const second = await runCli(args, { env });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /unchanged [1-9]/, `some runs were unchanged: ${second.stderr}`);
    assert.equal(await rowsOutOfOrder(file), 0, "incremental export: rows out of order");

    // No run changed since: the next export keeps the file as it is (same inode, same mtime), not a rewrite.
    const kept = await stat(file);
    const third = await runCli([...args, "-q"], { env });
    assert.equal(third.code, 0, third.stderr);
    const after3 = await stat(file);
    assert.deepEqual([after3.ino, after3.mtimeMs], [kept.ino, kept.mtimeMs], "runs_history.parquet was rewritten");

    // The same archive exported from scratch (no previous file, no manifest) gives the same table.
    await using full = await tempDir();
    await mkdir(full.path, { recursive: true });
    await copyFile(join(dir.path, "wandb.duckdb"), join(full.path, "wandb.duckdb"));
    const exp = await runCli(["export", "--output-dir", full.path, "-q"], {});
    assert.equal(exp.code, 0, exp.stderr);
    const fullFile = join(full.path, "runs_history.parquet");
    assert.deepEqual(await parquetDiff(file, fullFile), { onlyA: 0, onlyB: 0, sameSchema: true, moved: 0 });

    // A history larger than one segment is flattened a few runs at a time (each piece sorted in the budget) and the
    // pieces read back in order: the same table as the one-piece export.
    await using pieces = await tempDir();
    await copyFile(join(dir.path, "wandb.duckdb"), join(pieces.path, "wandb.duckdb"));
    const cut = await runCli(["export", "--output-dir", pieces.path, "-q"], {
      env: { DR_WANDB_EXPORT_SEGMENT_CELLS: String(2048 * cols.length) },
    });
    assert.equal(cut.code, 0, cut.stderr);
    const cutFile = join(pieces.path, "runs_history.parquet");
    assert.equal(await rowsOutOfOrder(cutFile), 0, "segmented export: rows out of order");
    assert.deepEqual(await parquetDiff(cutFile, fullFile), { onlyA: 0, onlyB: 0, sameSchema: true, moved: 0 });
  });
});
