/**
 * `dr-wandb import` as users run it: a summary and exit 0 on the real fixtures; every bad input one line on stderr,
 * its exit code, no stack trace, and nothing written.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ImportError, planImport } from "../../src/import/index.js";
import { LogWriter } from "../../src/import/log-writer.js";
import { runCli, tempDir } from "../helpers.js";
import { FIXTURES } from "./expected.js";

function assertOneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${stderr}`);
  assert.doesNotMatch(stderr, /^\s+at /m, "no stack trace");
  assert.match(lines[0]!, pattern);
}

describe("dr-wandb import (CLI)", () => {
  it("imports a wandb/ folder, prints a JSON summary, and exports Parquet", async () => {
    await using dir = await tempDir();
    const r = await runCli(["import", join(FIXTURES, "wandb"), "--output-dir", dir.path, "--json", "-q"], {
      cwd: dir.path,
    });
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim()) as { command: string; runsWritten: number; runs: number };
    assert.equal(summary.command, "import");
    assert.equal(summary.runsWritten, summary.runs);
    assert.ok(existsSync(join(dir.path, "runs_history.parquet")));
  });

  it("refuses bad input with one line and the documented exit code", async () => {
    await using dir = await tempDir();
    const out = join(dir.path, "out");
    const text = join(dir.path, "notes.wandb");
    await writeFile(text, "this is not a log\n");
    const notLog = await runCli(["import", text, "--output-dir", out], { cwd: dir.path });
    assert.equal(notLog.code, 2);
    assertOneLine(notLog.stderr, /is not a W&B log/);

    const newer = join(dir.path, "newer.wandb");
    await writeFile(newer, new LogWriter(3).bytes());
    const v = await runCli(["import", newer, "--output-dir", out], { cwd: dir.path });
    assert.equal(v.code, 2);
    assertOneLine(v.stderr, /format version 3.*upgrade dr-wandb/);

    // a missing PATH and a folder without logs: exit 4 (the same ImportError mapping, checked without a process)
    assert.throws(
      () => planImport([join(dir.path, "nope")]),
      (e: unknown) => e instanceof ImportError && e.code === "NOT_FOUND" && /no such file or folder/.test(e.message),
    );
    const empty = join(dir.path, "empty");
    await mkdir(empty);
    assert.throws(
      () => planImport([empty]),
      (e: unknown) => e instanceof ImportError && e.code === "NOT_FOUND" && /no \.wandb file/.test(e.message),
    );

    const w = new LogWriter();
    w.record({ num: 1, header: {} });
    w.record({ num: 2, run: { runId: "anon01", project: "p" } });
    const anon = join(dir.path, "anon.wandb");
    await writeFile(anon, w.bytes());
    const noEntity = await runCli(["import", anon, "--output-dir", out], { cwd: dir.path });
    assert.equal(noEntity.code, 2);
    assertOneLine(noEntity.stderr, /names no entity.*--entity/);
    // nothing was written by the refused imports
    assert.ok(!existsSync(join(out, "runs_history.parquet")));

    const ok = await runCli(["import", anon, "--entity", "me", "--output-dir", out, "--no-export", "--json", "-q"], {
      cwd: dir.path,
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { runsWritten: number }).runsWritten, 1);
  });
});
