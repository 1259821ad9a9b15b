/** What every command gets: settings, output streams, and a W&B client built from the common options. */
import type { WandbApi } from "../wandb/types.js";
import { Logger, type Verbosity } from "./log.js";
import type { Settings } from "./settings.js";

export interface CommandContext {
  settings: Settings;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WriteStream;
}

export interface ClientFlags {
  apiKey?: string;
  baseUrl?: string;
  insecure?: boolean;
  timeout?: number;
  concurrency?: number;
  compat?: boolean;
}

export interface OutputFlags {
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

export function verbosityOf(f: OutputFlags): Verbosity {
  return f.quiet ? "quiet" : f.verbose ? "verbose" : "normal";
}

export function loggerFor(ctx: CommandContext, f: OutputFlags): Logger {
  return new Logger(verbosityOf(f), ctx.stderr);
}

export async function makeClient(ctx: CommandContext, f: ClientFlags, log: Logger): Promise<WandbApi> {
  const { WandbClient } = await import("../wandb/client.js");
  const client = await WandbClient.create({
    apiKey: f.apiKey,
    baseUrl: f.baseUrl,
    insecure: f.insecure,
    timeoutMs: f.timeout !== undefined ? f.timeout * 1000 : undefined,
    compat: f.compat,
    collectLargeAnswers: true,
    env: ctx.settings.merged(),
    cwd: ctx.settings.cwd,
  });
  for (const w of client.warnings ?? []) log.warn(w);
  return client;
}
