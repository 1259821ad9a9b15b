/**
 * `npm run demo`: dr-wandb working end to end with no W&B account. Starts the bundled fake W&B server on loopback,
 * runs `wandb-download` (Parquet) and `dr-wandb sync` (DuckDB archive + Parquet export) against it into
 * ./demo-data, and prints where everything is.
 *
 * Options: --format parquet|pkl|jsonl (default parquet), --runs N (default 12), --out DIR (default ./demo-data).
 */
import { resolve } from "node:path";
import { Command } from "commander";
import { startFakeWandb } from "../fake-wandb/index.js";
import { makeContext, runProgram } from "../src/cli/main.js";
import { buildProgram } from "../src/cli/program.js";

const opts = new Command("demo")
  .option("--format <format>", "wandb-download format", "parquet")
  .option("--runs <n>", "runs in the fake project", "12")
  .option("--out <dir>", "output folder", "./demo-data")
  .parse()
  .opts<{ format: string; runs: string; out: string }>();

const out = resolve(opts.out);
const fake = await startFakeWandb({
  seed: 7,
  runs: Number(opts.runs),
  steps: 300,
  metrics: 6,
  entity: "demo-entity",
  project: "demo-project",
});
const env = { ...process.env, WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey };
let code = 0;
try {
  console.log(`fake W&B server: ${fake.url} (entity ${fake.entity}, project ${fake.project})\n`);
  const run = async (argv: string[]) => {
    console.log(`$ dr-wandb ${argv.join(" ")}`);
    const ctx = makeContext({ argv, env });
    const c = await runProgram(buildProgram(ctx), ctx, argv, "dr-wandb");
    if (c !== 0) throw new Error(`dr-wandb ${argv[0]} exited with ${c}`);
    console.log("");
  };
  await run(["download", fake.entity, fake.project, `${out}/download`, "--format", opts.format, "--log-every", "4"]);
  await run(["sync", `${fake.entity}/${fake.project}`, "--output-dir", `${out}/archive`, "--system-metrics"]);
  await run(["status", "--output-dir", `${out}/archive`]);
  await run([
    "query",
    "--output-dir",
    `${out}/archive`,
    "SELECT state, count(*) AS runs, max(last_history_step) AS max_step FROM runs GROUP BY state ORDER BY runs DESC",
  ]);
  console.log("Done. Your files:");
  console.log(
    `  ${out}/download/   wandb-download output (${fake.entity}_${fake.project}_runs.${opts.format}, ..._histories.${opts.format})`,
  );
  console.log(
    `  ${out}/archive/wandb.duckdb   the archive (open it with DuckDB, or: npm run dr-wandb -- query --output-dir ${out}/archive "SQL")`,
  );
  console.log(
    `  ${out}/archive/*.parquet      the archive's Parquet export (runs_metadata.parquet, ...; runs_history.parquet is a folder that pandas, polars and DuckDB read as one table)`,
  );
} catch (e) {
  console.error(`demo failed: ${(e as Error).message}`);
  code = 1;
} finally {
  await fake.close();
}
process.exitCode = code;
