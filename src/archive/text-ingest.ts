/**
 * History rows given as text files (HistoryWrite.textRows, made by `dr-wandb import`'s text-row path,
 * src/import/text-rows.ts) inserted into the DuckDB archive with `INSERT INTO history_rows SELECT … FROM
 * read_csv(…)`: DuckDB parses the file (numbers as doubles, the rest's JSON checked) in its own threads, while the
 * caller makes the next file. The next file
 * is asked for before the previous insert is awaited: that is the overlap of decoding with the write.
 */
import { unlinkSync } from "node:fs";
import type { KindTracker } from "../model/flatten.js";
import { quoteLiteral } from "../model/flatten.js";
import type { TextRowsFile } from "./archive.js";
import type { RunKey } from "./base.js";
import { ArchiveError } from "./errors.js";

/**
 * The insert of one file's rows (the file's format: TextRowsFile), whose `count` number fields are the keys of
 * `keyset` (null when the file has none): DuckDB parses the numbers as doubles itself (short lines padded with
 * NULL). Parameters $1-$3: entity, project, run_id.
 */
export function textRowsInsertSql(path: string, count: number, keyset: number | null): string {
  const fields = ["'step': 'BIGINT'", "'micros': 'BIGINT'", "'runtime': 'DOUBLE'", "'rest': 'VARCHAR'"];
  for (let i = 0; i < count; i++) fields.push(`'v${i}': 'DOUBLE'`);
  const vals =
    keyset === null || count === 0
      ? "NULL::DOUBLE[]"
      : `[${Array.from({ length: count }, (_, i) => `v${i}`).join(", ")}]`;
  return `INSERT INTO history_rows (entity, project, run_id, step, "timestamp", runtime, wandb_metadata, extra, keyset, vals, rest)
    SELECT $1, $2, $3, step,
           CAST(make_timestamp(micros) AS TIMESTAMPTZ), runtime, CAST('{}' AS JSON), CAST('{}' AS JSON),
           ${keyset === null ? "NULL::INTEGER" : keyset}, ${vals}, CAST(rest AS JSON)
    FROM read_csv(${quoteLiteral(path)}, delim = '\t', quote = '', escape = '', header = false, nullstr = '\\N',
                  auto_detect = false, null_padding = true, max_line_size = 2097152, columns = {${fields.join(", ")}})`;
}

/**
 * Inserts every file of `files` (steps above `max`, increasing; checked), deleting each file once inserted. Returns
 * the rows inserted and the highest step written.
 */
export async function insertTextRows(
  exec: (sql: string, params?: unknown[]) => Promise<unknown>,
  key: RunKey,
  files: Iterable<TextRowsFile>,
  max: number,
  tracker: KindTracker,
  keysetId: (keys: readonly string[]) => Promise<number>,
): Promise<{ rows: number; max: number }> {
  let rows = 0;
  let pending: Promise<unknown> | null = null;
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
      const keyset = f.keys.length > 0 ? await keysetId(f.keys) : null;
      pendingPath = f.path;
      pending = exec(textRowsInsertSql(f.path, f.keys.length, keyset), [key.entity, key.project, key.run_id]);
      // an error is awaited by settle(); until then it must not count as unhandled
      pending.catch(() => undefined);
    }
    await settle();
  } finally {
    if (pending !== null) {
      await (pending as Promise<unknown>).catch(() => undefined);
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
