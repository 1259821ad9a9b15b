/**
 * Schema v2 (runs.source) on an archive a v1 dr-wandb wrote: the migration adds the column, the runs already there
 * read as `wandb-server`, and an import beside them records its file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import { LATEST_SCHEMA_VERSION, MIGRATIONS, openArchive } from "../../src/archive/index.js";
import { importPaths } from "../../src/import/index.js";
import { tempDir } from "../helpers.js";
import { FIXTURES } from "./expected.js";

describe("schema v2 on a v1 archive", () => {
  it("adds runs.source with wandb-server for the runs already synced", async () => {
    await using dir = await tempDir();
    const path = join(dir.path, "wandb.duckdb");
    const db = await DuckDBInstance.create(path);
    const conn = await db.connect();
    const dialect = {
      kind: "duckdb" as const,
      json: "JSON",
      double: "DOUBLE",
      textArray: "VARCHAR[]",
      doubleArray: "DOUBLE[]",
    };
    await conn.run(
      "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)",
    );
    for (const sql of MIGRATIONS[0]!.statements(dialect)) await conn.run(sql);
    await conn.run("INSERT INTO schema_migrations VALUES (1, 'initial', now())");
    await conn.run("INSERT INTO runs (entity, project, run_id, state) VALUES ('e', 'p', 'old1', 'finished')");
    conn.closeSync();
    db.closeSync();

    const archive = await openArchive({ outputDir: dir.path });
    try {
      assert.equal((await archive.status()).schemaVersion, LATEST_SCHEMA_VERSION);
      const old = await archive.query("SELECT source FROM runs WHERE run_id = 'old1'");
      assert.deepEqual(old.rows, [["wandb-server"]]);
      await importPaths(archive, [join(FIXTURES, "wandb")], { project: "p", entity: "e" });
      const r = await archive.query("SELECT count(*) FILTER (WHERE source LIKE '%.wandb'), count(*) FROM runs");
      assert.deepEqual(r.rows[0]!.map(Number), [5, 6]);
    } finally {
      await archive.close();
    }
  });
});
