/** `dr-wandb export`, `dr-wandb query` and `dr-wandb status`: reading the archive. */
import type { QueryResult } from "../../archive/index.js";
import type { CommandContext, OutputFlags } from "../context.js";
import { loggerFor } from "../context.js";
import { type ArchiveFlags, archiveSettings, openArchiveFor } from "../flags.js";

export interface ExportFlags extends ArchiveFlags, OutputFlags {
  entity?: string;
  project?: string;
  partitioned?: boolean;
}

export async function exportCommand(f: ExportFlags, ctx: CommandContext): Promise<void> {
  const log = loggerFor(ctx, f);
  const { outputDir } = archiveSettings(f, ctx);
  const archive = await openArchiveFor(f, ctx, true);
  try {
    const { exportArchive } = await import("../../export/archive-export.js");
    const r = await exportArchive(archive, {
      outputDir,
      entity: f.entity,
      project: f.project,
      partitioned: f.partitioned,
    });
    for (const file of r.files) log.info(`>> Wrote ${file}`);
    if (f.json) ctx.stdout.write(`${JSON.stringify({ command: "export", files: r.files })}\n`);
  } finally {
    await archive.close();
  }
}

export interface QueryFlags extends ArchiveFlags {
  format: "table" | "csv" | "json";
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number") return Number.isNaN(v) ? "NaN" : String(v);
  if (v instanceof Date) return v.toISOString();
  if (typeof v === "object") return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x));
  return String(v);
}

function csvCell(v: unknown): string {
  const s = cell(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function formatResult(r: QueryResult, format: QueryFlags["format"]): string {
  if (format === "csv") {
    return [r.columns.map(csvCell).join(","), ...r.rows.map((row) => row.map(csvCell).join(","))].join("\n") + "\n";
  }
  if (format === "json") {
    return (
      r.rows
        .map((row) => JSON.stringify(Object.fromEntries(r.columns.map((c, i) => [c, jsonSafe(row[i])]))))
        .join("\n") + (r.rows.length > 0 ? "\n" : "")
    );
  }
  const cells = [r.columns, ...r.rows.map((row) => row.map(cell))];
  const widths = r.columns.map((_, i) => Math.min(60, Math.max(...cells.map((row) => (row[i] ?? "").length))));
  const fmt = (row: string[]) =>
    row.map((c, i) => (c.length > widths[i]! ? `${c.slice(0, widths[i]! - 1)}…` : c.padEnd(widths[i]!))).join(" | ");
  const lines = [fmt(r.columns), widths.map((w) => "-".repeat(w)).join("-+-"), ...cells.slice(1).map(fmt)];
  lines.push(`(${r.rows.length} row${r.rows.length === 1 ? "" : "s"})`);
  return `${lines.join("\n")}\n`;
}

function jsonSafe(v: unknown): unknown {
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (typeof v === "number" && !Number.isFinite(v)) return Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
  if (v instanceof Date) return v.toISOString();
  return v;
}

export async function queryCommand(sql: string, f: QueryFlags, ctx: CommandContext): Promise<void> {
  const archive = await openArchiveFor(f, ctx, true);
  try {
    const r = await archive.query(sql);
    ctx.stdout.write(formatResult(r, f.format));
  } finally {
    await archive.close();
  }
}

export async function statusCommand(f: ArchiveFlags & OutputFlags, ctx: CommandContext): Promise<void> {
  const archive = await openArchiveFor(f, ctx, true);
  try {
    const s = await archive.status();
    if (f.json) {
      ctx.stdout.write(`${JSON.stringify(s)}\n`);
      return;
    }
    const lines = [`archive: ${s.location} (${s.kind}, schema v${s.schemaVersion})`];
    if (s.projects.length === 0) lines.push("no projects synced yet");
    for (const p of s.projects) {
      const states = Object.entries(p.runsByState)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ");
      lines.push(
        `${p.entity}/${p.project}: ${p.runs} runs (${states || "none"}), ${p.deletedRuns} deleted, ` +
          `${p.historyRows} history rows, last sync ${p.lastSyncAt ?? "never"}`,
      );
    }
    ctx.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    await archive.close();
  }
}
