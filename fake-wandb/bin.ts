#!/usr/bin/env node
/**
 * The `fake-wandb` command: starts the fake W&B API and storage hosts and prints one JSON line
 * {"url","apiKey","entity","project","storageUrl"} on stdout when ready. SIGTERM/SIGINT stop it (exit 0).
 * A bad flag prints one line on stderr and exits 2.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { parseFaultKinds } from "./faults.js";

function intArg(name: string, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be an integer between ${min} and ${max}`);
    }
    return n;
  };
}

function numArg(name: string, min = 0, max = Number.POSITIVE_INFINITY) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be a number between ${min} and ${max}`);
    }
    return n;
  };
}

function onOff(v: string): boolean {
  if (v === "on" || v === "true") return true;
  if (v === "off" || v === "false") return false;
  throw new InvalidArgumentError("expected on or off");
}

function kindsArg(v: string) {
  try {
    return parseFaultKinds(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function fail(message: string): never {
  process.stderr.write(`fake-wandb: ${message.replace(/\s+/g, " ").trim()}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const program = new Command()
    .name("fake-wandb")
    .description("A seeded fake of the Weights & Biases read API, for tests and benchmarks.")
    .option("--host <host>", "interface to listen on", "127.0.0.1")
    .option("--port <port>", "API port (0 = any free port)", intArg("--port", 0, 65535), 0)
    .option("--seed <n>", "data and fault seed", intArg("--seed", 0, 2 ** 32 - 1), 1)
    .option("--entity <name>", "entity name", "fake-entity")
    .option("--project <name>", "project name", "fake-project")
    .option("--runs <n>", "number of runs", intArg("--runs", 0), 20)
    .option("--steps <n>", "history steps per run", intArg("--steps", 0), 200)
    .option("--metrics <n>", "metric keys per run", intArg("--metrics", 0), 8)
    .option("--events <n>", "system-metric events per run", intArg("--events", 0))
    .option("--running-fraction <f>", "fraction of runs still running", numArg("--running-fraction", 0, 1))
    .addOption(new Option("--profile <profile>", "data profile").choices(["default", "edge"]).default("default"))
    .option("--latency-ms <ms>", "latency added to every API/storage response", numArg("--latency-ms"), 0)
    .option("--latency-per-kb-ms <ms>", "latency per KB of response body", numArg("--latency-per-kb-ms"), 0)
    .option(
      "--rate-limit <n>",
      "requests per second allowed on the API host (0 = unlimited)",
      numArg("--rate-limit"),
      0,
    )
    .option("--fail-rate <f>", "probability of a fault per request", numArg("--fail-rate", 0, 1), 0)
    .option("--fault-kinds <list>", "comma list of 500,502,503,429,reset,truncated,stall,graphql", kindsArg)
    .option("--stall-ms <ms>", "how long a stall fault holds the connection", numArg("--stall-ms"))
    .option("--parquet-exports <on|off>", "serve parquet history exports for finished runs", onOff, true)
    .option("--api-key <key>", "the API key clients must send")
    .option("--cache-dir <dir>", "where parquet exports are written")
    .option("--sdk-shapes-only", "reject request shapes the official client never sends", false)
    .option(
      "--history-samples-cap <n>",
      "largest history(samples:) honoured; larger ones are silently down-sampled (default: none; 1000 with --sdk-shapes-only)",
      intArg("--history-samples-cap", 1),
    )
    .option("--no-redirect-files", "serve /files bytes directly instead of a 302 to the storage host")
    .helpOption("-h, --help")
    .exitOverride()
    .configureOutput({ writeErr: () => undefined });

  try {
    program.parse(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") process.exit(0);
      fail(e.message.replace(/^error: /, ""));
    }
    throw e;
  }
  const o = program.opts();
  if (program.args.length > 0) fail(`unexpected argument ${program.args[0]}`);
  if (o.apiKey !== undefined && !/^([A-Za-z0-9_]+-)?[A-Za-z0-9_]{40,}$/.test(o.apiKey)) {
    fail("--api-key must be at least 40 characters of [A-Za-z0-9_] (optionally after a prefix-)");
  }

  // A stop signal during start-up also ends cleanly (exit 0), once the servers are up and closed again.
  let stopRequested = false;
  let closeFake: (() => Promise<void>) | undefined;
  const stop = () => {
    if (stopRequested) return;
    stopRequested = true;
    closeFake?.().then(
      () => process.exit(0),
      () => process.exit(0),
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);

  // graphql-js skips its costly development-mode instanceof checks in production mode (read at import time).
  process.env.NODE_ENV ??= "production";
  const { startFakeWandb } = await import("./index.js");
  const fake = await startFakeWandb({
    host: o.host,
    port: o.port,
    seed: o.seed,
    entity: o.entity,
    project: o.project,
    runs: o.runs,
    steps: o.steps,
    metrics: o.metrics,
    events: o.events,
    runningFraction: o.runningFraction,
    profile: o.profile,
    latencyMs: o.latencyMs,
    latencyPerKbMs: o.latencyPerKbMs,
    rateLimit: o.rateLimit,
    failRate: o.failRate,
    faultKinds: o.faultKinds,
    stallMs: o.stallMs,
    parquetExports: o.parquetExports,
    redirectFiles: o.redirectFiles,
    sdkShapesOnly: o.sdkShapesOnly,
    ...(o.historySamplesCap !== undefined ? { historySamplesCap: o.historySamplesCap } : {}),
    apiKey: o.apiKey,
    cacheDir: o.cacheDir,
  });

  if (stopRequested) {
    await fake.close().catch(() => undefined);
    process.exit(0);
  }
  closeFake = () => fake.close();

  process.stdout.write(
    `${JSON.stringify({
      url: fake.url,
      apiKey: fake.apiKey,
      entity: fake.entity,
      project: fake.project,
      storageUrl: fake.storageUrl,
    })}\n`,
  );
}

main().catch((e) => {
  process.stderr.write(`fake-wandb: ${(e as Error)?.message ?? e}\n`);
  process.exit(1);
});
