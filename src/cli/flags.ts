/**
 * The flag groups several commands share, and what they become: run and history selection (download, sync) and the
 * archive location (sync, export, query, status). Commands import these from here, never from each other.
 */
import { resolve } from "node:path";
import type { Archive } from "../archive/index.js";
import type { JsonObject } from "../model/json.js";
import type { HistorySelection } from "../sync/fetch-run.js";
import type { RunSelection } from "../sync/selection.js";
import type { CommandContext } from "./context.js";
import { usage } from "./errors.js";

export interface SelectionFlags {
  filters?: JsonObject;
  state?: string[];
  tags?: string[];
  createdAfter?: string;
  createdBefore?: string;
  maxRuns?: number;
  historyKeys?: string[];
  minStep?: number;
  maxStep?: number;
  samples?: number;
}

export function runSelection(f: SelectionFlags): RunSelection {
  return {
    filters: f.filters,
    state: f.state,
    tags: f.tags,
    createdAfter: f.createdAfter,
    createdBefore: f.createdBefore,
    maxRuns: f.maxRuns,
  };
}

export function historySelection(f: SelectionFlags): HistorySelection {
  if (f.minStep !== undefined && f.maxStep !== undefined && f.minStep >= f.maxStep) {
    throw usage(`--min-step (${f.minStep}) must be below --max-step (${f.maxStep})`);
  }
  return { keys: f.historyKeys, minStep: f.minStep, maxStep: f.maxStep, samples: f.samples };
}

export interface ArchiveFlags {
  dbUrl?: string;
  outputDir?: string;
}

/** Resolves --db-url/--output-dir with the original's environment variables and .env file. */
export function archiveSettings(f: ArchiveFlags, ctx: CommandContext): { dbUrl?: string; outputDir: string } {
  const outputDir = resolve(ctx.settings.cwd, ctx.settings.pick(f.outputDir, "DR_WANDB_OUTPUT_DIR", "./data"));
  const dbUrl = ctx.settings.pick(f.dbUrl, "DR_WANDB_DATABASE_URL", undefined);
  return { dbUrl, outputDir };
}

export async function openArchiveFor(f: ArchiveFlags, ctx: CommandContext, readOnly = false): Promise<Archive> {
  const { openArchive } = await import("../archive/index.js");
  const s = archiveSettings(f, ctx);
  return openArchive({ dbUrl: s.dbUrl, outputDir: s.outputDir, readOnly });
}
