import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import { makeRecord, makeState, runArchiveTests, tempDir } from "../../test/support/archive-conformance.js";
import { ArchiveError } from "./errors.js";
import { openArchive, parseArchiveTarget } from "./open.js";

runArchiveTests("duckdb", async () => {
  const t = tempDir("dr-wandb-duckdb-");
  return { dbUrl: undefined, outputDir: t.dir, cleanup: async () => t.remove() };
});

runArchiveTests("duckdb (duckdb: URL)", async () => {
  const t = tempDir("dr-wandb-duckdb-");
  return {
    dbUrl: `duckdb:${join(t.dir, "nested", "folder", "my.duckdb")}`,
    outputDir: t.dir,
    cleanup: async () => t.remove(),
  };
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ArchiveError, String(e));
    assert.ok(!e.message.includes("\n"));
    return e.code;
  }
  return "no error";
}

describe("duckdb archive specifics", () => {
  it("parses --db-url forms", () => {
    assert.deepEqual(parseArchiveTarget({ outputDir: "/o" }), { kind: "duckdb", path: "/o/wandb.duckdb" });
    assert.deepEqual(parseArchiveTarget({ dbUrl: "duckdb:/x/a.db", outputDir: "/o" }), {
      kind: "duckdb",
      path: "/x/a.db",
    });
    assert.deepEqual(parseArchiveTarget({ dbUrl: "/x/b.duckdb", outputDir: "/o" }), {
      kind: "duckdb",
      path: "/x/b.duckdb",
    });
    assert.equal(parseArchiveTarget({ dbUrl: "postgres://u:p@h/db", outputDir: "/o" }).kind, "postgres");
    assert.equal(parseArchiveTarget({ dbUrl: "postgresql+psycopg2://u@h/db", outputDir: "/o" }).kind, "postgres");
    for (const bad of [
      "mysql://u:secret@h/db",
      "sqlite:///x.db",
      "postgresql+asyncpg://u:secret@h/db",
      "just-a-name",
    ]) {
      assert.throws(
        () => parseArchiveTarget({ dbUrl: bad, outputDir: "/o" }),
        (e: unknown) => e instanceof ArchiveError && e.code === "BAD_URL" && !e.message.includes("secret"),
        bad,
      );
    }
  });

  it("a text file named wandb.duckdb is CORRUPT and left untouched", async () => {
    const t = tempDir("dr-wandb-duckdb-");
    try {
      const f = join(t.dir, "wandb.duckdb");
      writeFileSync(f, "hello, I am not a database\n".repeat(100));
      const before = readFileSync(f);
      assert.equal(await codeOf(openArchive({ outputDir: t.dir })), "CORRUPT");
      assert.equal(await codeOf(openArchive({ outputDir: t.dir, readOnly: true })), "CORRUPT");
      assert.deepEqual(readFileSync(f), before);
    } finally {
      t.remove();
    }
  });

  it("a DuckDB file with unrelated tables is not a dr-wandb archive, and is not changed", async () => {
    const t = tempDir("dr-wandb-duckdb-");
    try {
      const f = join(t.dir, "wandb.duckdb");
      const inst = await DuckDBInstance.create(f);
      const c = await inst.connect();
      await c.run("CREATE TABLE customers (id INTEGER, name VARCHAR); INSERT INTO customers VALUES (1, 'x')");
      c.closeSync();
      inst.closeSync();
      const before = readFileSync(f);
      const e = openArchive({ outputDir: t.dir });
      await assert.rejects(
        e,
        (err: unknown) =>
          err instanceof ArchiveError && err.code === "CORRUPT" && /not a dr-wandb archive/.test(err.message),
      );
      assert.deepEqual(readFileSync(f), before);
    } finally {
      t.remove();
    }
  });

  it("a missing archive opened read-only is NOT_FOUND (and not created)", async () => {
    const t = tempDir("dr-wandb-duckdb-");
    try {
      assert.equal(await codeOf(openArchive({ outputDir: t.dir, readOnly: true })), "NOT_FOUND");
    } finally {
      t.remove();
    }
  });

  it("a second process opening the archive for writing gets LOCKED", async () => {
    const t = tempDir("dr-wandb-duckdb-");
    try {
      const a = await openArchive({ outputDir: t.dir });
      await a.writeRun({ record: makeRecord("r1"), state: makeState("r1") });
      try {
        const script = `import { openArchive } from ${JSON.stringify(new URL("./open.ts", import.meta.url).href)};
          try { await openArchive({ outputDir: ${JSON.stringify(t.dir)} }); console.log("OPENED"); }
          catch (e) { console.log(e.code + " " + e.message); }`;
        const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        child.stdout.on("data", (d) => {
          out += d;
        });
        await new Promise((res) => child.on("close", res));
        assert.match(out, /^LOCKED another dr-wandb process \(PID \d+\) holds the archive/);
      } finally {
        await a.close();
      }
    } finally {
      t.remove();
    }
  });
});
