/** Runs a CLI program and turns every outcome into an exit code and at most one error line. */
import { type Command, CommanderError } from "commander";
import type { CommandContext } from "./context.js";
import { describeError, EXIT, usage } from "./errors.js";
import { Settings } from "./settings.js";
import { tuningEnvProblem } from "./tuning-env.js";

export interface RunOptions {
  argv: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WriteStream;
}

export function makeContext(o: RunOptions): CommandContext {
  return {
    settings: new Settings({ env: o.env ?? process.env, cwd: o.cwd ?? process.cwd() }),
    stdout: o.stdout ?? process.stdout,
    stderr: o.stderr ?? process.stderr,
  };
}

/** Parses and runs; resolves to the exit code (never throws, never exits). */
export async function runProgram(program: Command, ctx: CommandContext, argv: string[], name: string): Promise<number> {
  program.exitOverride();
  program.configureOutput({
    writeOut: (s) => ctx.stdout.write(s),
    writeErr: (s) => ctx.stderr.write(s),
    outputError: (s, write) => write(`${name}: ${s.replace(/^error: /, "").trim()}\n`),
  });
  for (const c of program.commands) c.exitOverride();
  // A tuning variable its module would misread stops the command before it starts (help and version still work).
  program.hook("preAction", () => {
    const problem = tuningEnvProblem(ctx.settings.environment);
    if (problem !== null) throw usage(problem);
  });
  try {
    await program.parseAsync(argv, { from: "user" });
    return EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version "errors" are successes; everything else is a usage error, already printed by commander.
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") {
        return EXIT.OK;
      }
      return EXIT.USAGE;
    }
    const { exitCode, message } = describeError(err);
    ctx.stderr.write(`${name}: error: ${message}\n`);
    if (exitCode === EXIT.INTERNAL && process.env.DR_WANDB_DEBUG) ctx.stderr.write(`${(err as Error)?.stack}\n`);
    return exitCode;
  }
}

/** The command line with the value of --api-key hidden (for the process title, which `ps` shows to everyone). */
export function redactArgv(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--api-key" && i + 1 < argv.length) {
      out.push(a, "***");
      i++;
    } else if (a.startsWith("--api-key=")) out.push("--api-key=***");
    else out.push(a);
  }
  return out;
}

/** Replaces the process title (and so /proc/<pid>/cmdline) with a command line that holds no secret. */
export function hideSecretsFromProcessTitle(name: string, argv: string[]): void {
  if (!argv.some((a) => a === "--api-key" || a.startsWith("--api-key="))) return;
  try {
    process.title = [name, ...redactArgv(argv)].join(" ");
  } catch {
    // not supported on this platform: nothing to hide then
  }
}
