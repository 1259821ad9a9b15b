/**
 * The viewer's JSON API: query-string parameters in, archive reads (ViewerReads) out. Every parameter is validated
 * here and handed to the reads as a value (the reads bind it); nothing from a request is written into SQL text.
 * Non-finite chart values travel as the strings "NaN", "Infinity" and "-Infinity" (JSON has no such numbers).
 */
import { type JsonColumn, RUN_SORT_COLUMNS, type RunSortColumn, type RunsQuery, type XAxis } from "../archive/index.js";
import type { ArchiveSource } from "./source.js";

export class BadRequest extends Error {
  override name = "BadRequest";
}

export class NotFound extends Error {
  override name = "NotFound";
}

function required(q: URLSearchParams, name: string): string {
  const v = q.get(name);
  if (v === null || v === "") throw new BadRequest(`missing parameter ${name}`);
  return v;
}

function optionalNumber(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === "") return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new BadRequest(`parameter ${name} must be a number`);
  return n;
}

/** `config:["a","b"]` or `summary:["loss"]`: a source and a JSON array of key segments. */
export function parseColumn(s: string): JsonColumn {
  const m = /^(config|summary):(\[.*\])$/s.exec(s);
  if (!m) throw new BadRequest(`bad column ${JSON.stringify(s.slice(0, 80))} (want config:["key",...])`);
  let path: unknown;
  try {
    path = JSON.parse(m[2]!);
  } catch {
    throw new BadRequest("bad column path (not JSON)");
  }
  if (!Array.isArray(path) || path.length === 0 || path.length > 16 || !path.every((p) => typeof p === "string")) {
    throw new BadRequest("a column path is a JSON array of 1 to 16 strings");
  }
  return { source: m[1] as "config" | "summary", path: path as string[] };
}

function project(q: URLSearchParams): { entity: string; project: string } {
  return { entity: required(q, "entity"), project: required(q, "project") };
}

function runsQuery(q: URLSearchParams): RunsQuery {
  const sortParam = q.get("sort");
  let sort: RunsQuery["sort"];
  if (sortParam) {
    const column = (RUN_SORT_COLUMNS as readonly string[]).includes(sortParam)
      ? (sortParam as RunSortColumn)
      : parseColumn(sortParam);
    sort = { column, desc: q.get("desc") === "1" };
  }
  return {
    ...project(q),
    columns: q.getAll("col").slice(0, 50).map(parseColumn),
    sort,
    text: q.get("q") ?? undefined,
    states: q.getAll("state"),
    tags: q.getAll("tag"),
    groups: q.getAll("group"),
    runIds: q.getAll("run"),
    offset: optionalNumber(q, "offset"),
    limit: optionalNumber(q, "limit"),
  };
}

/** Numbers as JSON can carry them; NaN and ±Infinity as strings. */
function chartValue(v: number): number | string {
  if (Number.isFinite(v)) return v;
  return Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
}

export type ApiResult = { status?: number; body: unknown };

/** Answers GET /api/<name>; throws BadRequest / NotFound / ArchiveBusyError / ArchiveError. */
export async function handleApi(name: string, q: URLSearchParams, source: ArchiveSource): Promise<ApiResult> {
  switch (name) {
    case "projects":
      return {
        body: await source.use(async (r) => ({
          kind: source.kind,
          location: source.location,
          projects: await r.projects(),
        })),
      };
    case "runs": {
      const query = runsQuery(q);
      return { body: await source.use((r) => r.runs(query)) };
    }
    case "run-ids": {
      const query = runsQuery(q);
      return { body: { ids: await source.use((r) => r.runIds(query)) } };
    }
    case "facets": {
      const p = project(q);
      return { body: await source.use((r) => r.facets(p)) };
    }
    case "keys": {
      const p = project(q);
      return {
        body: await source.use(async (r) => ({ ...(await r.runKeys(p)), history: await r.historyKeys(p) })),
      };
    }
    case "series": {
      const p = project(q);
      const runIds = q.getAll("run");
      if (runIds.length > 200) throw new BadRequest("at most 200 runs per chart");
      const x = (q.get("x") ?? "step") as XAxis;
      if (!["step", "runtime", "wall"].includes(x)) throw new BadRequest("x must be step, runtime or wall");
      const query = {
        ...p,
        runIds,
        key: required(q, "key"),
        x,
        buckets: optionalNumber(q, "buckets") ?? 1000,
        x0: optionalNumber(q, "x0"),
        x1: optionalNumber(q, "x1"),
      };
      const started = performance.now();
      const series = await source.use((r) => r.series(query));
      return {
        body: {
          key: query.key,
          x,
          ms: Math.round(performance.now() - started),
          series: series.map((s) => ({ ...s, y: s.y.map(chartValue) })),
        },
      };
    }
    case "run": {
      const p = project(q);
      const id = required(q, "run");
      const detail = await source.use((r) => r.run(p, id));
      if (!detail) throw new NotFound(`no run ${JSON.stringify(id)} in ${p.entity}/${p.project}`);
      return { body: detail };
    }
    case "files": {
      const p = project(q);
      const id = required(q, "run");
      return { body: { files: await source.use((r) => r.files(p, id)) } };
    }
    case "system": {
      const p = project(q);
      const id = required(q, "run");
      return { body: { rows: await source.use((r) => r.systemMetrics(p, id)) } };
    }
    default:
      throw new NotFound(`no API ${JSON.stringify(name)}`);
  }
}
