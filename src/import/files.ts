/**
 * A run's files: what the client saved in the run folder's `files/` (requirements.txt, media, a wandb-metadata.json
 * of older clients...) copied to `<output-dir>/files/<entity>/<project>/<run_id>/` as a sync with --files lays them
 * out, and the console output written there as `output.log`. Names from the input are untrusted: nothing is written
 * outside that folder, and symbolic links are not followed.
 */
import { createHash } from "node:crypto";
import { copyFileSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { isJsonObject, type JsonObject, parseWandbJson } from "../model/json.js";
import type { FileRecord } from "../model/records.js";
import { safeLocalPath } from "../sync/fetch-files.js";

const MAX_FILES = 10_000;

function md5Base64(path: string): string {
  return createHash("md5").update(readFileSync(path)).digest("base64");
}

/** Relative paths of the regular files under `dir` (links and special files skipped). */
function listFiles(dir: string, prefix = "", out: string[] = []): string[] {
  let entries: import("node:fs").Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (out.length >= MAX_FILES) break;
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) listFiles(join(dir, e.name), rel, out);
    else if (e.isFile()) out.push(rel);
  }
  return out;
}

/** wandb-metadata.json of a run folder (older clients and online runs write it), or null. */
export function readMetadataFile(runDirs: string[]): JsonObject | null {
  for (const d of [...runDirs].reverse()) {
    try {
      const v = parseWandbJson(readFileSync(join(d, "files", "wandb-metadata.json"), "utf8"));
      if (isJsonObject(v)) return v;
    } catch {
      // none, or unreadable: the EnvironmentRecord is used instead
    }
  }
  return null;
}

/** A path component that is safe as one folder name (entity, project, run id). */
function safeComponent(s: string): boolean {
  return s.length > 0 && s !== "." && s !== ".." && !/[\\/\0]/.test(s);
}

export interface RunFilesInput {
  entity: string;
  project: string;
  runId: string;
  /** The run's folders (one per segment), oldest first: a later segment's file replaces an earlier one. */
  runDirs: string[];
  console: string;
  outputDir: string;
}

/** Copies the run's files and writes output.log; returns the file rows and warnings. */
export function writeRunFiles(input: RunFilesInput): { records: FileRecord[]; warnings: string[] } {
  const warnings: string[] = [];
  const { entity, project, runId, outputDir } = input;
  if (![entity, project, runId].every(safeComponent)) {
    return { records: [], warnings: [`run ${runId}: its entity/project/id cannot name a folder; files not copied`] };
  }
  const runDir = join(outputDir, "files", entity, project, runId);
  const sources = new Map<string, string>();
  for (const d of input.runDirs) {
    const filesDir = join(d, "files");
    for (const rel of listFiles(filesDir)) sources.set(rel, join(filesDir, rel));
  }
  const records: FileRecord[] = [];
  const add = (name: string, dest: string) => {
    const st = lstatSync(dest);
    records.push({
      entity,
      project,
      run_id: runId,
      name,
      size: st.size,
      md5: md5Base64(dest),
      updated_at: st.mtime.toISOString(),
      local_path: relative(outputDir, dest).split(sep).join("/"),
    });
  };
  for (const [name, src] of sources) {
    if (name === "output.log" && input.console !== "") continue; // written from the log's own records below
    const dest = safeLocalPath(runDir, name);
    if (dest === null) {
      warnings.push(`run ${runId}: file name ${JSON.stringify(name)} is unsafe; not copied`);
      continue;
    }
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(src, `${dest}.part`);
    renameSync(`${dest}.part`, dest);
    add(name, dest);
  }
  if (input.console !== "") {
    const dest = resolve(runDir, "output.log");
    mkdirSync(runDir, { recursive: true });
    writeFileSync(`${dest}.part`, input.console);
    renameSync(`${dest}.part`, dest);
    add("output.log", dest);
  }
  return { records, warnings };
}
