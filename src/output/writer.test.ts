import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { DuckDBInstance } from "@duckdb/node-api";
import { loadPickle, sampleRow, sampleRun, tempDir, tempFilesIn } from "../../test/support/writer-fixtures.js";
import type { HistoryRecord } from "../model/records.js";
import { DOWNLOAD_FORMATS, type DownloadFormat, ExportError, openProjectWriter, outputPaths } from "./writer.js";

const CHILD = fileURLToPath(new URL("../../test/support/writer-crash-child.ts", import.meta.url));

async function writeOld(format: DownloadFormat, dir: string): Promise<Map<string, Buffer>> {
  const w = await openProjectWriter({ format, outputDir: dir, entity: "ent", project: "proj", withHistory: true });
  await w.writeRun(sampleRun("old1"), [[sampleRow("old1", 0, { old: 1 })]]);
  const { files } = await w.close();
  const out = new Map<string, Buffer>();
  for (const f of files) out.set(f, await readFile(f));
  return out;
}

async function assertUnchanged(old: Map<string, Buffer>): Promise<void> {
  for (const [f, bytes] of old) assert.ok((await readFile(f)).equals(bytes), `${f} unchanged`);
}

describe("output names and options", () => {
  test("file names are the original's, plus system_metrics", () => {
    assert.deepStrictEqual(
      outputPaths({ format: "pkl", outputDir: "/d", entity: "ml-moe", project: "ft-scaling", withHistory: true }),
      { runs: "/d/ml-moe_ft-scaling_runs.pkl", histories: "/d/ml-moe_ft-scaling_histories.pkl", systemMetrics: null },
    );
    assert.deepStrictEqual(
      outputPaths({
        format: "parquet",
        outputDir: "out",
        entity: "e",
        project: "p.v2",
        withHistory: false,
        withSystemMetrics: true,
      }),
      { runs: "out/e_p.v2_runs.parquet", histories: null, systemMetrics: "out/e_p.v2_system_metrics.parquet" },
    );
    assert.equal(
      outputPaths({ format: "jsonl", outputDir: "o", entity: "e", project: "p", withHistory: true }).histories,
      "o/e_p_histories.jsonl",
    );
  });

  test("names that could leave outputDir are rejected before anything is created", async () => {
    const dir = await tempDir();
    for (const [entity, project] of [
      ["a/b", "p"],
      ["e", "../p"],
      ["..", "p"],
      ["e", "a\\b"],
      ["", "p"],
      ["e", "p\n"],
    ] as const) {
      await assert.rejects(
        openProjectWriter({ format: "pkl", outputDir: join(dir, "sub"), entity, project, withHistory: true }),
        (e: unknown) => e instanceof ExportError && e.code === "INVALID_NAME",
      );
    }
    assert.equal(existsSync(join(dir, "sub")), false);
  });

  test("outputDir is created (mkdir -p)", async () => {
    const dir = join(await tempDir(), "a", "b", "c");
    const w = await openProjectWriter({
      format: "jsonl",
      outputDir: dir,
      entity: "e",
      project: "p",
      withHistory: false,
    });
    assert.deepStrictEqual(await w.close(), { files: [join(dir, "e_p_runs.jsonl")] });
  });
});

for (const format of DOWNLOAD_FORMATS) {
  describe(`${format}: files appear whole or not at all`, () => {
    test("abort() removes temp files and keeps the older complete files", async () => {
      const dir = await tempDir();
      const old = await writeOld(format, dir);
      const w = await openProjectWriter({ format, outputDir: dir, entity: "ent", project: "proj", withHistory: true });
      await w.writeRun(sampleRun("new1"), [[sampleRow("new1", 0, { x: 1 })]]);
      assert.ok((await tempFilesIn(dir)).length > 0, "writes go to temp files");
      await w.abort();
      await w.abort(); // idempotent
      assert.deepStrictEqual(await tempFilesIn(dir), []);
      await assertUnchanged(old);
      assert.deepStrictEqual((await readdir(dir)).sort(), [...old.keys()].map((f) => f.slice(dir.length + 1)).sort());
    });

    test("a failing history source fails writeRun; the writer refuses more work; abort cleans up", async () => {
      const dir = await tempDir();
      const old = await writeOld(format, dir);
      const w = await openProjectWriter({ format, outputDir: dir, entity: "ent", project: "proj", withHistory: true });
      async function* failing(): AsyncGenerator<HistoryRecord[]> {
        yield [sampleRow("r1", 0, { a: 1 })];
        throw new Error("network gone");
      }
      await assert.rejects(w.writeRun(sampleRun("r1"), failing()), /network gone/);
      await assert.rejects(
        w.writeRun(sampleRun("r2"), []),
        (e: unknown) => e instanceof ExportError && e.code === "WRITER_FAILED",
      );
      await assert.rejects(w.close(), (e: unknown) => e instanceof ExportError && e.code === "WRITER_FAILED");
      await w.abort();
      assert.deepStrictEqual(await tempFilesIn(dir), []);
      await assertUnchanged(old);
    });

    test("close() replaces older files; the writer is then closed", async () => {
      const dir = await tempDir();
      await writeOld(format, dir);
      const w = await openProjectWriter({ format, outputDir: dir, entity: "ent", project: "proj", withHistory: true });
      await w.writeRun(sampleRun("new1"), []);
      const { files } = await w.close();
      assert.equal(files.length, 2);
      assert.deepStrictEqual(await tempFilesIn(dir), []);
      for (const f of files) assert.ok((await stat(f)).isFile());
      await assert.rejects(
        w.writeRun(sampleRun("x"), []),
        (e: unknown) => e instanceof ExportError && e.code === "WRITER_CLOSED",
      );
      await w.abort(); // no-op after close: the new files stay
      for (const f of files) assert.ok(existsSync(f));
    });
  });
}

describe("writer lifecycle", () => {
  test("writeRun calls must not overlap", async () => {
    const dir = await tempDir();
    const w = await openProjectWriter({
      format: "jsonl",
      outputDir: dir,
      entity: "e",
      project: "p",
      withHistory: true,
    });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    async function* slow(): AsyncGenerator<HistoryRecord[]> {
      await gate;
      yield [];
    }
    const first = w.writeRun(sampleRun("r1"), slow());
    await assert.rejects(
      w.writeRun(sampleRun("r2"), []),
      (e: unknown) => e instanceof ExportError && e.code === "WRITER_BUSY",
    );
    release();
    await first;
    await w.close();
  });

  test("temp files left by a dead process are removed at open; others are left alone", async () => {
    const dir = await tempDir();
    const deadPid = 2 ** 22 + 12345; // above Linux's pid_max limit: never a live process
    const stale = [
      `.ent_proj_runs.pkl.tmp-${deadPid}-abcdef012345`,
      `.ent_proj_histories.pkl.spool-${deadPid}-0123456789ab`,
    ];
    const keep = [
      `.ent_proj_runs.pkl.tmp-${process.pid}-abcdef012345`, // a live process (us)
      `.other_proj_runs.pkl.tmp-${deadPid}-abcdef012345`, // another project's
      "notes.txt",
    ];
    for (const n of [...stale, ...keep]) await writeFile(join(dir, n), "x");
    const w = await openProjectWriter({
      format: "pkl",
      outputDir: dir,
      entity: "ent",
      project: "proj",
      withHistory: true,
    });
    await w.abort();
    assert.deepStrictEqual((await readdir(dir)).sort(), [...keep].sort());
  });
});

/**
 * Runs the crash child and SIGKILLs it at the progress line `killAt` (the child waits for a go-ahead after each line,
 * so the kill lands exactly there); every other line is answered with a go-ahead.
 */
function runAndKill(
  format: DownloadFormat,
  dir: string,
  runs: number,
  rows: number,
  killAt: string,
): Promise<{ killed: boolean; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", CHILD, format, dir, String(runs), String(rows)], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let output = "";
    let pending = "";
    let stderr = "";
    let killed = false;
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString();
      pending += d.toString();
      let nl = pending.indexOf("\n");
      while (nl >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line === killAt && !killed) killed = child.kill("SIGKILL");
        else if (!killed) child.stdin.write("go\n");
        nl = pending.indexOf("\n");
      }
    });
    child.stdin.on("error", () => {}); // the child was killed while we answered
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (signal === "SIGKILL" || code === 0) resolve({ killed: signal === "SIGKILL", output });
      else reject(new Error(`child exited ${code}: ${stderr}`));
    });
  });
}

/** Checks a completed file holds the full new project; throws if torn. */
async function assertCompleteNew(format: DownloadFormat, file: string, runs: number, rows: number): Promise<void> {
  const isRuns = file.endsWith(`_runs.${format}`);
  if (format === "pkl") {
    const data = (await loadPickle(file)) as unknown[];
    assert.equal(data.length, runs);
    if (!isRuns) for (const h of data as unknown[][]) assert.equal(h.length, rows);
  } else if (format === "jsonl") {
    const text = await readFile(file, "utf8");
    assert.ok(text.endsWith("\n"));
    const lines = text.split("\n").filter((l) => l !== "");
    for (const l of lines) JSON.parse(l);
    assert.equal(lines.length, isRuns ? runs : runs * rows);
  } else {
    const conn = await (await DuckDBInstance.create(":memory:")).connect();
    try {
      const r = await conn.runAndReadAll(`SELECT count(*)::INTEGER AS n FROM read_parquet('${file}')`);
      assert.equal(r.getRowObjectsJson()[0]!.n, isRuns ? runs : runs * rows);
    } finally {
      conn.closeSync();
    }
  }
}

describe("a writer killed with SIGKILL leaves the old file or the new one, never a torn one", () => {
  const RUNS = 12;
  const ROWS = 600;
  for (const format of DOWNLOAD_FORMATS) {
    test(format, { timeout: 240_000 }, async () => {
      // Before the first run is written, mid-way, before close (nothing renamed: the old files), after close (the
      // new files, renamed whole).
      const moments = ["run 0", `run ${RUNS / 2}`, "closing", "closed"];
      const seen = { old: 0, new: 0 };
      for (const killAt of moments) {
        const dir = await tempDir();
        const old = await writeOld(format, dir);
        const { killed } = await runAndKill(format, dir, RUNS, ROWS, killAt);
        assert.ok(killed, `killed at "${killAt}"`);
        for (const [file, bytes] of old) {
          assert.ok(existsSync(file), `${file} exists (old or new)`);
          if ((await readFile(file)).equals(bytes)) {
            assert.notEqual(killAt, "closed", `${file}: still the old file after close`);
            seen.old++;
          } else {
            assert.equal(killAt, "closed", `${file}: replaced although killed at "${killAt}"`);
            await assertCompleteNew(format, file, RUNS, ROWS);
            seen.new++;
          }
        }
        if (!killed) assert.deepStrictEqual(await tempFilesIn(dir), []);
        // The next writer clears what the killed one left behind.
        const w = await openProjectWriter({
          format,
          outputDir: dir,
          entity: "ent",
          project: "proj",
          withHistory: true,
        });
        await w.abort();
        assert.deepStrictEqual(await tempFilesIn(dir), [], "stale temp files removed");
      }
      assert.ok(seen.old > 0 && seen.new > 0, `old ${seen.old}, new ${seen.new}`);
    });
  }
});
