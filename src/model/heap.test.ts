import assert from "node:assert/strict";
import { test } from "node:test";
import { collectGarbage } from "./heap.js";

function unreachable(): WeakRef<object> {
  return new WeakRef({ payload: new Array(100_000).fill(1.5) });
}

test("collectGarbage collects the heap now: an unreachable object is gone after it", async () => {
  const ref = unreachable();
  // A WeakRef's target is kept until the current job ends.
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(collectGarbage({}), true);
  assert.equal(ref.deref(), undefined);
});

test("DR_WANDB_COLLECT_BEFORE_NATIVE=0 turns it off", () => {
  assert.equal(collectGarbage({ DR_WANDB_COLLECT_BEFORE_NATIVE: "0" }), false);
});
