/**
 * History rows given as text files (HistoryWrite.textRows, made by `dr-wandb import`'s text-row path,
 * src/import/text-rows.ts) inserted into the DuckDB archive with `INSERT INTO history SELECT … FROM read_csv(…)`:
 * DuckDB parses the file and checks the JSON in its own threads, while the caller makes the next file. The next file
 * is asked for before the previous insert is awaited: that is the overlap of decoding with the write.
 */
import { unlinkSync } from "node:fs";
import type { KindTracker } from "../model/flatten.js";
import { quoteLiteral } from "../model/flatten.js";
import type { TextRowsFile } from "./archive.js";
import type { RunKey } from "./base.js";
import { ArchiveError } from "./errors.js";

/** The insert of one file's rows (the file's format: TextRowsFile). */
export function textRowsInsertSql(key: RunKey, path: string): string {
  const columns = "{'step': 'BIGINT', 'micros': 'BIGINT', 'runtime': 'DOUBLE', 'metrics': 'VARCHAR'}";
  return `INSERT INTO history (entity, project, run_id, step, "timestamp", runtime, wandb_metadata, metrics, extra)
    SELECT ${quoteLiteral(key.entity)}, ${quoteLiteral(key.project)}, ${quoteLiteral(key.run_id)}, step,
           CAST(make_timestamp(micros) AS TIMESTAMPTZ), runtime, CAST('{}' AS JSON), CAST(metrics AS JSON),
           CAST('{}' AS JSON)
    FROM read_csv(${quoteLiteral(path)}, delim = '\t', quote = '', escape = '', header = false, nullstr = '\\N',
                  auto_detect = false, max_line_size = 2097152, columns = ${columns})`;
}

/**
 * Inserts every file of `files` (steps above `max`, increasing; checked), deleting each file once inserted. Returns
 * the rows inserted and the highest step written.
 */
export async function insertTextRows(
  exec: (sql: string) => Promise<void>,
  key: RunKey,
  files: Iterable<TextRowsFile>,
  max: number,
  tracker: KindTracker,
): Promise<{ rows: number; max: number }> {
  let rows = 0;
  let pending: Promise<void> | null = null;
  let pendingPath = "";
  const settle = async () => {
    if (pending === null) return;
    const p = pending;
    pending = null;
    try {
      await p;
    } finally {
      unlinkQuietly(pendingPath);
    }
  };
  try {
    // next() of the iterator does the caller's work (decoding the next rows) while DuckDB inserts the last file
    for (const f of files) {
      if (f.rows > 0) {
        if (f.minStep <= max || f.maxStep < f.minStep) {
          unlinkQuietly(f.path);
          throw new ArchiveError("WRITE", `text rows of steps ${f.minStep}..${f.maxStep} do not follow step ${max}`);
        }
        for (const [k, mask] of f.kinds) tracker.observeMask(k, mask);
        rows += f.rows;
        max = f.maxStep;
      }
      await settle();
      if (f.rows === 0) {
        unlinkQuietly(f.path);
        continue;
      }
      pendingPath = f.path;
      pending = exec(textRowsInsertSql(key, f.path));
      // an error is awaited by settle(); until then it must not count as unhandled
      pending.catch(() => undefined);
    }
    await settle();
  } finally {
    if (pending !== null) {
      await (pending as Promise<void>).catch(() => undefined);
      unlinkQuietly(pendingPath);
    }
  }
  return { rows, max };
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone (or its folder is removed by the producer): nothing to do
  }
}
