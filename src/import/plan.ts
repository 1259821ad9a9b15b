/**
 * What an import will do, before it reads a run's records: the files found grouped by run (a resumed run's segments,
 * oldest first), and per run whether its files changed since the last import or only grew (an append).
 */
import { createHash } from "node:crypto";
import type { Archive, RunSyncState } from "../archive/index.js";
import { quoteLiteral } from "../model/flatten.js";
import { findLogFiles, folderKey, type LogHead, readHead } from "./discover.js";
import { ImportError } from "./errors.js";
import type { ImportOptions } from "./types.js";

/** runs.source of a run a sync wrote. */
export const SOURCE_WANDB = "wandb-server";

export interface RunGroup {
  entity: string;
  project: string;
  runId: string;
  heads: LogHead[];
}

/** What sync_state.selection records for an imported run: the marker, and the files with their sizes. */
export interface ImportedSelection {
  history: string;
  extras: string;
  files: { path: string; size: number; mtimeMs: number }[];
}

export function fingerprintOf(heads: LogHead[]): string {
  const h = createHash("sha256");
  h.update(JSON.stringify(heads.map((x) => [x.path, x.size, x.mtimeMs])));
  return h.digest("hex").slice(0, 32);
}

export function storedFiles(state: RunSyncState): ImportedSelection["files"] | null {
  try {
    const o = JSON.parse(state.selection) as Partial<ImportedSelection>;
    return Array.isArray(o.files) ? o.files : null;
  } catch {
    return null;
  }
}

/**
 * An import may append when every file read last time is still there, in the same order, at least as long (an
 * offline run still writing grows its log; a resumed run adds a segment after them).
 */
export function canAppend(state: RunSyncState, heads: LogHead[]): boolean {
  const prev = storedFiles(state);
  if (!prev || prev.length > heads.length || state.last_step < 0) return false;
  return prev.every((f, i) => heads[i]!.path === f.path && heads[i]!.size >= f.size);
}

export function groupRuns(heads: LogHead[], opts: ImportOptions): RunGroup[] {
  const groups = new Map<string, RunGroup>();
  for (const head of heads) {
    const entity = opts.entity || head.entity || opts.defaultEntity || "";
    const project = opts.project || head.project || "uncategorized";
    if (!entity) {
      throw new ImportError(
        "USAGE",
        `${head.path}: the run names no entity (an offline run); pass --entity ENTITY (or set DR_WANDB_ENTITY)`,
      );
    }
    const key = JSON.stringify([entity, project, head.runId]);
    let g = groups.get(key);
    if (!g) {
      g = { entity, project, runId: head.runId, heads: [] };
      groups.set(key, g);
    }
    g.heads.push(head);
  }
  for (const g of groups.values()) {
    g.heads.sort(
      (a, b) => (a.startTime ?? 0) - (b.startTime ?? 0) || folderKey(a.path).localeCompare(folderKey(b.path)),
    );
  }
  return [...groups.values()];
}

export async function storedSources(
  archive: Archive,
  entity: string,
  project: string,
): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  const r = await archive.query(
    `SELECT run_id, source FROM runs WHERE entity = ${quoteLiteral(entity)} AND project = ${quoteLiteral(project)}`,
  );
  for (const [id, source] of r.rows) out.set(String(id), source === null ? null : String(source));
  return out;
}

/** What an import will read: the files found, their runs, and the warnings of files without a run. */
export interface ImportPlan {
  files: string[];
  groups: RunGroup[];
  warnings: string[];
}

/**
 * Finds the files and reads each one's run record; throws ImportError for a PATH that is missing, a file that is not
 * a W&B log or of a newer version, or a run without an entity. Reads nothing else and writes nothing.
 */
export function planImport(paths: string[], opts: ImportOptions = {}): ImportPlan {
  const files = findLogFiles(paths);
  const heads: LogHead[] = [];
  const warnings: string[] = [];
  for (const f of files) {
    const head = readHead(f);
    if (head) heads.push(head);
    else warnings.push(`${f}: no run record in the log (nothing to import from it)`);
  }
  return { files, groups: groupRuns(heads, opts), warnings };
}
