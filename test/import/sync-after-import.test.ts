/**
 * Both sources for real: local logs imported (one run that W&B also has, one W&B never saw), then a real sync of the
 * project from fake-wandb. W&B's copy replaces the imported run's record and history (one row per run id, no
 * duplicated steps), the local-only run stays and is not marked deleted, and a second import keeps W&B's copy.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import { openArchive } from "../../src/archive/index.js";
import { importPaths } from "../../src/import/index.js";
import { LogWriter } from "../../src/import/log-writer.js";
import { connect } from "../../src/index.js";
import { syncProject } from "../../src/sync/pipeline.js";
import { tempDir, truthHistory, truthRuns } from "../helpers.js";

let fake: FakeWandb;
before(async () => {
  fake = await startFakeWandb({ seed: 5, runs: 3, steps: 40, metrics: 2 });
});
after(async () => {
  await fake?.close();
});

/** A small offline log of `runId` with `steps` rows of one metric. */
function writeLog(folder: string, runId: string, steps: number): void {
  mkdirSync(folder, { recursive: true });
  const w = new LogWriter();
  w.record({ num: 1, header: {} });
  w.record({
    num: 2,
    run: { runId, entity: fake.entity, project: fake.project, startTime: { seconds: 1_700_000_000 } },
  });
  for (let s = 0; s < steps; s++) {
    w.record({
      num: 3 + s,
      history: {
        item: [
          { nestedKey: ["_step"], valueJson: String(s) },
          { nestedKey: ["local_metric"], valueJson: String(s * 3) },
        ],
      },
    });
  }
  writeFileSync(join(folder, `run-${runId}.wandb`), w.bytes());
}

describe("a sync after an import", () => {
  it("W&B's copy replaces the imported one; the local-only run stays", async () => {
    await using dir = await tempDir();
    const [onWandb] = await truthRuns(fake.url);
    const shared = String(onWandb!.name);
    writeLog(join(dir.path, "wandb", `offline-run-20250101_000000-${shared}`), shared, 100);
    writeLog(join(dir.path, "wandb", "offline-run-20250101_000001-localonly"), "localonly", 5);

    const archive = await openArchive({ outputDir: join(dir.path, "out") });
    try {
      const imp = await importPaths(archive, [join(dir.path, "wandb")]);
      assert.equal(imp.runsWritten, 2);
      const api = await connect({ baseUrl: fake.url, apiKey: fake.apiKey });
      try {
        const r = await syncProject(api, archive, { entity: fake.entity, project: fake.project });
        assert.equal(r.runsDeleted, 0, "the local-only run is not W&B's to delete");
      } finally {
        await api.close();
      }
      const run = await archive.query(`SELECT source, deleted FROM runs WHERE run_id = '${shared}'`);
      assert.deepEqual(run.rows, [["wandb-server", false]]);
      const truth = await truthHistory(fake.url, shared);
      const rows = await archive.query(
        `SELECT count(*), count(DISTINCT step), count(*) FILTER (WHERE metrics->>'$.local_metric' IS NOT NULL) FROM history WHERE run_id = '${shared}'`,
      );
      assert.deepEqual(rows.rows[0]!.map(Number), [truth.length, truth.length, 0], "W&B's history, nothing local left");
      const local = await archive.query("SELECT source LIKE '%.wandb', deleted FROM runs WHERE run_id = 'localonly'");
      assert.deepEqual(local.rows, [[true, false]]);
      assert.equal(
        Number((await archive.query("SELECT count(*) FROM history WHERE run_id = 'localonly'")).rows[0]![0]),
        5,
      );

      const again = await importPaths(archive, [join(dir.path, "wandb")]);
      assert.equal(again.runsKeptFromWandb, 1);
      assert.equal(again.runsUnchanged, 1);
      const after = await archive.query(`SELECT count(*) FROM history WHERE run_id = '${shared}'`);
      assert.equal(Number(after.rows[0]![0]), truth.length);
    } finally {
      await archive.close();
    }
  });
});
