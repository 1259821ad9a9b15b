/**
 * The archive's Parquet export of a wide history (the edge profile: a run of 1,000+ keys beside thousands of rows of
 * other runs) fits the DuckDB budget it sets itself, with no retry: a few thousand rows of 1,126 columns once ran
 * out of memory at 512 MiB (one sorted wide pivot and a list of every key's text per row). runs_history.parquet is
 * a folder of part files: each run's rows in one part, in step order; an incremental export rewrites only the parts
 * of changed runs (the others keep their files: same inode) and holds the same table as a full export of the same
 * archive, as does an export cut into parts of a few runs each; with no run changed, no part is rewritten.
 */
import assert from "node:assert/strict";
import { copyFile, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import {
  duckObjects,
  historyOrderFaults,
  mutate,
  parquetDiff,
  runCli,
  tempDir,
  truthHistory,
  truthRuns,
} from "../helpers.js";

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

/** Each part file's name and inode. */
async function partInodes(folder: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const name of await readdir(folder)) out.set(name, (await stat(join(folder, name))).ino);
  return out;
}

const GOOD_ORDER = { unordered: 0, split: 0 };

describe("export of a wide history", () => {
  it("fits its own memory budget, keeps each run's rows together in step order, and an incremental export equals a full one", async () => {
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
    assert.deepEqual(await historyOrderFaults(file), GOOD_ORDER, "each run's rows together, in step order");
    assert.ok((await stat(file)).isDirectory(), "runs_history.parquet is a folder of part files");

    // Changed runs between unchanged ones: the next export keeps the parts of unchanged runs as they are.
    const before = await partInodes(file);
    const names = (await truthRuns(fake.url)).map((t) => t.name as string).sort();
    await mutate(fake.url, [
      { op: "appendSteps", run: names[3]!, steps: 50 },
      { op: "appendSteps", run: names[7]!, steps: 50 },
      { op: "addRuns", count: 1 },
    ]);
    const second = await runCli(args, { env });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /unchanged [1-9]/, `some runs were unchanged: ${second.stderr}`);
    assert.deepEqual(await historyOrderFaults(file), GOOD_ORDER, "incremental export: order");
    const afterSecond = await partInodes(file);
    const keptParts = [...afterSecond].filter(([name, ino]) => before.get(name) === ino);
    assert.ok(keptParts.length > 0, "some parts of unchanged runs kept as they were");
    assert.ok(keptParts.length < afterSecond.size, "the parts of changed runs written again");

    // No run changed since: the next export keeps every part as it is (same inodes), not a rewrite.
    const third = await runCli([...args, "-q"], { env });
    assert.equal(third.code, 0, third.stderr);
    assert.deepEqual(await partInodes(file), afterSecond, "runs_history.parquet was rewritten");

    // Files put into the folder by something else (a copy of a part would read as duplicate rows) are gone after
    // the next sync's export, even with no run changed; the parts themselves are kept.
    const [firstPart] = [...afterSecond.keys()].sort();
    await copyFile(join(file, firstPart!), join(file, "part-99999999.parquet"));
    await writeFile(join(file, "notes.txt"), "not a part");
    const fourth = await runCli([...args, "-q"], { env });
    assert.equal(fourth.code, 0, fourth.stderr);
    assert.deepEqual(await partInodes(file), afterSecond, "only the parts, each kept as it was");
    let truthNow = 0;
    for (const t of await truthRuns(fake.url)) truthNow += (await truthHistory(fake.url, t.name as string)).length;
    const [again] = await duckObjects(`SELECT count(*)::INTEGER AS n FROM read_parquet(${lit(file)})`);
    assert.equal(Number(again!.n), truthNow, "every row once");

    // A manifest edited by something else: a `next` below the kept parts' numbers does not make a new part
    // overwrite a kept one, and a part named as a path out of the folder voids the manifest (every part rewritten).
    const manifestPath = join(dir.path, ".runs_history.manifest.json");
    const edit = async (
      change: (m: { next: number; parts: { name: string; size: number; mtimeMs: number; runs: string[] }[] }) => void,
    ) => {
      const m = JSON.parse(await readFile(manifestPath, "utf8"));
      change(m);
      await writeFile(manifestPath, JSON.stringify(m));
    };
    const rowsNow = async () => {
      let t = 0;
      for (const r of await truthRuns(fake.url)) t += (await truthHistory(fake.url, r.name as string)).length;
      const [c] = await duckObjects(`SELECT count(*)::INTEGER AS n FROM read_parquet(${lit(file)})`);
      return { exported: Number(c!.n), truth: t };
    };
    await edit((m) => {
      // the number of a part that stays (none of its runs changes next)
      const stays = m.parts.find((p) => !p.runs.some((k) => (JSON.parse(k) as string[])[2] === names[5]))!;
      m.next = Number(/\d+/.exec(stays.name)![0]);
    });
    await mutate(fake.url, [{ op: "appendSteps", run: names[5]!, steps: 20 }]);
    const fifth = await runCli([...args, "-q"], { env });
    assert.equal(fifth.code, 0, fifth.stderr);
    const r5 = await rowsNow();
    assert.equal(r5.exported, r5.truth, "a kept part overwritten by a new one");
    assert.deepEqual(await historyOrderFaults(file), GOOD_ORDER);

    const outside = join(dir.path, "escape.parquet");
    const inFolder = [...(await partInodes(file)).keys()].sort();
    await copyFile(join(file, inFolder[0]!), outside);
    const st = await stat(outside);
    await edit((m) => {
      m.parts[0] = { ...m.parts[0]!, name: "../escape.parquet", size: st.size, mtimeMs: st.mtimeMs };
    });
    const sixth = await runCli([...args, "-q"], { env });
    assert.equal(sixth.code, 0, sixth.stderr);
    const r6 = await rowsNow();
    assert.equal(r6.exported, r6.truth, "the rows of the part named out of the folder are in the dataset");
    assert.ok([...(await partInodes(file)).keys()].every((n) => /^part-\d{8}\.parquet$/.test(n)));

    // The same archive exported from scratch (no previous file, no manifest) gives the same table.
    await using full = await tempDir();
    await mkdir(full.path, { recursive: true });
    await copyFile(join(dir.path, "wandb.duckdb"), join(full.path, "wandb.duckdb"));
    const exp = await runCli(["export", "--output-dir", full.path, "-q"], {});
    assert.equal(exp.code, 0, exp.stderr);
    const fullFile = join(full.path, "runs_history.parquet");
    assert.deepEqual(await parquetDiff(file, fullFile), { onlyA: 0, onlyB: 0, sameSchema: true, moved: 0 });

    // Parts of a few runs each (each part sorted in the budget): the same table.
    await using pieces = await tempDir();
    await copyFile(join(dir.path, "wandb.duckdb"), join(pieces.path, "wandb.duckdb"));
    const cut = await runCli(["export", "--output-dir", pieces.path, "-q"], {
      env: { DR_WANDB_EXPORT_SEGMENT_CELLS: "1" }, // a part per run
    });
    assert.equal(cut.code, 0, cut.stderr);
    const cutFile = join(pieces.path, "runs_history.parquet");
    assert.deepEqual(await historyOrderFaults(cutFile), GOOD_ORDER, "export in many parts: order");
    assert.ok((await readdir(cutFile)).length > (await readdir(fullFile)).length, "cut into more parts");
    assert.deepEqual(await parquetDiff(cutFile, fullFile), { onlyA: 0, onlyB: 0, sameSchema: true, moved: 0 });
  });
});
