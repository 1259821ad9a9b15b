/**
 * The scenarios S1-S4 of issue #6 (see docs/benchmarks.md): each starts its fake-wandb, runs the tools, returns a result.
 * S5 (issue #13) is in run-s5.ts, with the helpers exported here.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { type Bench, log, type RunSpec, root, toRequestStats } from "./bench.js";
import { serialPagination } from "./bound.js";
import { FakeProcess as Fake, type FakeProcess, type FakeSettings, type TruthRun } from "./fake.js";
import { SCENARIO_TITLES, type ScenarioId } from "./scenarios.js";
import type { Measurement, ScenarioResult } from "./types.js";

export async function startFake(s: FakeSettings, bench: Bench): Promise<FakeProcess> {
  // The fake reuses parquet exports it finds in its cache folder (keyed by seed, sizes and run version), so a
  // persistent folder per settings spares re-writing gigabytes on every bench run. Gitignored (.tmp/).
  const key = `${s.seed}-${s.runs}x${s.steps}x${s.metrics}-${s.runningFraction}`;
  const cache = join(root, ".tmp/bench-fake-cache", key);
  const fake = await Fake.start(root, bench.runtime.entry("fake-wandb/bin.ts"), s, cache);
  return fake;
}

export function truthSummary(truth: TruthRun[]): ScenarioResult["truth"] {
  return {
    runs: truth.length,
    historyRows: truth.reduce((a, t) => a + t.historyLineCount, 0),
    running: truth.filter((t) => t.state === "running").length,
  };
}

export async function peers(
  bench: Bench,
  fake: FakeProcess,
  spec: Omit<RunSpec, "tool" | "label">,
): Promise<Measurement[]> {
  const out: Measurement[] = [];
  let sdk: Measurement | undefined;
  if (bench.wants("sdk")) {
    sdk = await bench.run(fake, { ...spec, tool: "sdk", label: "sdk (official wandb client)" });
    out.push(sdk);
  }
  if (bench.wants("original")) {
    if ("missing" in bench.envs.original) {
      sdk ??= await bench.run(fake, { ...spec, tool: "sdk", label: "sdk (official wandb client)" });
      const s = bench.originalStandIn(sdk);
      if (s) out.push(s);
    } else out.push(await bench.run(fake, { ...spec, tool: "original", label: "original (dr-wandb 0.1.2)" }));
  }
  return out;
}

export async function scenarioS1(bench: Bench): Promise<ScenarioResult> {
  const s = bench.plan.s1;
  log(`S1: starting fake-wandb (${s.runs} runs)`);
  const fake = await startFake(s, bench);
  try {
    const truth = await fake.truthRuns();
    const common = {
      scenario: "S1" as const,
      runsOnly: true,
      expectedRuns: truth.length,
      expectedRows: 0,
      truth,
    };
    await fake.reset();
    const bound = await serialPagination(fake);
    const boundStats = toRequestStats(await fake.stats());
    log(
      `S1 bound: serial pagination of ${bound.runs} runs in ${bound.pages} pages: ${(bound.wallMs / 1000).toFixed(2)} s`,
    );
    const ms: Measurement[] = [];
    if (bench.wants("ours")) {
      ms.push(await bench.run(fake, { ...common, tool: "ours-sync", label: "ours: dr-wandb sync --runs-only" }));
      ms.push(
        await bench.run(fake, {
          ...common,
          tool: "ours-download",
          label: "ours: wandb-download --runs-only --format parquet",
        }),
      );
      ms.push(
        await bench.run(fake, {
          ...common,
          tool: "ours-download-nometa",
          label: "ours: wandb-download --runs-only --no-metadata (listing only)",
        }),
      );
    }
    ms.push(...(await peers(bench, fake, common)));
    return {
      id: "S1",
      title: SCENARIO_TITLES.S1,
      settings: s,
      fakeStartS: fake.startMs / 1000,
      truth: truthSummary(truth),
      bound: { ...bound, requests: boundStats },
      measurements: ms,
      ranAt: new Date().toISOString(),
    };
  } finally {
    await fake.close();
  }
}

export async function scenarioS2S3(bench: Bench, want: ScenarioId[]): Promise<ScenarioResult[]> {
  const s = bench.plan.s2;
  log(`S2: starting fake-wandb (${s.runs} runs x ${s.steps} steps x ${s.metrics} metrics)`);
  const fake = await startFake(s, bench);
  const out: ScenarioResult[] = [];
  try {
    let truth = await fake.truthRuns();
    const warm1 = await fake.warmParquet(truth.map((t) => t.name));
    log(`S2: parquet exports written by the fake before timing (${(warm1 / 1000).toFixed(1)} s)`);
    const s2Truth = truthSummary(truth);
    const common = {
      scenario: "S2" as const,
      runsOnly: false,
      expectedRuns: truth.length,
      expectedRows: s2Truth.historyRows,
      truth,
    };
    const ms: Measurement[] = [];
    const archiveDir = join(bench.scratch, "S2-archive");
    let fullSync: Measurement | undefined;
    if (bench.wants("ours") || want.includes("S3")) {
      fullSync = await bench.run(fake, {
        ...common,
        tool: "ours-sync",
        label: "ours: dr-wandb sync",
        outDir: archiveDir,
      });
      if (want.includes("S2")) ms.push(fullSync);
    }
    if (want.includes("S2")) {
      if (bench.wants("ours")) {
        ms.push(
          await bench.run(fake, { ...common, tool: "ours-download", label: "ours: wandb-download --format parquet" }),
        );
      }
      ms.push(...(await peers(bench, fake, common)));
      out.push({
        id: "S2",
        title: SCENARIO_TITLES.S2,
        settings: s,
        fakeStartS: fake.startMs / 1000,
        warmupS: warm1 / 1000,
        truth: s2Truth,
        measurements: ms,
        ranAt: new Date().toISOString(),
      });
    }
    if (want.includes("S3")) {
      const mu = bench.plan.s3;
      const running = truth.filter((t) => t.state === "running").map((t) => t.name);
      const appended = running.slice(0, mu.appendRuns);
      const finished = appended.slice(0, mu.finishRuns);
      const ops: object[] = [
        ...appended.map((run) => ({ op: "appendSteps", run, steps: mu.appendSteps })),
        ...finished.map((run) => ({ op: "finishRun", run })),
        { op: "addRuns", count: mu.addRuns },
      ];
      await fake.mutate(ops);
      truth = await fake.truthRuns();
      const warm2 = await fake.warmParquet(truth.map((t) => t.name));
      log(
        `S3: appended ${mu.appendSteps} steps to ${appended.length} running runs, finished ${finished.length}, added ${mu.addRuns} runs; ` +
          `exports re-written (${(warm2 / 1000).toFixed(1)} s)`,
      );
      const t3 = truthSummary(truth);
      const c3 = {
        scenario: "S3" as const,
        runsOnly: false,
        expectedRuns: t3.runs,
        expectedRows: t3.historyRows,
        truth,
      };
      const ms3: Measurement[] = [];
      if (fullSync?.status === "ok") {
        ms3.push(
          await bench.run(fake, {
            ...c3,
            expectedRuns: null,
            expectedRows: null,
            tool: "ours-sync",
            label: "ours: dr-wandb sync (second run, incremental)",
            role: "incremental",
            outDir: archiveDir,
          }),
        );
      } else log("S3: skipped the incremental sync: the S2 sync did not succeed");
      ms3.push(
        await bench.run(fake, {
          ...c3,
          tool: "ours-sync",
          label: "ours: dr-wandb sync (fresh archive, full)",
          role: "full-baseline",
        }),
      );
      out.push({
        id: "S3",
        title: SCENARIO_TITLES.S3,
        settings: s,
        mutations: { ...mu, appended, finished },
        warmupS: warm2 / 1000,
        truth: t3,
        measurements: ms3,
        ranAt: new Date().toISOString(),
      });
      if (fullSync && !want.includes("S2")) out[out.length - 1]!.measurements.unshift({ ...fullSync, role: "S2 sync" });
    }
    rmSync(archiveDir, { recursive: true, force: true });
    return out;
  } finally {
    await fake.close();
  }
}

export async function scenarioS4(bench: Bench): Promise<ScenarioResult> {
  const s = bench.plan.s4;
  log(`S4: starting fake-wandb (${s.runs} runs x ${s.steps} steps, no exports, ${s.rateLimit} req/s)`);
  const fake = await startFake(s, bench);
  try {
    const truth = await fake.truthRuns();
    const t = truthSummary(truth);
    const common = {
      scenario: "S4" as const,
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
      // The SDK's request shapes only (1,000-step windows, one run per request): many requests, so the pacing under
      // the rate limit is what sets the time.
      ms.push(
        await bench.run(fake, {
          ...common,
          tool: "ours-sync-compat",
          label: "ours: dr-wandb sync --compat (SDK request shapes only)",
        }),
      );
    }
    ms.push(...(await peers(bench, fake, common)));
    return {
      id: "S4",
      title: SCENARIO_TITLES.S4,
      settings: s,
      fakeStartS: fake.startMs / 1000,
      truth: t,
      measurements: ms,
      ranAt: new Date().toISOString(),
    };
  } finally {
    await fake.close();
  }
}
