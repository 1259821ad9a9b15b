/**
 * PATH arguments to `.wandb` files: a file as given; a run folder (`run-<id>.wandb` inside); a `wandb/` folder or
 * anything above it (every run folder under it, a few levels down). `latest-run` links and repeated paths are
 * read once. Then each file's first records tell its run id (the RunRecord is the second record W&B writes).
 */
import { readdirSync, realpathSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { ImportError } from "./errors.js";
import { readLogFile } from "./log-reader.js";
import { decodeRecord, timestampSeconds } from "./proto.js";

const MAX_DEPTH = 4;

function walk(dir: string, depth: number, out: string[]): void {
  let entries: import("node:fs").Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  entries.sort((a, b) => a.name.localeCompare(b.name));
  const logs = entries.filter((e) => e.isFile() && e.name.endsWith(".wandb"));
  for (const e of logs) out.push(join(dir, e.name));
  if (depth >= MAX_DEPTH) return;
  for (const e of entries) {
    if (!e.isDirectory() || e.name === "node_modules" || e.name.startsWith(".")) continue;
    // a run folder's own subfolders (files/, logs/, tmp/) hold no logs of other runs
    if (logs.length > 0 && (e.name === "files" || e.name === "logs" || e.name === "tmp")) continue;
    walk(join(dir, e.name), depth + 1, out);
  }
}

/** The `.wandb` files named by `paths`, each once (by real path), in a stable order. */
export function findLogFiles(paths: string[]): string[] {
  const found: string[] = [];
  for (const p of paths) {
    const abs = resolve(p);
    let st: import("node:fs").Stats;
    try {
      st = statSync(abs);
    } catch {
      throw new ImportError("NOT_FOUND", `${p}: no such file or folder`);
    }
    if (st.isFile()) {
      found.push(abs);
      continue;
    }
    const before = found.length;
    walk(abs, 0, found);
    if (found.length === before) throw new ImportError("NOT_FOUND", `${p}: no .wandb file in this folder`);
  }
  const seen = new Set<string>();
  const out: string[] = [];
  for (const f of found) {
    let real = f;
    try {
      real = realpathSync(f);
    } catch {
      // keep the path as found
    }
    if (seen.has(real)) continue;
    seen.add(real);
    out.push(real);
  }
  return out;
}

export interface LogHead {
  path: string;
  runId: string;
  entity: string;
  project: string;
  /** The RunRecord's start time (Unix seconds), or null. */
  startTime: number | null;
  size: number;
  mtimeMs: number;
}

/** Reads a file's records up to its RunRecord; null when it has none (nothing to import from it). */
export function readHead(path: string): LogHead | null {
  const st = statSync(path);
  let n = 0;
  for (const r of readLogFile(path, () => {})) {
    let rec: ReturnType<typeof decodeRecord>;
    try {
      rec = decodeRecord(r.payload);
    } catch {
      continue;
    }
    if (rec.recordType === "run" && rec.run?.runId) {
      return {
        path,
        runId: rec.run.runId,
        entity: rec.run.entity ?? "",
        project: rec.run.project ?? "",
        startTime: timestampSeconds(rec.run.startTime),
        size: st.size,
        mtimeMs: st.mtimeMs,
      };
    }
    if (++n > 64) break;
  }
  return null;
}

/** The run folder's name as W&B writes it (offline-run-20250102_030405-<id>), for ordering segments. */
export function folderKey(path: string): string {
  return basename(resolve(path, "..")).replace(/^(offline-)?run-/, "");
}
