/**
 * A run's files (`sync --files`): listed, and each new or changed one downloaded under
 * <outputDir>/files/<entity>/<project>/<run_id>/ (names from the server are untrusted: safeLocalPath), with the
 * file rows the archive already holds (what need not be downloaded again).
 */
import { mkdir, stat } from "node:fs/promises";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import type { Archive } from "../archive/index.js";
import type { FileRecord } from "../model/records.js";
import { WandbError } from "../wandb/errors.js";
import type { WandbApi, WandbFile, WandbRun } from "../wandb/types.js";

export interface FileOptions {
  /** The output folder; files go under <outputDir>/files/<entity>/<project>/<run_id>/. */
  outputDir: string;
  pattern?: string;
  maxFileSize?: number;
}

/**
 * Resolves a server-supplied file name under `base`, or returns null when it could escape it
 * (absolute paths, `..` segments, NUL bytes, empty names). Names from the server are untrusted.
 */
export function safeLocalPath(base: string, name: string): string | null {
  if (name.length === 0 || name.includes("\0") || isAbsolute(name) || /^[a-zA-Z]:/.test(name)) return null;
  const parts = name.split(/[\\/]+/);
  if (parts.some((p) => p === ".." || p === "")) return null;
  const full = resolve(base, ...parts);
  const rel = relative(resolve(base), full);
  if (rel.startsWith("..") || isAbsolute(rel) || rel === "") return null;
  return full;
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch {
    return null;
  }
}

export interface FilesFetch {
  records: FileRecord[];
  downloaded: number;
  skipped: number;
  warnings: string[];
}

/** Lists a run's files and downloads each new or changed one (size and md5 checked; resumed when partial). */
export async function fetchFiles(
  api: WandbApi,
  run: WandbRun,
  opts: FileOptions,
  known: Map<string, FileRecord> | undefined,
): Promise<FilesFetch> {
  const runDir = join(opts.outputDir, "files", run.entity, run.project, run.name);
  const out: FilesFetch = { records: [], downloaded: 0, skipped: 0, warnings: [] };
  const files: WandbFile[] = [];
  for await (const page of api.listFiles(run.entity, run.project, run.name, { pattern: opts.pattern })) {
    files.push(...page);
  }
  for (const f of files) {
    const base: FileRecord = {
      entity: run.entity,
      project: run.project,
      run_id: run.name,
      name: f.name,
      size: f.sizeBytes,
      md5: f.md5,
      updated_at: f.updatedAt,
      local_path: null,
    };
    const dest = safeLocalPath(runDir, f.name);
    if (dest === null) {
      out.warnings.push(`run ${run.name}: file name ${JSON.stringify(f.name)} is unsafe; not downloaded`);
      out.records.push(base);
      continue;
    }
    const relPath = relative(opts.outputDir, dest).split(sep).join("/");
    if (opts.maxFileSize !== undefined && f.sizeBytes > opts.maxFileSize) {
      out.skipped++;
      out.records.push(base);
      continue;
    }
    const prev = known?.get(f.name);
    const current = await sizeOf(dest);
    if (
      prev &&
      prev.local_path === relPath &&
      prev.md5 === f.md5 &&
      prev.size === f.sizeBytes &&
      current === f.sizeBytes
    ) {
      out.skipped++;
      out.records.push({ ...base, local_path: relPath });
      continue;
    }
    await mkdir(resolve(dest, ".."), { recursive: true });
    const partial = current !== null || (await sizeOf(`${dest}.part`)) !== null;
    try {
      try {
        await api.downloadFile(f, dest, { resume: true });
      } catch (e) {
        // A partial file that was not a prefix of this one fails the size or md5 check after resuming (and is
        // deleted by the failed attempt): fetch the file once more from its start instead of failing the sync.
        if (!partial || !isFileMismatch(e)) throw e;
        await api.downloadFile(f, dest, { resume: false });
      }
    } catch (e) {
      // The file changed on W&B since it was listed (a running run's output.log), or it vanished: record it without
      // a local copy and say so; the next sync fetches it again. Anything else (auth, network) fails the sync.
      if (!isFileMismatch(e) && !(e instanceof WandbError && e.code === "NOT_FOUND")) throw e;
      out.warnings.push(`run ${run.name}: file ${JSON.stringify(f.name)} not downloaded: ${(e as Error).message}`);
      out.records.push(base);
      continue;
    }
    out.downloaded++;
    out.records.push({ ...base, local_path: relPath });
  }
  return out;
}

/** A download whose size or md5 did not match what W&B listed. */
function isFileMismatch(e: unknown): boolean {
  return e instanceof WandbError && e.code === "PROTOCOL" && !e.transient;
}

/** The file rows the archive holds for a project, by run and name (what fetchFiles need not download again). */
export async function loadKnownFiles(
  archive: Archive,
  entity: string,
  project: string,
): Promise<Map<string, Map<string, FileRecord>>> {
  const out = new Map<string, Map<string, FileRecord>>();
  const q = (s: string) => `'${s.replaceAll("'", "''")}'`;
  const res = await archive.query(
    `SELECT run_id, name, size, md5, updated_at, local_path FROM files WHERE entity = ${q(entity)} AND project = ${q(project)}`,
  );
  for (const row of res.rows) {
    const [run_id, name, size, md5, updated_at, local_path] = row as [string, string, unknown, string, string, string];
    let m = out.get(run_id);
    if (!m) {
      m = new Map();
      out.set(run_id, m);
    }
    m.set(name, { entity, project, run_id, name, size: Number(size), md5, updated_at, local_path });
  }
  return out;
}
