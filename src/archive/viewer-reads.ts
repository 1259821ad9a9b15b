/**
 * The SQL of the viewer's reads (ViewerReads, viewer.ts), for DuckDB and PostgreSQL. Every user- or W&B-chosen value
 * (run ids, keys, JSON paths, filters, ranges) is a bound parameter; the only numbers written into the SQL text are
 * integers this file computed itself (bucket counts, limits, offsets).
 *
 * History values are read from the strict JSON of `history.metrics` (src/model/json.ts): numbers, and the strings
 * "NaN", "Infinity" and "-Infinity", are chart values; anything else (strings, booleans, media objects) is not.
 */
import type { ArchiveKind } from "./archive.js";
import type {
  FileRow,
  HistoryKey,
  ProjectRef,
  RunDetail,
  RunFacets,
  RunKeys,
  RunRow,
  RunSeries,
  RunSortColumn,
  RunsPage,
  RunsQuery,
  SeriesQuery,
  SystemMetricRow,
  ViewerProject,
  ViewerReads,
} from "./viewer.js";

export type RowsFn = (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

/** Bound parameters, numbered as both drivers expect ($1, $2, ...). */
class Params {
  readonly values: unknown[] = [];
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

/** RFC 6901 JSON Pointer of a key path (DuckDB's json_extract takes it; any key is safe in it). */
export function jsonPointer(path: string[]): string {
  return path.map((k) => `/${k.replaceAll("~", "~0").replaceAll("/", "~1")}`).join("");
}

function int(n: number | undefined, fallback: number, max: number): number {
  if (n === undefined || !Number.isFinite(n)) return fallback;
  return Math.max(0, Math.min(max, Math.trunc(n)));
}

function str(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}

function num(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  return typeof v === "number" ? v : Number(v);
}

function tagList(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String);
  if (typeof v === "string" && v.startsWith("[")) return (JSON.parse(v) as unknown[]).map(String);
  return [];
}

/** Key paths of a JSON object: nested objects are followed (to depth 6), arrays and media objects are leaves. */
function collectPaths(v: unknown, prefix: string[], out: Map<string, string[]>, cap: number): void {
  if (out.size >= cap || v === null || typeof v !== "object" || Array.isArray(v)) return;
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (out.size >= cap) return;
    const path = [...prefix, k];
    const isObj = x !== null && typeof x === "object" && !Array.isArray(x);
    const media = isObj && typeof (x as { _type?: unknown })._type === "string";
    if (isObj && !media && prefix.length < 5 && Object.keys(x as object).length > 0) collectPaths(x, path, out, cap);
    else out.set(JSON.stringify(path), path);
  }
}

export class ViewerSql implements ViewerReads {
  constructor(
    private readonly kind: ArchiveKind,
    private readonly rows: RowsFn,
  ) {}

  private get pg(): boolean {
    return this.kind === "postgres";
  }

  // ----------------------------------------------------------------------------------------------------------------
  // Dialect pieces

  /** The JSON value at `path` inside JSON column `col` (JSON text out in both backends). */
  private jsonAt(col: string, path: string[], p: Params): string {
    return this.pg ? `(${col} #> CAST(${p.add(path)} AS TEXT[]))` : `json_extract(${col}, ${p.add(jsonPointer(path))})`;
  }

  /** The number a JSON value `j` holds (numbers, and the strings NaN/±Infinity), else NULL. */
  private jsonNumber(j: string): string {
    if (this.pg) {
      return `(CASE jsonb_typeof(${j}) WHEN 'number' THEN CAST(${j} #>> '{}' AS DOUBLE PRECISION)
        WHEN 'string' THEN CASE WHEN ${j} #>> '{}' IN ('NaN', 'Infinity', '-Infinity') THEN CAST(${j} #>> '{}' AS DOUBLE PRECISION) END END)`;
    }
    return `(CASE WHEN json_type(${j}) IN ('DOUBLE', 'BIGINT', 'UBIGINT', 'HUGEINT', 'INTEGER') THEN TRY_CAST(json_extract_string(${j}, '$') AS DOUBLE)
      WHEN json_type(${j}) = 'VARCHAR' AND json_extract_string(${j}, '$') IN ('NaN', 'Infinity', '-Infinity') THEN CAST(json_extract_string(${j}, '$') AS DOUBLE) END)`;
  }

  private jsonString(j: string): string {
    return this.pg ? `(${j} #>> '{}')` : `json_extract_string(${j}, '$')`;
  }

  private epoch(col: string): string {
    return this.pg ? `CAST(extract(epoch FROM ${col}) AS DOUBLE PRECISION)` : `epoch(${col})`;
  }

  private isNan(v: string): string {
    return this.pg ? `${v} = CAST('NaN' AS DOUBLE PRECISION)` : `isnan(${v})`;
  }

  private inf(sign: "" | "-"): string {
    return `CAST('${sign}Infinity' AS ${this.pg ? "DOUBLE PRECISION" : "DOUBLE"})`;
  }

  /** A JSON array of strings, as a list the backend compares with. */
  private textList(values: string[], p: Params): string {
    const j = p.add(JSON.stringify(values));
    return this.pg
      ? `ARRAY(SELECT jsonb_array_elements_text(CAST(${j} AS JSONB)))`
      : `from_json(CAST(${j} AS VARCHAR), '["VARCHAR"]')`;
  }

  private runtimeExpr(): string {
    return `(${this.epoch("heartbeat_at")} - ${this.epoch("created_at")})`;
  }

  private sweepExpr(): string {
    return this.pg
      ? `coalesce(sweep_info ->> 'sweep_name', sweep_info ->> 'sweep_id')`
      : `coalesce(json_extract_string(sweep_info, '$.sweep_name'), json_extract_string(sweep_info, '$.sweep_id'))`;
  }

  // ----------------------------------------------------------------------------------------------------------------
  // Runs

  async projects(): Promise<ViewerProject[]> {
    const r = await this.rows(
      "SELECT entity, project, count(*) AS n FROM runs GROUP BY entity, project ORDER BY entity, project",
    );
    return r.map((x) => ({ entity: String(x.entity), project: String(x.project), runs: Number(x.n) }));
  }

  private where(q: RunsQuery, p: Params): string {
    const conds = [`entity = ${p.add(q.entity)}`, `project = ${p.add(q.project)}`];
    if (q.states?.length) conds.push(`coalesce(state, '') IN (SELECT * FROM unnest(${this.textList(q.states, p)}))`);
    if (q.runIds?.length) conds.push(`run_id IN (SELECT * FROM unnest(${this.textList(q.runIds, p)}))`);
    if (q.groups?.length) conds.push(`coalesce("group", '') IN (SELECT * FROM unnest(${this.textList(q.groups, p)}))`);
    if (q.tags?.length) {
      const list = this.textList(q.tags, p);
      conds.push(this.pg ? `tags && ${list}` : `list_has_any(tags, ${list})`);
    }
    const text = q.text?.trim();
    if (text) {
      const t = p.add(text.toLowerCase());
      const fields = ["run_id", "run_name", '"group"', '"user"', "notes", "job_type", "array_to_string(tags, ' ')"];
      conds.push(`(${fields.map((f) => `strpos(lower(coalesce(${f}, '')), ${t}) > 0`).join(" OR ")})`);
    }
    return conds.join(" AND ");
  }

  private order(q: RunsQuery, p: Params): string {
    const dir = q.sort?.desc ? "DESC" : "ASC";
    const col = q.sort?.column ?? "created_at";
    const fixed: Record<RunSortColumn, string> = {
      run_id: "run_id",
      run_name: "run_name",
      state: "state",
      created_at: "created_at",
      runtime: this.runtimeExpr(),
      group: '"group"',
      job_type: "job_type",
      user: '"user"',
      sweep: this.sweepExpr(),
    };
    if (typeof col === "string") {
      const e = fixed[col];
      if (!e) throw new Error(`unknown sort column ${col}`);
      return `${e} ${dir} NULLS LAST, run_id ${dir}`;
    }
    const j = this.jsonAt(col.source === "config" ? "config" : "summary", col.path, p);
    return `${this.jsonNumber(j)} ${dir} NULLS LAST, ${this.jsonString(j)} ${dir} NULLS LAST, run_id ${dir}`;
  }

  async runs(q: RunsQuery): Promise<RunsPage> {
    const p = new Params();
    const cols = (q.columns ?? []).map(
      (c, i) => `${this.jsonAt(c.source === "config" ? "config" : "summary", c.path, p)} AS v${i}`,
    );
    const where = this.where(q, p);
    const order = this.order(q, p);
    const limit = int(q.limit, 100, 1000);
    const offset = int(q.offset, 0, Number.MAX_SAFE_INTEGER);
    const r = await this.rows(
      `SELECT run_id, run_name, state, created_at, heartbeat_at, ${this.runtimeExpr()} AS runtime, tags, "group",
              job_type, "user", ${this.sweepExpr()} AS sweep, deleted, count(*) OVER () AS total
              ${cols.map((c) => `, ${c}`).join("")}
       FROM runs WHERE ${where} ORDER BY ${order} LIMIT ${limit} OFFSET ${offset}`,
      p.values,
    );
    let total = Number(r[0]?.total ?? 0);
    if (r.length === 0 && offset > 0) {
      const c = new Params();
      const n = await this.rows(`SELECT count(*) AS n FROM runs WHERE ${this.where(q, c)}`, c.values);
      total = Number(n[0]?.n ?? 0);
    }
    const rows: RunRow[] = r.map((x) => ({
      run_id: String(x.run_id),
      run_name: str(x.run_name),
      state: str(x.state),
      created_at: str(x.created_at),
      heartbeat_at: str(x.heartbeat_at),
      runtime: num(x.runtime),
      tags: tagList(x.tags),
      group: str(x.group),
      job_type: str(x.job_type),
      user: str(x.user),
      sweep: str(x.sweep),
      deleted: x.deleted === true,
      values: cols.map((_, i) => str(x[`v${i}`])),
    }));
    return { total, rows };
  }

  async runIds(q: RunsQuery): Promise<string[]> {
    const p = new Params();
    const where = this.where(q, p);
    const order = this.order(q, p);
    const r = await this.rows(`SELECT run_id FROM runs WHERE ${where} ORDER BY ${order} LIMIT 100000`, p.values);
    return r.map((x) => String(x.run_id));
  }

  async facets(ref: ProjectRef): Promise<RunFacets> {
    const key = [ref.entity, ref.project];
    const sel = async (sql: string) =>
      (await this.rows(sql, key)).map((x) => String(x.v)).sort((a, b) => a.localeCompare(b));
    return {
      states: await sel(`SELECT DISTINCT coalesce(state, '') AS v FROM runs WHERE entity = $1 AND project = $2`),
      groups: await sel(
        `SELECT DISTINCT "group" AS v FROM runs WHERE entity = $1 AND project = $2 AND "group" IS NOT NULL`,
      ),
      tags: await sel(
        `SELECT DISTINCT t AS v FROM (SELECT unnest(tags) AS t FROM runs WHERE entity = $1 AND project = $2) x`,
      ),
    };
  }

  async runKeys(ref: ProjectRef): Promise<RunKeys> {
    const r = await this.rows("SELECT config, summary FROM runs WHERE entity = $1 AND project = $2", [
      ref.entity,
      ref.project,
    ]);
    const config = new Map<string, string[]>();
    const summary = new Map<string, string[]>();
    for (const x of r) {
      if (typeof x.config === "string") collectPaths(JSON.parse(x.config), [], config, 5000);
      if (typeof x.summary === "string") collectPaths(JSON.parse(x.summary), [], summary, 5000);
    }
    const sorted = (m: Map<string, string[]>) =>
      [...m.values()].sort((a, b) => a.join("\u0000").localeCompare(b.join("\u0000")));
    return { config: sorted(config), summary: sorted(summary) };
  }

  // ----------------------------------------------------------------------------------------------------------------
  // History

  async historyKeys(ref: ProjectRef): Promise<HistoryKey[]> {
    const r = await this.rows("SELECT key, kinds FROM metric_keys WHERE entity = $1 AND project = $2 ORDER BY key", [
      ref.entity,
      ref.project,
    ]);
    return r.map((x) => ({ key: String(x.key), kinds: Number(x.kinds) }));
  }

  async series(q: SeriesQuery): Promise<RunSeries[]> {
    if (q.runIds.length === 0) return [];
    const p = new Params();
    const buckets = int(q.buckets, 1000, 20_000) || 1;
    const rawLimit = int(q.rawLimit, buckets * 4, 5_000_000);
    const ids = this.textList(q.runIds, p);
    const j = this.jsonAt("metrics", [q.key], p);
    const x =
      q.x === "runtime" ? "runtime" : q.x === "wall" ? this.epoch('"timestamp"') : "CAST(step AS DOUBLE PRECISION)";
    const range: string[] = [];
    if (q.x0 !== undefined && Number.isFinite(q.x0)) range.push(`x >= ${p.add(q.x0)}`);
    if (q.x1 !== undefined && Number.isFinite(q.x1)) range.push(`x <= ${p.add(q.x1)}`);
    const nan = this.isNan("v");
    // Points of the selected runs in range, materialised once (DuckDB would otherwise re-extract the JSON value
    // for every reference). Each bucket is [lo, hi] of every run's x split in `buckets`, per value class (finite,
    // NaN, +Inf, -Inf): it keeps its first and last point by x and, for finite values, its min and max (M4).
    const with_ = `
      WITH pts AS MATERIALIZED (
        SELECT run_id, step, x, v FROM (
          SELECT run_id, step, ${x} AS x, ${this.jsonNumber("j")} AS v FROM (
            SELECT run_id, step, runtime, "timestamp", ${j} AS j FROM history
            WHERE entity = ${p.add(q.entity)} AND project = ${p.add(q.project)}
              AND run_id IN (SELECT * FROM unnest(${ids}))
          ) h
        ) t WHERE x IS NOT NULL AND v IS NOT NULL ${range.map((c) => `AND ${c}`).join(" ")}
      ),
      g AS (SELECT min(x) AS lo, max(x) AS hi FROM pts),
      cnt AS (SELECT run_id, count(*) AS n FROM pts GROUP BY run_id),
      k AS (
        SELECT pts.run_id, step, x, v, cnt.n,
          CASE WHEN g.hi > g.lo THEN floor((x - g.lo) / (g.hi - g.lo) * ${buckets}) ELSE 0 END AS bk,
          CASE WHEN ${nan} THEN 1 WHEN v = ${this.inf("")} THEN 2 WHEN v = ${this.inf("-")} THEN 3 ELSE 0 END AS c
        FROM pts JOIN cnt ON cnt.run_id = pts.run_id CROSS JOIN g
      )`;
    // PostgreSQL has no arg_min: window ranks give the same four points per bucket and class.
    const sql = this.pg
      ? `${with_},
      r AS (
        SELECT run_id, step, x, v, n,
          row_number() OVER (PARTITION BY run_id, bk, c ORDER BY x, step) AS r_first,
          row_number() OVER (PARTITION BY run_id, bk, c ORDER BY x DESC, step DESC) AS r_last,
          row_number() OVER (PARTITION BY run_id, bk, c ORDER BY CASE WHEN c = 0 THEN v END ASC NULLS LAST, x, step) AS r_min,
          row_number() OVER (PARTITION BY run_id, bk, c ORDER BY CASE WHEN c = 0 THEN v END DESC NULLS LAST, x DESC, step DESC) AS r_max
        FROM k
      )
      SELECT run_id, step, x, v, n, CASE WHEN n <= ${rawLimit} THEN 1 ELSE 0 END AS raw FROM r
      WHERE n <= ${rawLimit} OR r_first = 1 OR r_last = 1 OR r_min = 1 OR r_max = 1
      ORDER BY run_id, x, step`
      : `${with_},
      pick AS (
        SELECT run_id, step FROM k WHERE n <= ${rawLimit}
        UNION
        SELECT run_id, unnest([arg_min(step, (x, step)), arg_max(step, (x, step)), arg_min(step, (v, x, step)),
                               arg_max(step, (v, x, step))]) AS step
        FROM k WHERE n > ${rawLimit} GROUP BY run_id, bk, c
      )
      SELECT pts.run_id, pts.step, x, v, cnt.n, CASE WHEN cnt.n <= ${rawLimit} THEN 1 ELSE 0 END AS raw
      FROM pts JOIN pick ON pick.run_id = pts.run_id AND pick.step = pts.step JOIN cnt ON cnt.run_id = pts.run_id
      ORDER BY pts.run_id, x, pts.step`;
    const r = await this.rows(sql, p.values);
    const out = new Map<string, RunSeries>();
    for (const id of q.runIds) {
      if (!out.has(id)) out.set(id, { run_id: id, total: 0, sampled: false, step: [], x: [], y: [] });
    }
    for (const row of r) {
      const s = out.get(String(row.run_id));
      if (!s) continue;
      s.total = Number(row.n);
      s.sampled = Number(row.raw) !== 1;
      s.step.push(Number(row.step));
      s.x.push(Number(row.x));
      s.y.push(Number(row.v));
    }
    return [...out.values()];
  }

  // ----------------------------------------------------------------------------------------------------------------
  // One run

  async run(ref: ProjectRef, runId: string): Promise<RunDetail | null> {
    const key = [ref.entity, ref.project, runId];
    const r = await this.rows(
      `SELECT entity, project, run_id, run_name, state, created_at, heartbeat_at, tags, "group", job_type, "user",
              notes, "commit", deleted, deleted_at, synced_at, last_history_step,
              CAST(config AS TEXT) AS config, CAST(summary AS TEXT) AS summary,
              CAST(wandb_metadata AS TEXT) AS wandb_metadata, CAST(sweep_info AS TEXT) AS sweep_info,
              CAST(system_metrics AS TEXT) AS system_metrics,
              (SELECT count(*) FROM history h WHERE h.entity = $1 AND h.project = $2 AND h.run_id = $3) AS history_rows
       FROM runs WHERE entity = $1 AND project = $2 AND run_id = $3`,
      key,
    );
    const x = r[0];
    if (!x) return null;
    return {
      entity: String(x.entity),
      project: String(x.project),
      run_id: String(x.run_id),
      run_name: str(x.run_name),
      state: str(x.state),
      created_at: str(x.created_at),
      heartbeat_at: str(x.heartbeat_at),
      tags: tagList(x.tags),
      group: str(x.group),
      job_type: str(x.job_type),
      user: str(x.user),
      notes: str(x.notes),
      commit: str(x.commit),
      deleted: x.deleted === true,
      deleted_at: str(x.deleted_at),
      synced_at: str(x.synced_at),
      last_history_step: num(x.last_history_step),
      history_rows: Number(x.history_rows ?? 0),
      config: str(x.config) ?? "{}",
      summary: str(x.summary) ?? "{}",
      wandb_metadata: str(x.wandb_metadata) ?? "{}",
      sweep_info: str(x.sweep_info) ?? "{}",
      system_metrics: str(x.system_metrics) ?? "{}",
    };
  }

  async files(ref: ProjectRef, runId: string): Promise<FileRow[]> {
    const r = await this.rows(
      `SELECT name, size, md5, updated_at, local_path FROM files
       WHERE entity = $1 AND project = $2 AND run_id = $3 ORDER BY name`,
      [ref.entity, ref.project, runId],
    );
    return r.map((x) => ({
      name: String(x.name),
      size: num(x.size),
      md5: str(x.md5),
      updated_at: str(x.updated_at),
      local_path: str(x.local_path),
    }));
  }

  async systemMetrics(ref: ProjectRef, runId: string, limit = 20_000): Promise<SystemMetricRow[]> {
    const r = await this.rows(
      `SELECT "timestamp", runtime, CAST(metrics AS TEXT) AS metrics FROM system_metrics
       WHERE entity = $1 AND project = $2 AND run_id = $3 ORDER BY runtime NULLS LAST, "timestamp" LIMIT ${int(limit, 20_000, 1_000_000)}`,
      [ref.entity, ref.project, runId],
    );
    return r.map((x) => ({ timestamp: str(x.timestamp), runtime: num(x.runtime), metrics: str(x.metrics) ?? "{}" }));
  }
}
