/**
 * Opening a DuckDB archive file: the checks before DuckDB touches it (a folder, a file that is not DuckDB's, a missing
 * file opened read-only), the in-process registry of open files (DuckDB's own lock covers other processes), and
 * DuckDB's refusals as one-line ArchiveErrors.
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { duckdbResourceSettings, isDuckDBFile } from "./duckdb-values.js";
import { ArchiveError, firstLine } from "./errors.js";

/** Files opened by this process: path -> number of readers, or -1 for the writer. */
const openInProcess = new Map<string, number>();

/**
 * A DuckDB instance on the archive file at `pathIn` (absolute `path`; `held`: the registry's entry before this open),
 * not yet registered (registerOpen, once the archive is ready).
 */
export async function createInstance(
  pathIn: string,
  readOnly: boolean,
): Promise<{ path: string; instance: DuckDBInstance; held: number | undefined }> {
  const path = resolve(pathIn);
  const held = openInProcess.get(path);
  if (held !== undefined && (held === -1 || !readOnly)) {
    throw new ArchiveError(
      "LOCKED",
      `another dr-wandb process holds the archive ${path} (it is already open ${held === -1 ? "for writing" : "for reading"} in this process)`,
    );
  }
  const exists = existsSync(path);
  if (!exists && readOnly) throw new ArchiveError("NOT_FOUND", `no archive at ${path} (run a sync first)`);
  if (exists) {
    if (statSync(path).isDirectory()) throw new ArchiveError("CORRUPT", `${path} is a folder, not a DuckDB archive`);
    if (statSync(path).size > 0 && !isDuckDBFile(path)) {
      throw new ArchiveError("CORRUPT", `${path} is not a DuckDB file (not a dr-wandb archive); refusing to touch it`);
    }
  } else {
    mkdirSync(dirname(path), { recursive: true });
  }
  try {
    const instance = await DuckDBInstance.create(path, {
      ...(readOnly ? { access_mode: "READ_ONLY" } : {}),
      ...duckdbResourceSettings(),
    });
    return { path, instance, held };
  } catch (e) {
    const msg = firstLine(e);
    if (/lock/i.test(msg)) {
      const pid = /PID (\d+)/.exec(msg)?.[1];
      throw new ArchiveError(
        "LOCKED",
        `another dr-wandb process${pid ? ` (PID ${pid})` : ""} holds the archive ${path}; wait for it to finish`,
        { cause: e },
      );
    }
    if (/not a valid|corrupt|serializ|checksum|version|invalid/i.test(msg)) {
      throw new ArchiveError("CORRUPT", `${path} is not a readable DuckDB archive: ${msg}`, { cause: e });
    }
    throw new ArchiveError("CONNECT", `cannot open DuckDB archive ${path}: ${msg}`, { cause: e });
  }
}

/** Records an archive opened by this process (`held`: what createInstance saw). */
export function registerOpen(path: string, readOnly: boolean, held: number | undefined): void {
  openInProcess.set(path, readOnly ? (held ?? 0) + 1 : -1);
}

/** Forgets one open of `path` (its archive was closed). */
export function releaseOpen(path: string): void {
  const held = openInProcess.get(path);
  if (held === undefined || held <= 1) openInProcess.delete(path);
  else openInProcess.set(path, held - 1);
}
