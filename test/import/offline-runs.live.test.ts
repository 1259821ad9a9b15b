/**
 * Live tier (the CI conformance stage, after `bash conformance/setup.sh new`): the official wandb 0.31.0 client
 * writes fresh offline runs (test/import/write_offline_runs.py, into a temp folder), and the import must hold
 * exactly what that run of the script logged (its fresh expected.wjson). Fails, not skips, without the venv.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { openArchive } from "../../src/archive/index.js";
import { importPaths } from "../../src/import/index.js";
import { ROOT, tempDir } from "../helpers.js";
import { checkArchive, loadExpected } from "./expected.js";

const PYTHON = join(ROOT, ".conformance-venv", "new", "bin", "python");

describe("import of runs the official client writes now", () => {
  it("holds exactly what write_offline_runs.py logged", async () => {
    assert.ok(existsSync(PYTHON), `no conformance venv at ${PYTHON}: run bash conformance/setup.sh new first`);
    await using dir = await tempDir("drwandb-live-import-");
    const runs = join(dir.path, "runs");
    const gen = spawnSync(PYTHON, [join(import.meta.dirname, "write_offline_runs.py"), runs], {
      encoding: "utf8",
      timeout: 240_000,
      env: { PATH: process.env.PATH, HOME: dir.path, TMPDIR: dir.path },
    });
    assert.equal(gen.status, 0, `generator failed:\n${gen.stderr}`);
    const expected = loadExpected(runs);
    const archive = await openArchive({ outputDir: join(dir.path, "out") });
    try {
      const r = await importPaths(archive, [join(runs, "wandb")], { outputDir: join(dir.path, "out") });
      assert.equal(r.runs, Object.keys(expected).length);
      assert.equal(r.runsWritten, r.runs);
      await checkArchive(archive, expected);
      const again = await importPaths(archive, [join(runs, "wandb")]);
      assert.equal(again.runsUnchanged, r.runs);
    } finally {
      await archive.close();
    }
  });
});
