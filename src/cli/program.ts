/**
 * The command table. Each action imports its command module lazily, so `--help` and completion stay fast and
 * DuckDB/PostgreSQL drivers load only for the commands that use them.
 */
import { Command, Option } from "commander";
import type { CommandContext } from "./context.js";
import {
  byteSize,
  choice,
  commaList,
  isoDate,
  jsonFilter,
  nonNegativeInt,
  positiveInt,
  positiveNumber,
} from "./parse.js";

export const VERSION = "0.1.0";

function clientOptions(cmd: Command): Command {
  return cmd
    .option("--api-key <key>", "W&B API key (default: WANDB_API_KEY, .env, or the netrc entry `wandb login` wrote)")
    .option(
      "--base-url <url>",
      "W&B server (default: WANDB_BASE_URL, the wandb settings file, or https://api.wandb.ai)",
    )
    .option("--insecure", "allow sending the API key over plain http to a non-loopback host")
    .option("--timeout <seconds>", "per-request timeout in seconds", positiveNumber)
    .option(
      "--concurrency <n>",
      "runs fetched at once (requests are still paced by the server's rate limit)",
      positiveInt,
    )
    .option("--compat", "use only the request shapes the official W&B client sends");
}

function outputOptions(cmd: Command): Command {
  return cmd
    .option("--json", "print a machine-readable summary on stdout at the end")
    .option("-q, --quiet", "print only warnings and errors")
    .option("-v, --verbose", "print more detail");
}

function selectionOptions(cmd: Command): Command {
  return cmd
    .option("--filters <json>", 'a W&B Mongo-style run filter, e.g. \'{"config.lr.value": {"$gt": 0.01}}\'', jsonFilter)
    .option("--state <states>", "only runs in these states (comma-separated)", commaList)
    .option("--tags <tags>", "only runs with one of these tags (comma-separated)", commaList)
    .option("--created-after <date>", "only runs created at or after this date/time (UTC)", isoDate)
    .option("--created-before <date>", "only runs created before this date/time (UTC)", isoDate)
    .option("--max-runs <n>", "at most this many runs, oldest first", positiveInt)
    .option("--history-keys <keys>", "only these metrics in the history (comma-separated)", commaList)
    .option("--min-step <n>", "history from this step on", nonNegativeInt)
    .option("--max-step <n>", "history before this step", nonNegativeInt)
    .option(
      "--samples <n>",
      "sampled history of about n rows per run instead of every step (a quick look)",
      positiveInt,
    );
}

/** The download command, shared by `dr-wandb download` and the `wandb-download` bin. */
export function downloadCommandSpec(cmd: Command, ctx: CommandContext): Command {
  cmd
    .description("Download every run (and its full history) of a W&B project to files in OUTPUT_DIR.")
    .argument("<entity>", "W&B entity (user or team)")
    .argument("<project>", "W&B project")
    .argument("<output_dir>", "folder for the output files (created if missing)")
    .option("--runs-only", "only run records, no histories")
    .option("--no-runs-only", "runs and their histories (the default)")
    .option("--runs-per-page <n>", "runs per listing request", positiveInt, 500)
    .option("--log-every <n>", "log a progress line every n runs (when not on a terminal)", positiveInt, 20)
    .addOption(new Option("--format <format>", "output format").choices(["parquet", "pkl", "jsonl"]).default("parquet"))
    .option("--system-metrics", "also write each run's system-metrics stream")
    .option("--no-metadata", "skip each run's wandb-metadata.json (saves two requests per run)")
    .option("--install-completion", "install shell completion for the current shell")
    .option("--show-completion", "print the shell completion script");
  clientOptions(cmd);
  selectionOptions(cmd);
  outputOptions(cmd);
  return cmd.action(async (entity: string, project: string, outputDir: string, flags) => {
    const { downloadCommand } = await import("./commands/download.js");
    await downloadCommand(entity, project, outputDir, flags, ctx);
  });
}

export function buildProgram(ctx: CommandContext): Command {
  const program = new Command("dr-wandb")
    .description("Mirror Weights & Biases projects to local storage: runs, config, summary and full metric histories.")
    .version(VERSION)
    .showSuggestionAfterError(true);

  downloadCommandSpec(program.command("download"), ctx);

  const sync = program
    .command("sync")
    .description(
      "Sync W&B projects into the archive (DuckDB by default, or PostgreSQL), incrementally, then export Parquet.",
    )
    .argument(
      "[paths...]",
      "ENTITY/PROJECT paths, or ENTITY for every project of the entity (default: --entity/--project)",
    )
    .option("--entity <entity>", "W&B entity (or DR_WANDB_ENTITY)")
    .option("--project <project>", "W&B project (or DR_WANDB_PROJECT)")
    .option("--runs-only", "only run records, no histories")
    .option("--force-refresh", "re-read every run, ignoring what the archive has")
    .option(
      "--db-url <url>",
      "archive: duckdb:PATH or postgresql://... (or DR_WANDB_DATABASE_URL; default <output-dir>/wandb.duckdb)",
    )
    .option(
      "--output-dir <dir>",
      "folder for the archive and the Parquet export (or DR_WANDB_OUTPUT_DIR; default ./data)",
    )
    .option("--no-export", "do not write the Parquet export after the sync")
    .option("--runs-per-page <n>", "runs per listing request", positiveInt, 500)
    .option("--system-metrics", "also store each run's system-metrics stream")
    .option("--files", "download each run's files to <output-dir>/files/<entity>/<project>/<run_id>/")
    .option("--files-pattern <pattern>", "only files matching this W&B LIKE pattern, e.g. %.log")
    .option("--max-file-size <size>", "skip files larger than this (e.g. 50MB)", byteSize);
  clientOptions(sync);
  selectionOptions(sync);
  outputOptions(sync);
  sync.action(async (paths: string[], flags) => {
    const { syncCommand } = await import("./commands/sync.js");
    await syncCommand(paths, flags, ctx);
  });

  program
    .command("import")
    .description(
      "Read local .wandb files (offline runs, runs that never reached W&B) into the archive, then export Parquet.",
    )
    .argument("<paths...>", "a .wandb file, a run folder, or a wandb/ folder (every run under it)")
    .option("--entity <entity>", "entity of the imported runs (default: the run's own, else DR_WANDB_ENTITY)")
    .option("--project <project>", "project of the imported runs (default: the run's own, else uncategorized)")
    .option(
      "--db-url <url>",
      "archive: duckdb:PATH or postgresql://... (or DR_WANDB_DATABASE_URL; default <output-dir>/wandb.duckdb)",
    )
    .option(
      "--output-dir <dir>",
      "folder for the archive, run files and the Parquet export (or DR_WANDB_OUTPUT_DIR; default ./data)",
    )
    .option("--force", "read runs again even when their files have not changed")
    .option("--no-export", "do not write the Parquet export after the import")
    .option("--json", "print a machine-readable summary on stdout at the end")
    .option("-q, --quiet", "print only warnings and errors")
    .option("-v, --verbose", "print more detail")
    .action(async (paths: string[], flags) => {
      const { importCommand } = await import("./commands/import.js");
      await importCommand(paths, flags, ctx);
    });

  const archiveOptions = (cmd: Command) =>
    cmd
      .option("--db-url <url>", "archive URL (or DR_WANDB_DATABASE_URL; default <output-dir>/wandb.duckdb)")
      .option("--output-dir <dir>", "output folder (or DR_WANDB_OUTPUT_DIR; default ./data)");

  const exp = program
    .command("export")
    .description(
      "Write the archive's Parquet export (runs_metadata*.parquet, runs_history.parquet) to the output folder.",
    )
    .option("--entity <entity>", "only this entity")
    .option("--project <project>", "only this project")
    .option("--partitioned", "write the history as a Hive-partitioned dataset runs_history/entity=…/project=…/");
  archiveOptions(exp);
  outputOptions(exp);
  exp.action(async (flags) => {
    const { exportCommand } = await import("./commands/archive-cmds.js");
    await exportCommand(flags, ctx);
  });

  const query = program
    .command("query")
    .description("Run SQL over the archive and print the result.")
    .argument("<sql>", "the SQL query")
    .addOption(new Option("--format <format>", "output format").choices(["table", "csv", "json"]).default("table"));
  archiveOptions(query);
  query.action(async (sql: string, flags) => {
    const { queryCommand } = await import("./commands/archive-cmds.js");
    await queryCommand(sql, flags, ctx);
  });

  const status = program
    .command("status")
    .description("Show the archive's projects, runs by state, rows and last sync.");
  archiveOptions(status);
  outputOptions(status);
  status.action(async (flags) => {
    const { statusCommand } = await import("./commands/archive-cmds.js");
    await statusCommand(flags, ctx);
  });

  const serve = program
    .command("serve")
    .description("Start a local read-only web viewer over the archive: runs table, metric charts, run pages.")
    .option("--host <host>", "address to listen on (not loopback: an access token is required)", "127.0.0.1")
    .option("--port <port>", "port (0: any free port)", nonNegativeInt, 8765)
    .option("--token <token>", "access token to require (default: a random one printed when --host is not loopback)")
    .option("--open", "open the viewer in the default browser");
  archiveOptions(serve);
  serve.action(async (flags) => {
    const { serveCommand } = await import("./commands/serve.js");
    await serveCommand(flags, ctx);
  });

  program
    .command("completion")
    .description("Print a shell completion script (bash, zsh or fish).")
    .argument("[shell]", "bash, zsh or fish", choice(["bash", "zsh", "fish"] as const))
    .action(async (shell: "bash" | "zsh" | "fish" | undefined) => {
      const { completionScript, detectShell } = await import("./completion.js");
      ctx.stdout.write(completionScript(shell ?? detectShell(), program));
    });

  return program;
}
