/**
 * A tiny hand-written FakeStore for the server tests: three runs with known data, so the tests can assert exact
 * wire values (NaN inside history strings, bigints, sparse steps) independently of the generator.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FakeFile, FakeRun, FakeStore, FObject, MutateOp, ParquetExport } from "./model.js";

export class StubFilterError extends Error {
  override name = "FilterError";
}
export class StubMutateError extends Error {
  override name = "MutateError";
}

function enc(v: unknown): string {
  if (typeof v === "number" && !Number.isFinite(v)) return Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
  if (typeof v === "bigint") return v.toString();
  if (Array.isArray(v)) return `[${v.map(enc).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}:${enc(x)}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

function run(name: string, i: number, over: Partial<FakeRun>): FakeRun {
  return {
    name,
    storageId: Buffer.from(`Run:v1:${name}:stub-project:stub-entity`).toString("base64"),
    displayName: `display-${name}`,
    state: "finished",
    tags: ["t1"],
    group: null,
    jobType: null,
    sweepName: null,
    commit: null,
    readOnly: false,
    createdAt: `2025-01-0${i + 1}T00:00:00`,
    heartbeatAt: `2025-01-0${i + 1}T01:00:00`,
    description: null,
    notes: null,
    user: { name: "Stub User", username: "stub", email: "stub@example.com" },
    config: { lr: 0.1 },
    wandbConfig: { cli_version: "0.0.0" },
    summary: { loss: 0.5, big: 12345678901234567890n },
    systemMetrics: { cpu: 1 },
    firstStep: -1,
    lastStep: -1,
    historyLineCount: 0,
    exportedThrough: 0,
    deleted: false,
    ...over,
  };
}

export function createStubStore(): FakeStore & { parquetDir: string } {
  const parquetDir = mkdtempSync(join(tmpdir(), "fake-wandb-stub-"));
  const parquetFile = join(parquetDir, "run-a-0.parquet");
  writeFileSync(parquetFile, Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 256)));
  const runs: FakeRun[] = [
    run("run-a", 0, { firstStep: 0, lastStep: 9, historyLineCount: 10, exportedThrough: 5, sweepName: "sw1" }),
    run("run-b", 1, { state: "running", firstStep: 5, lastStep: 7, historyLineCount: 3 }),
    run("run-c", 2, { state: "crashed" }),
  ];
  const files: Record<string, FakeFile[]> = {
    "run-a": [
      {
        name: "wandb-metadata.json",
        sizeBytes: 13,
        md5: "md5a",
        mimetype: "application/json",
        updatedAt: "2025-01-01T00:00:00",
      },
      {
        name: "media/images/a b.png",
        sizeBytes: 4,
        md5: "md5b",
        mimetype: "image/png",
        updatedAt: "2025-01-01T00:00:00",
      },
      { name: "output.log", sizeBytes: 5, md5: "md5c", mimetype: "text/plain", updatedAt: "2025-01-01T00:00:00" },
      { name: "../../escape.txt", sizeBytes: 3, md5: "md5d", mimetype: "text/plain", updatedAt: "2025-01-01T00:00:00" },
    ],
  };
  const contents: Record<string, Buffer> = {
    "run-a/wandb-metadata.json": Buffer.from('{"os":"stub"}'),
    "run-a/media/images/a b.png": Buffer.from([1, 2, 3, 4]),
    "run-a/output.log": Buffer.from("hello"),
    "run-a/../../escape.txt": Buffer.from("esc"),
  };
  const row = (r: FakeRun, step: number): FObject => ({
    _step: step,
    _runtime: step * 1.5,
    _timestamp: 1700000000 + step,
    loss: step === 3 ? Number.NaN : 1 / (step + 1),
    ...(step % 2 === 0 ? { acc: step / 10 } : {}),
    ...(r.name === "run-a" && step === 9 ? { huge: 9007199254740993n } : {}),
  });
  const rowsOf = (r: FakeRun, lo: number, hi: number): FObject[] => {
    const out: FObject[] = [];
    if (r.firstStep < 0) return out;
    for (let s = Math.max(lo, r.firstStep); s < Math.min(hi, r.lastStep + 1); s++) out.push(row(r, s));
    return out;
  };
  const store: FakeStore & { parquetDir: string } = {
    parquetDir,
    entity: "stub-entity",
    project: "stub-project",
    projectId: 123,
    internalId: "UHJvamVjdEludGVybmFsSWQ6MTIz",
    viewer: { id: "VXNlcjox", name: "Stub User", username: "stub", email: "stub@example.com", entity: "stub-entity" },
    exportsEnabled: true,
    runs: () => runs.filter((r) => !r.deleted),
    run: (name) => runs.find((r) => r.name === name && !r.deleted),
    query(filters, order) {
      let out = runs.filter((r) => !r.deleted);
      if (filters) {
        for (const [k, v] of Object.entries(filters)) {
          if (k === "state") out = out.filter((r) => r.state === v);
          else if (k === "$and" || k === "$or") continue;
          else throw new StubFilterError(`invalid filter column: ${k}`);
        }
      }
      if (order === "-created_at") out = [...out].reverse();
      return out;
    },
    wireConfig: (r) =>
      enc({
        ...Object.fromEntries(Object.entries(r.config).map(([k, v]) => [k, { value: v, desc: null }])),
        _wandb: { value: r.wandbConfig },
      }),
    wireSummary: (r) => enc(r.summary),
    wireSystemMetrics: (r) => enc(r.systemMetrics),
    historyKeys: (r) => ({
      lastStep: r.lastStep,
      keys: { loss: { typeCounts: [{ type: "number", count: r.historyLineCount }] } },
    }),
    historyRows: (r, lo, hi) => rowsOf(r, lo, hi),
    encodeHistoryLine: (r) => enc(r),
    sampleHistory: (r, samples, lo, hi) => rowsOf(r, lo ?? 0, hi ?? Number.MAX_SAFE_INTEGER).slice(0, samples),
    sampledHistory: (r, spec) =>
      rowsOf(r, spec.minStep ?? 0, (spec.maxStep ?? Number.MAX_SAFE_INTEGER - 1) + 1)
        .filter((x) => spec.keys.every((k) => k in x))
        .map((x) => Object.fromEntries(spec.keys.map((k) => [k, x[k] as FObject[string]]))),
    events: (r) =>
      r.firstStep < 0
        ? []
        : Array.from({ length: 4 }, (_, i) => ({ _wandb: true, _timestamp: 1700000000 + i, "system.cpu": i })),
    async parquetExports(r): Promise<ParquetExport[]> {
      return r.name === "run-a" ? [{ id: "export-0", path: parquetFile, sizeBytes: 1000 }] : [];
    },
    liveData: (r, keys) =>
      rowsOf(r, r.exportedThrough, r.lastStep + 1).map((x) => Object.fromEntries(keys.map((k) => [k, x[k] ?? null]))),
    files: (r) => files[r.name] ?? [],
    fileContent: (r, name) => contents[`${r.name}/${name}`],
    truthRun: (r) => ({ name: r.name, state: r.state, config: r.config, summary: r.summary }),
    truthLine: (x) => enc(x),
    mutate(op: MutateOp) {
      const target = "run" in op ? runs.find((r) => r.name === op.run) : undefined;
      if ("run" in op && !target) throw new StubMutateError(`unknown run ${op.run}`);
      if (op.op === "setState" && target) target.state = op.state;
      else if (op.op === "deleteRun" && target) target.deleted = true;
      else if (op.op === "addRuns") {
        for (let i = 0; i < op.count; i++) runs.push(run(`run-new-${runs.length}`, 3, {}));
      }
    },
  };
  return store;
}

import assert from "node:assert/strict";
// This module is shared by the server tests (a *.test.ts name keeps it out of the build); one sanity test.
import { test } from "node:test";

test("stub store: sparse history window and NaN row", () => {
  const s = createStubStore();
  const a = s.run("run-a");
  assert.ok(a);
  assert.equal(s.historyRows(a, 2, 5).length, 3);
  assert.match(s.encodeHistoryLine(s.historyRows(a, 3, 4)[0] as FObject), /"loss":NaN/);
});
