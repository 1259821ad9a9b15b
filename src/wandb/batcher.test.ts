/**
 * AliasBatcher against the real fake-wandb over a real Transport: reads of a burst share one document, also when the
 * event loop was busy between them (a gather timer that fires late looks again), and a lone read goes out alone.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import type { JsonObject } from "../model/json.js";
import { AliasBatcher, type BatchKind } from "./batcher.js";
import { Transport } from "./transport.js";

let fake: FakeWandb;
let transport: Transport;
let names: string[];
before(async () => {
  fake = await startFakeWandb({ seed: 41, runs: 3, steps: 5, metrics: 2 });
  transport = new Transport({ baseUrl: fake.url, apiKey: fake.apiKey });
  const res = await fetch(`${fake.url}/_fake/truth/runs`);
  // NDJSON: one run per line
  names = (await res.text())
    .split("\n")
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { name: string }).name);
});
after(async () => {
  await transport?.close();
  await fake?.close();
});

const kind: BatchKind<{ run: string; entity: string; project: string }> = {
  operation: "BatchedRunNames",
  declare: (i) => `$n${i}: String!`,
  select: (i) => `r${i}: run(name: $n${i}) { name }`,
  variables: (i, a) => ({ [`n${i}`]: a.run }),
  single: (a) =>
    transport.graphql(
      "OneRunName",
      "query OneRunName($entity: String!, $project: String!, $name: String!) { project(name: $project, entityName: $entity) { run(name: $name) { name } } }",
      { entity: a.entity, project: a.project, name: a.run },
    ),
};

async function operations(): Promise<Record<string, number>> {
  const res = await fetch(`${fake.url}/_fake/stats`);
  return ((await res.json()) as { byOperation: Record<string, number> }).byOperation;
}

function read(b: AliasBatcher<{ run: string; entity: string; project: string }>, run: string): Promise<JsonObject> {
  return b.load(fake.entity, fake.project, `${fake.entity}/${fake.project}/${run}`, { run, ...fake }, 1);
}

function busyFor(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // the event loop is blocked, as by decoding a large answer
  }
}

describe("AliasBatcher", () => {
  test("a read that follows a busy stretch of the event loop joins the burst's document", async () => {
    await fetch(`${fake.url}/_fake/stats/reset`, { method: "POST" });
    const b = new AliasBatcher(transport, {}, kind, { gatherMs: 40, maxWaitMs: 2000 });
    const first = read(b, names[0]!);
    const second = new Promise<JsonObject>((resolve, reject) => {
      setImmediate(() => {
        busyFor(120); // as an answer being decoded: the gather timer falls due meanwhile
        // the burst's next read comes in a later callback, which the overdue gather timer precedes
        setTimeout(() => read(b, names[1]!).then(resolve, reject), 0);
      });
    });
    const [a, c] = await Promise.all([first, second]);
    assert.deepEqual(a, { project: { run: { name: names[0] } } });
    assert.deepEqual(c, { project: { run: { name: names[1] } } });
    assert.deepEqual(await operations(), { BatchedRunNames: 1 });
    assert.equal(b.batches, 1);
  });

  test("a lone read goes out after the gather time, alone, with the SDK's document", async () => {
    await fetch(`${fake.url}/_fake/stats/reset`, { method: "POST" });
    const b = new AliasBatcher(transport, {}, kind, { gatherMs: 20, maxWaitMs: 400 });
    assert.deepEqual(await read(b, names[2]!), { project: { run: { name: names[2] } } });
    assert.deepEqual(await operations(), { OneRunName: 1 });
  });
});
