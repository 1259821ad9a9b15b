import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { makeRecord, makeState, rows, runArchiveTests, tempDir } from "../../test/support/archive-conformance.js";
import { startTestPg, type TestPgServer } from "../../test/support/pg-test-server.js";
import { exportArchive } from "../export/archive-export.js";
import { ArchiveError } from "./errors.js";
import { openArchive } from "./open.js";

let server: TestPgServer;
const made: string[] = [];

before(async () => {
  server = await startTestPg();
});

after(async () => {
  const c = new pg.Client({ connectionString: server.url });
  await c.connect();
  for (const db of made) await c.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`).catch(() => undefined);
  await c.end();
  await server.stop();
});

function freshDb(): string {
  const name = `dr_wandb_test_${randomBytes(6).toString("hex")}`;
  made.push(name);
  return name;
}

runArchiveTests("postgres", async () => {
  const t = tempDir("dr-wandb-pg-out-");
  // a database that does not exist yet: openArchive creates it
  return { dbUrl: server.urlFor(freshDb()), outputDir: t.dir, cleanup: async () => t.remove() };
});

async function errorOf(p: Promise<unknown>): Promise<ArchiveError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ArchiveError, String(e));
    assert.ok(!e.message.includes("\n"), "one line");
    return e;
  }
  assert.fail("expected an error");
}

describe("postgres archive specifics", () => {
  it("a postgresql+psycopg2:// URL works and a missing database is created (name needing quotes)", async () => {
    const name = `${freshDb()}-Mixed Case`;
    made.push(name);
    const url = server.urlFor(name).replace(/^postgres(ql)?:/, "postgresql+psycopg2:");
    const t = tempDir("dr-wandb-pg-out-");
    try {
      const a = await openArchive({ dbUrl: url, outputDir: t.dir });
      assert.equal(a.kind, "postgres");
      await a.writeRun({
        record: makeRecord("r1"),
        state: makeState("r1"),
        history: { replace: true, fromStep: 0, batches: [rows("r1", 0, 2)] },
      });
      await a.close();
      const c = new pg.Client({ connectionString: server.urlFor(name) });
      await c.connect();
      const r = await c.query("SELECT count(*)::int AS n FROM history");
      await c.end();
      assert.equal(r.rows[0].n, 3);
    } finally {
      t.remove();
    }
  });

  it("wrong password => AUTH, refused port => CONNECT; never the password", async () => {
    const u = new URL(server.urlFor("postgres"));
    if (u.password) {
      u.password = "wrong-secret-pw";
      const e = await errorOf(openArchive({ dbUrl: u.toString(), outputDir: "/tmp" }));
      assert.equal(e.code, "AUTH", e.message);
      assert.ok(!e.message.includes("wrong-secret-pw"));
    }
    const refused = "postgresql://someone:top-secret@127.0.0.1:1/db";
    const e2 = await errorOf(openArchive({ dbUrl: refused, outputDir: "/tmp" }));
    assert.equal(e2.code, "CONNECT");
    assert.match(e2.message, /connection refused/);
    assert.ok(!e2.message.includes("top-secret"));
  });

  it("a read-only opener takes no lock and works while a writer holds the archive; a missing database is NOT_FOUND", async () => {
    const url = server.urlFor(freshDb());
    const w = await openArchive({ dbUrl: url, outputDir: "/tmp" });
    try {
      await w.writeRun({ record: makeRecord("r1"), state: makeState("r1") });
      const r = await openArchive({ dbUrl: url, outputDir: "/tmp", readOnly: true });
      assert.equal((await r.status()).projects[0]?.runs, 1);
      await r.close();
      const e = await errorOf(openArchive({ dbUrl: url, outputDir: "/tmp" }));
      assert.equal(e.code, "LOCKED");
    } finally {
      await w.close();
    }
    // after the writer closed, the lock is free again
    const w2 = await openArchive({ dbUrl: url, outputDir: "/tmp" });
    await w2.close();
    const missing = await errorOf(
      openArchive({
        dbUrl: server.urlFor(`never_${randomBytes(4).toString("hex")}`),
        outputDir: "/tmp",
        readOnly: true,
      }),
    );
    assert.equal(missing.code, "NOT_FOUND");
  });

  it("an existing empty database opened read-only: empty status, empty export, nothing created", async () => {
    const name = freshDb();
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    await c.query(`CREATE DATABASE "${name}"`);
    await c.end();
    const t = tempDir("dr-wandb-pg-out-");
    try {
      const r = await openArchive({ dbUrl: server.urlFor(name), outputDir: t.dir, readOnly: true });
      try {
        assert.deepEqual((await r.status()).projects, []);
        assert.equal((await r.loadSyncState("e", "p")).size, 0);
        const { files } = await exportArchive(r, { outputDir: t.dir });
        assert.equal(files.length, 9);
      } finally {
        await r.close();
      }
      const c2 = new pg.Client({ connectionString: server.urlFor(name) });
      await c2.connect();
      const n = await c2.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'");
      await c2.end();
      assert.equal(n.rows[0].n, 0);
    } finally {
      t.remove();
    }
  });

  it("a database with a foreign table named like ours is refused (CORRUPT) and left alone", async () => {
    const name = freshDb();
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    await c.query(`CREATE DATABASE "${name}"`);
    await c.end();
    const c2 = new pg.Client({ connectionString: server.urlFor(name) });
    await c2.connect();
    await c2.query("CREATE TABLE runs (id serial PRIMARY KEY, what text); INSERT INTO runs (what) VALUES ('theirs')");
    try {
      const e = await errorOf(openArchive({ dbUrl: server.urlFor(name), outputDir: "/tmp" }));
      assert.equal(e.code, "CORRUPT");
      const r = await c2.query("SELECT what FROM runs");
      assert.deepEqual(r.rows, [{ what: "theirs" }]);
      const t = await c2.query("SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'schema_migrations'");
      assert.equal(t.rows[0].n, 0);
    } finally {
      await c2.end();
    }
  });
});
