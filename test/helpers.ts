/** Helpers for end-to-end tests: the CLI as a real child process, the fake's truth, Parquet read back by DuckDB. */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { openArchive } from "../src/archive/open.js";
import { type JsonObject, type JsonValue, parseWandbJson } from "../src/model/json.js";

export const ROOT = resolve(import.meta.dirname, "..");
/** tsx's loader as an absolute URL, so a child process finds it whatever its working directory. */
const TSX_LOADER = import.meta.resolve("tsx");

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function cliEntry(bin: "dr-wandb" | "wandb-download" = "dr-wandb"): string {
  return join(ROOT, bin === "wandb-download" ? "src/cli/wandb-download.ts" : "src/cli/bin.ts");
}

/**
 * The Node arguments that start the CLI: the one build scripts/run-tests.mjs made for the whole run
 * (DR_WANDB_TEST_CLI_DIR, an esbuild bundle of src/cli), else the TypeScript entry through tsx (a test file run
 * on its own).
 */
export function cliArgs(bin: "dr-wandb" | "wandb-download" = "dr-wandb"): string[] {
  const built = process.env.DR_WANDB_TEST_CLI_DIR;
  if (built) return [join(built, `${bin}.mjs`)];
  return ["--import", TSX_LOADER, cliEntry(bin)];
}

/** Starts the CLI in a child process and returns it (to kill it mid-run) with a promise of its result. */
export function startCli(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; bin?: "dr-wandb" | "wandb-download" } = {},
): { child: ReturnType<typeof spawn>; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [...cliArgs(opts.bin), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => {
    stdout += d;
  });
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  const done = new Promise<CliResult>((res, rej) => {
    child.on("error", rej);
    child.on("close", (code, signal) => res({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

export interface RunCliOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  bin?: "dr-wandb" | "wandb-download";
  timeoutMs?: number;
  /** In a child process of its own (see runCli): for what only a process shows (exit paths, signals, stderr). */
  process?: boolean;
}

/**
 * The product's own variables that it reads from process.env when it needs them (so an in-process run can set
 * them for its length). Any other DR_WANDB_ variable in a run's `env` may be read once, when a module loads
 * (DR_WANDB_MAX_BUFFERED_CELLS, DR_WANDB_SPOOL_CELLS), or only by a bin: such a run gets a process of its own.
 */
const CALL_TIME_VARIABLES = new Set([
  "DR_WANDB_COLUMNAR",
  "DR_WANDB_DUCKDB_MEMORY",
  "DR_WANDB_DUCKDB_EXPORT_MEMORY",
  "DR_WANDB_DUCKDB_THREADS",
  "DR_WANDB_EXPORT_SEGMENT_CELLS",
  "DR_WANDB_DEBUG",
]);
let inProcessRuns = 0;

/**
 * Runs `dr-wandb` (or `wandb-download`) and gives its exit code, stdout and stderr. By default inside this process,
 * through the same runProgram the commands' bin files call, with the same clean environment a child would get
 * (PATH, HOME, TMPDIR and `env`) and its output captured: a CLI process costs about 0.6 CPU s of Node start-up and
 * module loading before its first request, which the suite's few hundred runs paid for nothing. A child process
 * (see cliArgs) is used when the test asks for one (`process: true`: exit paths, signals, what Node itself prints),
 * when `cwd` is given, when `env` sets a variable not known to be read at call time (CALL_TIME_VARIABLES), when
 * another in-process run is under way
 * (two runs at once must not share process.env), or with DR_WANDB_TEST_CLI_IN_PROCESS=0 for the whole run.
 */
export async function runCli(args: string[], opts: RunCliOptions = {}): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TMPDIR: process.env.TMPDIR,
    ...opts.env,
  };
  const spawnIt =
    opts.process === true ||
    opts.cwd !== undefined ||
    process.env.DR_WANDB_TEST_CLI_IN_PROCESS === "0" ||
    inProcessRuns > 0 ||
    Object.keys(env).some((k) => /^DR_WANDB_(?!TEST_)/.test(k) && !CALL_TIME_VARIABLES.has(k));
  if (spawnIt) return runNodeArgs([...cliArgs(opts.bin), ...args], opts);
  inProcessRuns++;
  // The few settings the product reads from process.env itself (DuckDB budgets, the columnar switch, CI, debug)
  // come from `env` for the length of the run, as in a child with that environment.
  const saved = new Map<string, string | undefined>();
  for (const k of Object.keys(process.env)) if (/^(DR_WANDB_(?!TEST_)|CI$)/.test(k)) saved.set(k, process.env[k]);
  for (const k of saved.keys()) delete process.env[k];
  for (const [k, v] of Object.entries(env)) {
    if (!/^(DR_WANDB_(?!TEST_)|CI$)/.test(k) || v === undefined) continue;
    if (!saved.has(k)) saved.set(k, process.env[k]);
    process.env[k] = v;
  }
  try {
    const { Writable } = await import("node:stream");
    let stdout = "";
    let stderr = "";
    const sink = (add: (s: string) => void) =>
      new Writable({
        write(chunk, _encoding, callback) {
          add(String(chunk));
          callback();
        },
      });
    const out = sink((s) => {
      stdout += s;
    });
    const err = sink((s) => {
      stderr += s;
    }) as unknown as NodeJS.WriteStream;
    const main = await import("../src/cli/main.js");
    const program = await import("../src/cli/program.js");
    const ctx = main.makeContext({ argv: args, env, cwd: ROOT, stdout: out, stderr: err });
    const bin = opts.bin ?? "dr-wandb";
    const { Command } = await import("commander");
    const command =
      bin === "dr-wandb"
        ? program.buildProgram(ctx)
        : program.downloadCommandSpec(new Command("wandb-download").version(program.VERSION), ctx);
    const code = await main.runProgram(command, ctx, args, bin);
    return { code, signal: null, stdout, stderr };
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    inProcessRuns--;
  }
}

/** Runs a TypeScript file through tsx in a child process with a clean environment plus `env`. */
export function runNode(
  file: string,
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; args?: string[] } = {},
): Promise<CliResult> {
  return runNodeArgs(["--import", TSX_LOADER, file, ...(opts.args ?? [])], opts);
}

function runNodeArgs(
  nodeArgs: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number },
): Promise<CliResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, nodeArgs, {
      cwd: opts.cwd ?? ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 180_000);
    child.on("error", fail);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr });
    });
  });
}

export async function tempDir(
  prefix = "drwandb-test-",
): Promise<{ path: string; [Symbol.asyncDispose](): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, [Symbol.asyncDispose]: () => rm(path, { recursive: true, force: true }) };
}

export async function ndjson(url: string): Promise<JsonObject[]> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  const text = await res.text();
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => parseWandbJson(l) as JsonObject);
}

export async function truthRuns(baseUrl: string): Promise<JsonObject[]> {
  return ndjson(`${baseUrl}/_fake/truth/runs`);
}

export async function truthHistory(baseUrl: string, run: string): Promise<JsonObject[]> {
  return ndjson(`${baseUrl}/_fake/truth/history?run=${encodeURIComponent(run)}`);
}

export async function fakeStats(
  baseUrl: string,
): Promise<{ total: number; graphql: number; byOperation: Record<string, number> } & JsonObject> {
  const res = await fetch(`${baseUrl}/_fake/stats`);
  return (await res.json()) as never;
}

export async function mutate(baseUrl: string, ops: JsonObject | JsonObject[]): Promise<void> {
  const res = await fetch(`${baseUrl}/_fake/mutate`, { method: "POST", body: JSON.stringify(ops) });
  if (!res.ok) throw new Error(`mutate: HTTP ${res.status} ${await res.text()}`);
}

/**
 * The stored history rows of a DuckDB archive in a form that does not depend on how the rows were split into
 * keysets (history_rows: numbers in vals by keyset position, other values in rest): per row, its numbers as a list
 * of (key, value) sorted by key, then rest, wandb_metadata and extra as stored. `where` filters history_rows (`h`).
 */
export function canonicalHistorySql(where = "true"): string {
  return `SELECT h.entity, h.project, h.run_id, h.step, CAST(h."timestamp" AS VARCHAR) AS ts, CAST(h.runtime AS VARCHAR) AS rt,
      CAST(h.wandb_metadata AS VARCHAR) AS wm,
      CAST(list_sort(list_filter(list_zip(k.keys, h.vals), lambda p: p[2] IS NOT NULL)) AS VARCHAR) AS nums,
      CAST(h.rest AS VARCHAR) AS rest, CAST(h.extra AS VARCHAR) AS x
    FROM history_rows h LEFT JOIN history_keysets k
      ON k.entity = h.entity AND k.project = h.project AND k.keyset = h.keyset
    WHERE ${where} ORDER BY h.entity, h.project, h.run_id, h.step`;
}

/**
 * What breaks the row order runs_history.parquet promises (a folder of part files): rows of a part out of (run_id,
 * step) order, and runs whose rows are split over parts. 0 and 0 for a good export.
 */
export async function historyOrderFaults(path: string): Promise<{ unordered: number; split: number }> {
  const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;
  const [r] = await duckObjects(
    `SELECT (SELECT count(*) FILTER (WHERE NOT ok) FROM (
               SELECT (run_id, step) >= lag((run_id, step)) OVER (PARTITION BY filename ORDER BY file_row_number) AS ok
               FROM read_parquet(${lit(path)}, filename = true, file_row_number = true)))::INTEGER AS unordered,
            (SELECT count(*) FROM (SELECT run_id FROM read_parquet(${lit(path)}, filename = true)
               GROUP BY run_id HAVING count(DISTINCT filename) > 1))::INTEGER AS split`,
  );
  return { unordered: Number(r!.unordered), split: Number(r!.split) };
}

/** A canonical text of the archive's contents for one project (runs, history), for equality checks. */
export async function archiveDigest(
  dbUrl: string | undefined,
  outputDir: string,
  f: { project: string },
): Promise<string> {
  const archive = await openArchive({ dbUrl, outputDir, readOnly: true });
  try {
    const runs = await archive.query(
      `SELECT run_id, state, config, summary, last_history_step FROM runs WHERE project = '${f.project}' ORDER BY run_id`,
    );
    const hist = await archive.query(
      `SELECT run_id, step, runtime, metrics FROM history WHERE project = '${f.project}' ORDER BY run_id, step`,
    );
    const h = createHash("sha256");
    // PostgreSQL's JSONB reorders keys: compare parsed, key-sorted values.
    const canon = (v: unknown): string => {
      if (typeof v === "string" && /^[[{]/.test(v)) {
        try {
          return JSON.stringify(JSON.parse(v), (_k, x) =>
            x && typeof x === "object" && !Array.isArray(x)
              ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1)))
              : x,
          );
        } catch {
          return v;
        }
      }
      return typeof v === "bigint" ? v.toString() : String(v);
    };
    for (const row of [...runs.rows, ...hist.rows]) h.update(`${row.map(canon).join("\u0001")}\n`);
    return `${runs.rows.length} runs, ${hist.rows.length} rows, ${h.digest("hex")}`;
  } finally {
    await archive.close();
  }
}

/** Runs SQL in a fresh in-memory DuckDB (for reading Parquet files or a copy of an archive). */
export async function duckQuery(sql: string): Promise<{ columns: string[]; rows: unknown[][] }> {
  const db = await DuckDBInstance.create(":memory:");
  const conn = await db.connect();
  try {
    const r = await conn.runAndReadAll(sql);
    const rows = r.getRowsJS() as unknown[][];
    // getRowsJS turns DECIMAL into a double: keep whole-number decimals (DECIMAL(38,0)) exact as bigint.
    const types = r.columnTypes().map((t) => t.toString());
    const exact = types.flatMap((t, i) => (/^DECIMAL\(\d+,0\)$/.test(t) ? [i] : []));
    if (exact.length > 0) {
      const raw = r.getRows();
      rows.forEach((row, j) => {
        for (const i of exact) {
          const v = raw[j]![i] as { value?: bigint } | null;
          row[i] = v === null ? null : (v.value ?? row[i]);
        }
      });
    }
    return { columns: r.columnNames(), rows };
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

/** Rows of a query as objects keyed by column. */
export async function duckObjects(sql: string): Promise<Record<string, unknown>[]> {
  const r = await duckQuery(sql);
  return r.rows.map((row) => Object.fromEntries(r.columns.map((c, i) => [c, row[i]])));
}

/**
 * Compares two Parquet files in DuckDB: rows only in a, rows only in b (multisets, NaN equal to NaN), whether the
 * schemas (names and types, in order) are the same, and how many rows stand at a different place (by (run_id, step)
 * when both files have those columns). All zero and true: the same table, row for row. Files with the same bytes
 * are that without a look inside (the usual case: the same archive exported twice); only others are compared in
 * DuckDB, whose EXCEPT ALL over a table of a thousand columns costs seconds.
 */
export async function parquetDiff(
  a: string,
  b: string,
): Promise<{ onlyA: number; onlyB: number; sameSchema: boolean; moved: number }> {
  // A folder (the runs_history.parquet dataset) is its files' bytes, and its rows in (run_id, step) order: the
  // order of the parts is not part of what an export promises (each run's rows together and in step order is; see
  // historyOrderFaults).
  const folder = (await stat(a)).isDirectory() || (await stat(b)).isDirectory();
  const digest = async (f: string) => {
    const h = createHash("sha256");
    if ((await stat(f)).isDirectory()) {
      for (const name of (await readdir(f)).sort()) h.update(name).update(await readFile(join(f, name)));
    } else h.update(await readFile(f));
    return h.digest("hex");
  };
  if ((await digest(a)) === (await digest(b))) {
    if (process.env.DR_WANDB_TEST_DEBUG_DIFF) console.error(`parquetDiff: same bytes ${a}`);
    return { onlyA: 0, onlyB: 0, sameSchema: true, moved: 0 };
  }
  if (process.env.DR_WANDB_TEST_DEBUG_DIFF) console.error(`parquetDiff: bytes differ ${a} ${b}`);
  const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;
  const schema = async (f: string) => JSON.stringify(await duckObjects(`DESCRIBE SELECT * FROM ${f}`));
  const [sa, sb] = [await schema(`read_parquet(${lit(a)})`), await schema(`read_parquet(${lit(b)})`)];
  const sorted = folder && sa.includes('"run_id"') && sa.includes('"step"');
  const rel = (f: string) =>
    sorted ? `(SELECT * FROM read_parquet(${lit(f)}) ORDER BY run_id, step)` : `read_parquet(${lit(f)})`;
  const [A, B] = [rel(a), rel(b)];
  let differ = 0;
  if (sa === sb) {
    // The usual case, exactly and in one pass: as many rows, and row i of a equal to row i of b (a whole-row
    // comparison, NULL-safe, NaN equal to NaN): the same rows in the same order. Else the counts below say how.
    const [p] = await duckObjects(
      `SELECT (SELECT count(*) FROM ${A})::BIGINT AS na, (SELECT count(*) FROM ${B})::BIGINT AS nb,
              (SELECT count(*) FROM ${A} "dr$a" POSITIONAL JOIN ${B} "dr$b" WHERE "dr$a" IS DISTINCT FROM "dr$b")::BIGINT AS differ`,
    );
    if (Number(p!.na) === Number(p!.nb) && Number(p!.differ) === 0)
      return { onlyA: 0, onlyB: 0, sameSchema: true, moved: 0 };
    if (Number(p!.na) === Number(p!.nb)) differ = Number(p!.differ);
  }
  const [r] = await duckObjects(
    `SELECT (SELECT count(*) FROM (SELECT * FROM ${A} EXCEPT ALL SELECT * FROM ${B}))::INTEGER AS onlyA,
            (SELECT count(*) FROM (SELECT * FROM ${B} EXCEPT ALL SELECT * FROM ${A}))::INTEGER AS onlyB`,
  );
  // The same rows at other positions: how many positions differ (any file, not only history files).
  let moved = Number(r!.onlyA) === 0 && Number(r!.onlyB) === 0 ? differ : 0;
  if (moved === 0 && !folder && sa.includes('"run_id"') && sa.includes('"step"')) {
    const [m] = await duckObjects(
      `SELECT count(*)::INTEGER AS moved FROM read_parquet(${lit(a)}, file_row_number = true) x
       JOIN read_parquet(${lit(b)}, file_row_number = true) y USING (file_row_number)
       WHERE x.run_id <> y.run_id OR x.step IS DISTINCT FROM y.step`,
    );
    moved = Number(m!.moved);
  }
  return { onlyA: Number(r!.onlyA), onlyB: Number(r!.onlyB), sameSchema: sa === sb, moved };
}

/** Deep equality for JSON values where NaN equals NaN and bigint equals the same integer number. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a === "number" && typeof b === "number") return Object.is(a, b) || a === b;
  if ((typeof a === "bigint" || typeof a === "number") && (typeof b === "bigint" || typeof b === "number")) {
    try {
      return BigInt(a as never) === BigInt(b as never);
    } catch {
      return false;
    }
  }
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  if (a && b && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    return ka.every((k) => Object.hasOwn(b, k) && sameValue((a as never)[k], (b as never)[k]));
  }
  return a === b;
}

/** A readable description of the first difference between two JSON values (for assertion messages). */
export function firstDiff(a: unknown, b: unknown, path = "$"): string | null {
  if (sameValue(a, b)) return null;
  if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = firstDiff((a as never)[k], (b as never)[k], `${path}.${k}`);
      if (d) return d;
    }
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const d = firstDiff(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
  }
  const show = (v: unknown) => {
    try {
      return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? `${x}n` : Number.isNaN(x) ? "NaN" : x));
    } catch {
      return String(v);
    }
  };
  return `${path}: ${show(a)} != ${show(b)}`;
}

export type { JsonObject, JsonValue };
