import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RunSyncState } from "../archive/archive.js";
import type { WandbRun } from "../wandb/types.js";
import { findDeleted, fingerprint, parseStoredSelection, planRun, planSync, storedSelection } from "./plan.js";
import { buildFilters } from "./selection.js";

function run(name: string, over: Partial<WandbRun> = {}): WandbRun {
  return {
    storageId: `id-${name}`,
    name,
    displayName: `display ${name}`,
    entity: "e",
    project: "p",
    state: "finished",
    tags: [],
    group: null,
    jobType: null,
    sweepName: null,
    commit: null,
    readOnly: false,
    createdAt: "2025-01-01T00:00:00",
    heartbeatAt: "2025-01-01T01:00:00",
    description: null,
    notes: null,
    user: { name: "u", username: "u" },
    config: { lr: 0.1 },
    rawConfig: { lr: { value: 0.1, desc: null } },
    summary: { loss: 1 },
    systemMetrics: {},
    historyKeys: { lastStep: 99 },
    lastHistoryStep: 99,
    historyLineCount: 100,
    raw: {},
    ...over,
  };
}

function state(r: WandbRun, over: Partial<RunSyncState> = {}): RunSyncState {
  return {
    entity: "e",
    project: "p",
    run_id: r.name,
    state: r.state,
    heartbeat_at: r.heartbeatAt,
    last_step: r.lastHistoryStep,
    history_complete: true,
    fingerprint: fingerprint(r),
    deleted: false,
    synced_at: "2025-01-02T00:00:00Z",
    selection: "sel",
    ...over,
  };
}

const opts = { withHistory: true, forceRefresh: false, selection: "sel" };

describe("planRun", () => {
  it("reads a new run whole, with its metadata", () => {
    const a = planRun(run("a"), undefined, opts);
    assert.deepEqual(a?.reasons, ["new"]);
    assert.deepEqual(a?.history, { kind: "replace" });
    assert.equal(a?.fetchMetadata, true);
  });

  it("leaves an unchanged finished run alone", () => {
    const r = run("a");
    assert.equal(planRun(r, state(r), opts), null);
  });

  it("appends only new steps of a running run", () => {
    const before = run("a", { state: "running", lastHistoryStep: 99 });
    const now = run("a", { state: "running", lastHistoryStep: 149, heartbeatAt: "2025-01-01T02:00:00" });
    const a = planRun(now, state(before), opts);
    assert.deepEqual(a?.history, { kind: "append", fromStep: 100 });
    assert.ok(a?.reasons.includes("running"));
    assert.equal(a?.fetchMetadata, false);
  });

  it("re-reads the record of a retagged finished run without touching its history", () => {
    const r = run("a");
    const a = planRun({ ...r, tags: ["best"] }, state(r), opts);
    assert.deepEqual(a?.reasons, ["changed"]);
    assert.deepEqual(a?.history, { kind: "none" });
  });

  it("finishes the tail of a run that was running", () => {
    const before = run("a", { state: "running" });
    const now = run("a", { state: "finished", lastHistoryStep: 120 });
    const a = planRun(now, state(before), opts);
    assert.ok(a?.reasons.includes("was-running"));
    assert.deepEqual(a?.history, { kind: "append", fromStep: 100 });
  });

  it("completes history for a run first stored with --runs-only", () => {
    const r = run("a");
    const a = planRun(r, state(r, { history_complete: false, last_step: -1 }), opts);
    assert.deepEqual(a?.history, { kind: "append", fromStep: 0 });
    assert.deepEqual(a?.reasons, ["history-incomplete"]);
  });

  it("replaces history when the selection changed", () => {
    const r = run("a");
    const a = planRun(r, state(r, { selection: "other" }), opts);
    assert.deepEqual(a?.history, { kind: "replace" });
  });

  it("re-reads everything with --force-refresh", () => {
    const r = run("a");
    const a = planRun(r, state(r), { ...opts, forceRefresh: true });
    assert.deepEqual(a?.history, { kind: "replace" });
    assert.deepEqual(a?.reasons, ["force-refresh"]);
  });

  it("reads no history in runs-only mode, nor for runs without history", () => {
    assert.deepEqual(planRun(run("a"), undefined, { ...opts, withHistory: false })?.history, { kind: "none" });
    assert.deepEqual(planRun(run("b", { lastHistoryStep: -1 }), undefined, opts)?.history, { kind: "none" });
  });

  it("re-reads an unchanged run for extras it was stored without (files, system metrics), not its history", () => {
    const r = run("a");
    const extras = '{"files":{"pattern":null},"systemMetrics":null}';
    const a = planRun(r, state(r), { ...opts, extras });
    assert.deepEqual(a?.reasons, ["extras-added"]);
    assert.deepEqual(a?.history, { kind: "none" });
    const stored = state(r, { selection: storedSelection("sel", extras) });
    assert.equal(planRun(r, stored, { ...opts, extras }), null, "already stored with these extras");
    assert.equal(planRun(r, stored, opts), null, "dropping extras needs nothing");
    assert.deepEqual(parseStoredSelection("legacy"), { history: "legacy", extras: "" });
  });

  it("brings back a run that was marked deleted", () => {
    const r = run("a");
    assert.deepEqual(planRun(r, state(r, { deleted: true }), opts)?.reasons, ["undeleted"]);
  });
});

describe("planSync and findDeleted", () => {
  it("splits a listing into actions and unchanged runs", () => {
    const a = run("a");
    const b = run("b");
    const plan = planSync([a, b], new Map([["a", state(a)]]), opts);
    assert.deepEqual(plan.unchanged, ["a"]);
    assert.deepEqual(
      plan.actions.map((x) => x.run.name),
      ["b"],
    );
  });

  it("marks runs the server no longer lists, only after a complete unfiltered listing", () => {
    const a = run("a");
    const b = run("b");
    const stored = new Map([
      ["a", state(a)],
      ["b", state(b)],
      ["c", state(run("c"), { deleted: true })],
    ]);
    assert.deepEqual(findDeleted(stored, new Set(["a"]), { complete: true, filtered: false }), ["b"]);
    assert.equal(findDeleted(stored, new Set(["a"]), { complete: false, filtered: false }), null);
    assert.equal(findDeleted(stored, new Set(["a"]), { complete: true, filtered: true }), null);
  });
});

describe("buildFilters", () => {
  it("combines the shorthand options with the user's filter", () => {
    assert.deepEqual(buildFilters(undefined), {});
    assert.deepEqual(buildFilters({ state: ["finished"] }), { state: { $in: ["finished"] } });
    assert.deepEqual(buildFilters({ filters: { group: "g" }, tags: ["x"], createdAfter: "2025-01-02" }), {
      $and: [{ group: "g" }, { tags: { $in: ["x"] } }, { createdAt: { $gte: "2025-01-02T00:00:00" } }],
    });
  });

  it("rejects a date it cannot read", () => {
    assert.throws(() => buildFilters({ createdBefore: "yesterday-ish" }), /not a date/);
  });
});
