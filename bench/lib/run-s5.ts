/**
 * S5 (issue #13): S2's shape (exports on, 10% of runs running with a live tail) at a size the original tool finishes
 * on this machine, so that the ratio against it is measured rather than bounded by its time limit. Our sync and
 * download, then the peers, against one fake-wandb.
 */
import type { Bench } from "./bench.js";
import { log } from "./bench.js";
import { peers, startFake, truthSummary } from "./run-scenarios.js";
import { SCENARIO_TITLES } from "./scenarios.js";
import type { Measurement, ScenarioResult } from "./types.js";

export async function scenarioS5(bench: Bench): Promise<ScenarioResult> {
  const s = bench.plan.s5;
  log(`S5: starting fake-wandb (${s.runs} runs x ${s.steps} steps x ${s.metrics} metrics)`);
  const fake = await startFake(s, bench);
  try {
    const truth = await fake.truthRuns();
    const warm = await fake.warmParquet(truth.map((t) => t.name));
    log(`S5: parquet exports written by the fake before timing (${(warm / 1000).toFixed(1)} s)`);
    const t = truthSummary(truth);
    const common = {
      scenario: "S5" as const,
      runsOnly: false,
      expectedRuns: t.runs,
      expectedRows: t.historyRows,
      truth,
    };
    const ms: Measurement[] = [];
    if (bench.wants("ours")) {
      ms.push(await bench.run(fake, { ...common, tool: "ours-sync", label: "ours: dr-wandb sync" }));
      ms.push(
        await bench.run(fake, { ...common, tool: "ours-download", label: "ours: wandb-download --format parquet" }),
      );
    }
    ms.push(...(await peers(bench, fake, common)));
    return {
      id: "S5",
      title: SCENARIO_TITLES.S5,
      settings: s,
      fakeStartS: fake.startMs / 1000,
      warmupS: warm / 1000,
      truth: t,
      measurements: ms,
      ranAt: new Date().toISOString(),
    };
  } finally {
    await fake.close();
  }
}
