/**
 * The runs file of wandb-download's Parquet writer (parquet.ts): runs spooled as one strict-JSON line each, then
 * typed by DuckDB (`runsSelect`) at close.
 */
import { AtomicFile } from "../model/atomic-file.js";
import { largeValueBytes } from "../model/duckdb-resources.js";
import { quoteIdent, quoteLiteral } from "../model/flatten.js";
import { RUN_FIELDS } from "../model/records.js";
import { TextBatch } from "./text-batch.js";

type RunColumnType = "VARCHAR" | "TIMESTAMPTZ" | "BIGINT" | "VARCHAR[]" | "JSON";

/** Column types of the runs file, in RUN_FIELDS order. */
export const RUN_COLUMN_TYPES: Readonly<Record<(typeof RUN_FIELDS)[number], RunColumnType>> = {
  run_id: "VARCHAR",
  run_name: "VARCHAR",
  state: "VARCHAR",
  project: "VARCHAR",
  entity: "VARCHAR",
  created_at: "TIMESTAMPTZ",
  config: "JSON",
  summary: "JSON",
  wandb_metadata: "JSON",
  system_metrics: "JSON",
  system_attrs: "JSON",
  sweep_info: "JSON",
  tags: "VARCHAR[]",
  group: "VARCHAR",
  job_type: "VARCHAR",
  user: "VARCHAR",
  heartbeat_at: "TIMESTAMPTZ",
  notes: "VARCHAR",
  commit: "VARCHAR",
  history_keys: "JSON",
  last_history_step: "BIGINT",
  storage_id: "VARCHAR",
};

/** Rows per row group of the runs file (see ParquetProjectWriter.finishFiles). */
export const RUN_ROW_GROUP = 1024;

/** The runs spool: one strict-JSON run per line. */
export class NdjsonSpool {
  private readonly batch = new TextBatch();
  private constructor(readonly file: AtomicFile) {}

  static async create(finalPath: string): Promise<NdjsonSpool> {
    return new NdjsonSpool(await AtomicFile.create(finalPath, "spool"));
  }

  /** Longest line so far, in UTF-16 units. */
  longestLine = 0;
  /**
   * UTF-8 bytes of the large lines (largeValueBytes) so far: the runs file is converted in one chunk of up to 2,048
   * runs, so DuckDB holds all of them at once, and its budget is planned from their sum.
   */
  largeLineBytes = 0;

  async add(line: string): Promise<void> {
    if (line.length > this.longestLine) this.longestLine = line.length;
    this.largeLineBytes += largeValueBytes(line);
    this.batch.append(line);
    if (this.batch.full) await this.batch.drainTo(this.file);
  }

  async finish(): Promise<void> {
    await this.batch.drainTo(this.file);
    await this.file.finish({ sync: false });
  }

  async remove(): Promise<void> {
    await this.file.abort();
  }
}

/**
 * The longest runs-spool line (UTF-16 units) read line by line; longer ones go through DuckDB's NDJSON reader. Line
 * by line, DuckDB holds a few buffers of twice the longest line: for ordinary runs (KBs each) 8 MiB buffers instead
 * of the NDJSON reader's 16 MB and more, so S1's 10,000 runs (86 MB) converted in ~170 MB of resident memory instead
 * of ~270 MB (measured 2026-12-07, the same output). For a run holding a value of hundreds of MB those buffers would
 * be GBs, which the NDJSON reader does without (a 200 MB config: test/e2e/huge-values.heavy.test.ts).
 */
const RUNS_BY_LINE_MAX_CHARS = 2 << 20;

/** DuckDB's read sizes for a runs spool read line by line: lines of 3 bytes per UTF-16 unit of the longest at most. */
function runsLineSizes(longestLineChars: number): { maxLineSize: number; bufferSize: number } {
  const maxLineSize = Math.max(2 << 20, 3 * longestLineChars + 1024);
  return { maxLineSize, bufferSize: Math.max(8 << 20, 2 * maxLineSize) };
}

/** read_ndjson refuses objects above maximum_object_size (default 16 MB). */
function maxObjectSize(longestLineChars: number): number {
  return Math.max(16 << 20, 3 * longestLineChars + 1024);
}

/** The bytes of each of DuckDB's read buffers for a runs spool (its memory budget counts a few). */
export function runsReaderBufferBytes(longestLineChars: number): number {
  return longestLineChars <= RUNS_BY_LINE_MAX_CHARS
    ? runsLineSizes(longestLineChars).bufferSize
    : 2 * maxObjectSize(longestLineChars);
}

/**
 * The runs file's SELECT. Up to RUNS_BY_LINE_MAX_CHARS per line: the spool read as one text column per line (JSON
 * text holds no raw tab or line break: JSON escapes them), each line parsed by `from_json` into the typed fields
 * (JSON columns kept as JSON text); longer lines: read_ndjson with the same columns.
 */
export function runsSelect(spoolPath: string, longestLineChars: number): string {
  const types = RUN_FIELDS.map((f) => [f, RUN_COLUMN_TYPES[f] === "TIMESTAMPTZ" ? "VARCHAR" : RUN_COLUMN_TYPES[f]]);
  const byLine = longestLineChars <= RUNS_BY_LINE_MAX_CHARS;
  const col = (f: string) => (byLine ? `j.${quoteIdent(f)}` : quoteIdent(f));
  const select = RUN_FIELDS.map((f) =>
    RUN_COLUMN_TYPES[f] === "TIMESTAMPTZ"
      ? `TRY_CAST(${col(f)} AS TIMESTAMPTZ) AS ${quoteIdent(f)}`
      : `${col(f)} AS ${quoteIdent(f)}`,
  );
  if (!byLine) {
    const cols = types.map(([f, t]) => `${quoteLiteral(f!)}: ${quoteLiteral(t!)}`);
    return (
      `SELECT ${select.join(", ")} FROM read_ndjson(${quoteLiteral(spoolPath)}, columns={${cols.join(", ")}}, ` +
      `maximum_object_size=${maxObjectSize(longestLineChars)})`
    );
  }
  const sizes = runsLineSizes(longestLineChars);
  const spec = quoteLiteral(JSON.stringify(Object.fromEntries(types)));
  return (
    `SELECT ${select.join(", ")} FROM (SELECT from_json(line, ${spec}) AS j ` +
    `FROM read_csv(${quoteLiteral(spoolPath)}, columns={'line': 'VARCHAR'}, header=false, auto_detect=false, ` +
    `delim='\t', quote='', escape='', max_line_size=${sizes.maxLineSize}, buffer_size=${sizes.bufferSize}))`
  );
}
