/**
 * The SQL of the viewer's reads (ViewerReads, viewer.ts), for DuckDB and PostgreSQL (their differences in
 * viewer-dialect.ts, the metric series in viewer-series.ts). Every user- or W&B-chosen value
 * (run ids, keys, JSON paths, filters, ranges) is a bound parameter; the only numbers written into the SQL text are
 * integers this file computed itself (bucket counts, limits, offsets).
 *
 * History values are read from history_rows: numbers from vals (through the row's keyset), else from the strict
 * JSON of rest (src/model/json.ts), where numbers and the strings "NaN", "Infinity" and "-Infinity" (rows stored
 * before schema version 3) are chart values; anything else (strings, booleans, media objects) is not.
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
import { int, num, Params, type RowsFn, str, ViewerDialect } from "./viewer-dialect.js";
import { readSeries } from "./viewer-series.js";

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
  private readonly d: ViewerDialect;

  constructor(
    kind: ArchiveKind,
    private readonly rows: RowsFn,
  ) {
    this.d = new ViewerDialect(kind);
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
    if (q.states?.length) conds.push(`coalesce(state, '') IN (SELECT * FROM unnest(${this.d.textList(q.states, p)}))`);
    if (q.runIds?.length) conds.push(`run_id IN (SELECT * FROM unnest(${this.d.textList(q.runIds, p)}))`);
    if (q.groups?.length)
      conds.push(`coalesce("group", '') IN (SELECT * FROM unnest(${this.d.textList(q.groups, p)}))`);
    if (q.tags?.length) {
      const list = this.d.textList(q.tags, p);
      conds.push(this.d.pg ? `tags && ${list}` : `list_has_any(tags, ${list})`);
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
      runtime: this.d.runtimeExpr(),
      group: '"group"',
      job_type: "job_type",
      user: '"user"',
      sweep: this.d.sweepExpr(),
    };
    if (typeof col === "string") {
      const e = fixed[col];
      if (!e) throw new Error(`unknown sort column ${col}`);
      return `${e} ${dir} NULLS LAST, run_id ${dir}`;
    }
    const j = this.d.jsonAt(col.source === "config" ? "config" : "summary", col.path, p);
    return `${this.d.jsonNumber(j)} ${dir} NULLS LAST, ${this.d.jsonString(j)} ${dir} NULLS LAST, run_id ${dir}`;
  }

  async runs(q: RunsQuery): Promise<RunsPage> {
    const p = new Params();
    const cols = (q.columns ?? []).map(
      (c, i) => `${this.d.jsonAt(c.source === "config" ? "config" : "summary", c.path, p)} AS v${i}`,
    );
    const where = this.where(q, p);
    const order = this.order(q, p);
    const limit = int(q.limit, 100, 1000);
    const offset = int(q.offset, 0, Number.MAX_SAFE_INTEGER);
    const r = await this.rows(
      `SELECT run_id, run_name, state, created_at, heartbeat_at, ${this.d.runtimeExpr()} AS runtime, tags, "group",
              job_type, "user", ${this.d.sweepExpr()} AS sweep, deleted, count(*) OVER () AS total
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

  series(q: SeriesQuery): Promise<RunSeries[]> {
    return readSeries(this.d, this.rows, q);
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
              (SELECT count(*) FROM history_rows h WHERE h.entity = $1 AND h.project = $2 AND h.run_id = $3) AS history_rows
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
