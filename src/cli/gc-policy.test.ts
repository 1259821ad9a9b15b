import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { runNode, tempDir } from "../../test/helpers.js";
import { gcFlags, policySetting } from "./gc-policy.js";

test("gcFlags: ours by default, 0 leaves V8's own policy, a bad value is ours", () => {
  assert.deepEqual(gcFlags({}), ["--heap-growing-percent=50", "--semi-space-growth-factor=1"]);
  assert.deepEqual(gcFlags({ DR_WANDB_HEAP_GROWING_PERCENT: "0", DR_WANDB_YOUNG_GROWTH_FACTOR: "0" }), []);
  assert.deepEqual(gcFlags({ DR_WANDB_HEAP_GROWING_PERCENT: "80", DR_WANDB_YOUNG_GROWTH_FACTOR: " 2 " }), [
    "--heap-growing-percent=80",
    "--semi-space-growth-factor=2",
  ]);
  for (const bad of ["x", "-1", "1.5", "17"]) assert.equal(policySetting(bad, 1, 16), 1, bad);
});

/** The young generation's size (MiB) after a child process, started as the bins start, churned many survivors. */
async function youngGenerationAfterChurn(env: NodeJS.ProcessEnv): Promise<number> {
  const policy = new URL("./gc-policy.ts", import.meta.url).href;
  // A third of the objects survive for a while: V8 doubles its semi-spaces at such survival rates unless told not to.
  const script = `
    await import(${JSON.stringify(policy)});
    const { getHeapSpaceStatistics } = await import("node:v8");
    const keep = [];
    for (let i = 0; i < 3e6; i++) {
      const o = { a: i, b: [i, i + 1], c: "x" + i };
      if (i % 3 === 0) keep.push(o);
      if (keep.length > 2e5) keep.length = 0;
    }
    const young = getHeapSpaceStatistics().find((s) => s.space_name === "new_space");
    console.log(young.space_size);
  `;
  await using dir = await tempDir("dr-wandb-gc-");
  const file = join(dir.path, "start.mjs");
  await writeFile(file, script);
  // runNode's child has a clean environment (no DR_WANDB_* of the caller's) plus `env`.
  const r = await runNode(file, { env, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  return Number(r.stdout.trim()) / 2 ** 20;
}

// On a V8 that raises the growth factor to at least 2 (later than Node 20's) this fails: the policy is then lost.
test("the young generation keeps its starting size under our policy, and grows under V8's own", async () => {
  const ours = await youngGenerationAfterChurn({});
  const v8own = await youngGenerationAfterChurn({ DR_WANDB_YOUNG_GROWTH_FACTOR: "0" });
  assert.ok(ours <= 4, `young generation ${ours} MiB under our policy`);
  assert.ok(v8own > ours, `young generation ${v8own} MiB under V8's own policy, ${ours} under ours`);
});
