/**
 * The check shared by the fixture test and the live test: an archive holds exactly what
 * test/import/write_offline_runs.py logged (its expected.wjson), read back through the archive's interface.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Archive } from "../../src/archive/index.js";
import { quoteLiteral } from "../../src/model/flatten.js";
import {
  isJsonObject,
  type JsonObject,
  type JsonValue,
  jsonEquals,
  parseStrictJson,
  parseWandbJson,
} from "../../src/model/json.js";

export const FIXTURES = join(import.meta.dirname, "fixtures");

export interface ExpectedRow {
  step: number;
  metrics: JsonObject;
  /** Keys whose expected value is a subset of the stored object (media objects with generated paths). */
  partial?: string[];
}

export interface ExpectedRun {
  entity: string;
  project: string;
  run_name?: string;
  group?: string;
  job_type?: string;
  tags?: string[];
  notes?: string;
  state: string;
  config: JsonObject;
  summary?: JsonObject;
  output_contains?: string[];
  history?: ExpectedRow[];
  /** A killed run: rows 0..n-1 without a gap, each a function of its step (n unknown: what reached the disk). */
  killed?: { logged_at_least: number };
}

export function loadExpected(dir: string): Record<string, ExpectedRun> {
  const doc = parseWandbJson(readFileSync(join(dir, "expected.wjson"), "utf8")) as JsonObject;
  return doc.runs as unknown as Record<string, ExpectedRun>;
}

/** True when every key of `want` is in `got` with an equal value (objects compared the same way, recursively). */
export function isSubset(want: JsonValue, got: JsonValue): boolean {
  if (isJsonObject(want)) {
    return isJsonObject(got) && Object.keys(want).every((k) => k in got && isSubset(want[k]!, got[k]!));
  }
  return jsonEquals(want, got);
}

async function objects(archive: Archive, sql: string): Promise<Record<string, unknown>[]> {
  const r = await archive.query(sql);
  return r.rows.map((row) => Object.fromEntries(r.columns.map((c, i) => [c, row[i]])));
}

function json(v: unknown): JsonValue {
  return typeof v === "string" ? parseStrictJson(v) : (v as JsonValue);
}

/** The killed run's rows are a function of their step (see KILLED_CHILD in the generator). */
export function killedRow(step: number): JsonObject {
  return { x: step * 2, y: step / 4, pad: "p".repeat(40) };
}

/** Asserts the archive holds every expected run exactly; returns the stored history rows per run. */
export async function checkArchive(archive: Archive, expected: Record<string, ExpectedRun>): Promise<void> {
  for (const [id, want] of Object.entries(expected)) {
    const where = `entity = ${quoteLiteral(want.entity)} AND project = ${quoteLiteral(want.project)} AND run_id = ${quoteLiteral(id)}`;
    const runs = await objects(archive, `SELECT * FROM runs WHERE ${where}`);
    assert.equal(runs.length, 1, `run ${id}: one row`);
    const run = runs[0]!;
    assert.equal(run.state, want.state, `run ${id}: state`);
    assert.match(String(run.source), /\.wandb$/, `run ${id}: source is the local file`);
    if (want.run_name !== undefined) assert.equal(run.run_name, want.run_name);
    if (want.group !== undefined) assert.equal(run.group, want.group);
    if (want.job_type !== undefined) assert.equal(run.job_type, want.job_type);
    if (want.notes !== undefined) assert.equal(run.notes, want.notes);
    if (want.tags !== undefined) assert.deepEqual(run.tags, want.tags);
    const config = json(run.config);
    assert.ok(jsonEquals(config, want.config), `run ${id}: config ${JSON.stringify(run.config)}`);
    if (want.summary) {
      const summary = json(run.summary);
      assert.ok(isSubset(want.summary, summary), `run ${id}: summary ${String(run.summary).slice(0, 500)}`);
    }
    const rows = await objects(
      archive,
      `SELECT step, "timestamp", runtime, metrics FROM history WHERE ${where} ORDER BY step`,
    );
    assert.equal(Number(run.last_history_step), rows.length > 0 ? Number(rows[rows.length - 1]!.step) : -1);
    if (want.history) {
      assert.deepEqual(
        rows.map((r) => Number(r.step)),
        want.history.map((r) => r.step),
        `run ${id}: steps`,
      );
      want.history.forEach((w, i) => {
        const got = json(rows[i]!.metrics) as JsonObject;
        const partial = new Set(w.partial ?? []);
        for (const k of Object.keys(w.metrics)) {
          const ok = partial.has(k) ? isSubset(w.metrics[k]!, got[k]!) : jsonEquals(w.metrics[k]!, got[k]!);
          assert.ok(ok, `run ${id} step ${w.step} key ${k}: ${JSON.stringify(String(got[k]))}`);
        }
        assert.deepEqual(Object.keys(got).sort(), Object.keys(w.metrics).sort(), `run ${id} step ${w.step}: keys`);
        assert.ok(rows[i]!.timestamp !== null && Number(rows[i]!.runtime) >= 0, `run ${id}: _timestamp/_runtime`);
      });
    }
    if (want.killed) {
      assert.ok(rows.length > 0, `run ${id}: rows before the kill are kept`);
      // (the script went on logging while it read the child's 400th line: more rows than that may be there)
      rows.forEach((r, i) => {
        assert.equal(Number(r.step), i, `run ${id}: steps 0..n-1 without a gap`);
        assert.ok(jsonEquals(json(r.metrics), killedRow(i)), `run ${id} step ${i}`);
      });
    }
  }
}
