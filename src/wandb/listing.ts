/**
 * Listing a project's runs: Runs pages (with the files shape when asked and accepted), and after the first page
 * disjoint createdAt ranges listed at once where the server keeps to them; the run count.
 */
import { isJsonObject, type JsonObject, stringifyWandb } from "../model/json.js";
import { wandbTimeMs } from "../model/records.js";
import { isShapeRejection } from "./capabilities.js";
import type { ClientCore } from "./client-core.js";
import { decodeFile, decodeRun, requireProject } from "./decode.js";
import { RUN_COUNT, RUNS, RUNS_WITH_FILES } from "./queries.js";
import type { ListRunsOptions, RunsPage } from "./types.js";

export async function runCount(
  core: ClientCore,
  entity: string,
  project: string,
  filters?: JsonObject,
): Promise<number> {
  const where = `${entity}/${project}`;
  const data = await core.transport.graphql(
    "RunCount",
    RUN_COUNT,
    { entity, project, filters: stringifyWandb(filters ?? {}) },
    { run: where },
  );
  const p = requireProject(data, "RunCount", where);
  const n = p.runCount;
  return typeof n === "number" ? n : typeof n === "bigint" ? Number(n) : 0;
}

/** Listing pages held at once by a ranged listing: in flight or parsed and waiting for the consumer. */
export const LISTING_PAGES_AHEAD = 3;

export async function* listRuns(
  core: ClientCore,
  entity: string,
  project: string,
  options: ListRunsOptions = {},
): AsyncIterable<RunsPage> {
  const order = options.order ?? "+created_at";
  const parallel = Math.max(1, Math.floor(options.parallel ?? 1));
  const listing: { size?: number } = {};
  const ranged = parallel > 1 && order === "+created_at" && !core.compat && core.caps.rangeListing !== false;
  let first: Awaited<ReturnType<typeof fetchRunsPage>> | undefined = await fetchRunsPage(
    core,
    entity,
    project,
    options,
    null,
    listing,
  );
  // What the rest of the listing needs of the first page; the page itself is not held once handed out (its runs,
  // with their config and summary, are the consumer's to release).
  const { runCount, hasNextPage, next } = first;
  const remaining = runCount - first.runs.length;
  const perPage = Math.max(1, first.runs.length);
  const lastCreatedAt = first.runs[first.runs.length - 1]?.createdAt ?? "";
  yield first;
  first = undefined;
  if (!hasNextPage || next === null) return;
  let cursor: string | null = next;
  // More than one page to go: the newest run's creation time (one small request) bounds the ranges.
  if (ranged && remaining > perPage) {
    const ranges = createdAtRanges(
      lastCreatedAt,
      await newestCreatedAt(core, entity, project, options),
      Math.min(parallel, Math.ceil(remaining / perPage)),
    );
    if (ranges) {
      const done = yield* listRanges(core, entity, project, options, ranges, runCount);
      if (done) return;
      // The server did not keep to the ranges: the rest in the usual way (callers drop runs seen twice).
    }
  }
  for (;;) {
    const next = await fetchRunsPage(core, entity, project, options, cursor, listing);
    yield next;
    if (!next.hasNextPage || next.next === null || next.next === cursor) return;
    cursor = next.next;
  }
}

/**
 * Lists disjoint createdAt ranges at once, each paged serially, yielding pages as they come (a few buffered at
 * most). Returns false, having stopped, when a page holds a run outside its range (the server ignored the filter).
 */
async function* listRanges(
  core: ClientCore,
  entity: string,
  project: string,
  options: ListRunsOptions,
  ranges: CreatedAtRange[],
  runCount: number,
): AsyncGenerator<RunsPage, boolean> {
  const stop = new AbortController();
  const signal = options.signal ? anySignal([options.signal, stop.signal]) : stop.signal;
  const queue: RunsPage[] = [];
  let active = ranges.length;
  let failure: unknown;
  let outside = false;
  let wake: (() => void) | undefined;
  let room: (() => void)[] = [];
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  // Pages fetched or being fetched and not yet handed out: each is a parsed page of full runs (config, summary), so
  // this bounds the listing's memory whatever the number of ranges (more ranges than this wait their turn).
  const maxAhead = LISTING_PAGES_AHEAD;
  let fetching = 0;
  const worker = async (range: CreatedAtRange) => {
    const listing: { size?: number } = {};
    const opts: ListRunsOptions = { ...options, filters: range.filters(options.filters), signal };
    let cursor: string | null = null;
    try {
      for (;;) {
        while (queue.length + fetching >= maxAhead && !stop.signal.aborted) {
          await new Promise<void>((r) => room.push(r));
        }
        if (stop.signal.aborted) return;
        fetching++;
        let page: Awaited<ReturnType<typeof fetchRunsPage>>;
        try {
          page = await fetchRunsPage(core, entity, project, opts, cursor, listing);
        } finally {
          fetching--;
        }
        if (!page.runs.every((r) => range.holds(r.createdAt))) {
          outside = true;
          core.learn({ rangeListing: false });
          stop.abort();
          return;
        }
        queue.push({ runs: page.runs, runCount, hasNextPage: true });
        notify();
        if (!page.hasNextPage || page.next === null || page.next === cursor) return;
        cursor = page.next;
      }
    } catch (e) {
      if (!stop.signal.aborted) {
        failure = e;
        stop.abort();
      }
    } finally {
      active--;
      notify();
    }
  };
  const workers = ranges.map(worker);
  try {
    for (;;) {
      if (failure !== undefined) throw failure;
      if (outside) return false;
      const page = queue.shift();
      if (page) {
        const waiting = room;
        room = [];
        for (const r of waiting) r();
        yield page;
        continue;
      }
      if (active === 0) break;
      await new Promise<void>((r) => {
        wake = r;
      });
    }
    if (failure !== undefined) throw failure;
    if (outside) return false;
    if (core.caps.rangeListing !== true) core.learn({ rangeListing: true });
    return true;
  } finally {
    stop.abort();
    for (const r of room) r();
    await Promise.allSettled(workers);
  }
}

/** The creation time of the newest run matching the filters (one run, newest first), or null. */
async function newestCreatedAt(
  core: ClientCore,
  entity: string,
  project: string,
  options: ListRunsOptions,
): Promise<string | null> {
  const data = await core.transport.graphql(
    "Runs",
    RUNS,
    {
      entity,
      project,
      cursor: null,
      perPage: 1,
      order: "-created_at",
      filters: stringifyWandb(options.filters ?? {}),
    },
    { run: `${entity}/${project}`, signal: options.signal },
  );
  const p = requireProject(data, "Runs", `${entity}/${project}`);
  const conn = isJsonObject(p.runs) ? p.runs : {};
  const edge = Array.isArray(conn.edges) ? conn.edges.find(isJsonObject) : undefined;
  const node = edge && isJsonObject(edge.node) ? edge.node : null;
  return node && typeof node.createdAt === "string" ? node.createdAt : null;
}

/** One Runs page after `cursor` (null: the first), with the files shape when asked and accepted. */
async function fetchRunsPage(
  core: ClientCore,
  entity: string,
  project: string,
  options: ListRunsOptions,
  cursor: string | null,
  listing: { size?: number },
): Promise<RunsPage & { next: string | null }> {
  const where = `${entity}/${project}`;
  const filters = stringifyWandb(options.filters ?? {});
  const order = options.order ?? "+created_at";
  const requested = Math.max(1, Math.floor(options.perPage ?? core.perPage));
  const fileNames = options.files && options.files.length > 0 ? options.files : undefined;
  let withFiles = false;
  const data = await core.withPageSize("runs", requested, listing, async (perPage) => {
    const vars = { entity, project, cursor, perPage, order, filters };
    const meta = { run: where, signal: options.signal };
    withFiles = fileNames !== undefined && !core.compat && core.caps.filesInRuns !== false;
    if (!withFiles) return core.transport.graphql("Runs", RUNS, vars, meta);
    try {
      const d = await core.transport.graphql("Runs", RUNS_WITH_FILES, { ...vars, fileNames }, meta);
      if (core.caps.filesInRuns !== true) core.learn({ filesInRuns: true });
      return d;
    } catch (e) {
      if (!isShapeRejection(e)) throw e;
      withFiles = false;
      // The same page in the SDK's shape: if it is accepted, files inside runs were the problem (remembered);
      // if it is rejected too, the page size was, and withPageSize asks again with smaller pages.
      const d = await core.transport.graphql("Runs", RUNS, vars, meta);
      core.learn({ filesInRuns: false });
      return d;
    }
  });
  const p = requireProject(data, "Runs", where);
  const conn = isJsonObject(p.runs) ? p.runs : {};
  const edges = Array.isArray(conn.edges) ? conn.edges.filter(isJsonObject) : [];
  const runs = edges
    .map((e) => e.node)
    .filter(isJsonObject)
    .map((n) => {
      if (!withFiles) return decodeRun(n, entity, project);
      // The files are not part of the run's record (their URLs are signed and short-lived).
      const { files, ...node } = n;
      const run = decodeRun(node, entity, project);
      const fconn = isJsonObject(files) ? files : null;
      if (fconn && Array.isArray(fconn.edges)) {
        run.files = fconn.edges
          .filter(isJsonObject)
          .map((e) => e.node)
          .filter(isJsonObject)
          .map(decodeFile);
      }
      return run;
    });
  const pageInfo = isJsonObject(conn.pageInfo) ? conn.pageInfo : {};
  const hasNextPage = pageInfo.hasNextPage === true && edges.length > 0;
  const runCount = typeof p.runCount === "number" ? p.runCount : runs.length;
  // The legacy paginator's rule: continue after the last edge's cursor.
  const last = edges[edges.length - 1];
  const nextCursor = last && typeof last.cursor === "string" ? last.cursor : pageInfo.endCursor;
  return { runs, runCount, hasNextPage, next: hasNextPage && typeof nextCursor === "string" ? nextCursor : null };
}

/** A half-open createdAt range [from, to) (no upper end for the last), as a W&B filter and as a check. */
export interface CreatedAtRange {
  filters(user: JsonObject | undefined): JsonObject;
  holds(createdAt: string): boolean;
}

/**
 * `count` disjoint createdAt ranges from `from` (the last run of the first page: runs created at that same second may
 * be listed twice, never missed) to past `newest`, split evenly in time at whole seconds, written as W&B compares
 * createdAt (zone-less UTC text, as --created-after does). Null when the times cannot be read or there is nothing to
 * split.
 */
export function createdAtRanges(from: string, newest: string | null, count: number): CreatedAtRange[] | null {
  if (newest === null || count < 2) return null;
  const a = wandbTimeMs(from);
  const b = wandbTimeMs(newest);
  if (!Number.isFinite(a) || !Number.isFinite(b) || b <= a) return null;
  const fmt = (ms: number) => new Date(ms).toISOString().slice(0, 19);
  const cuts: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = Math.floor((a + ((b - a) * i) / count) / 1000) * 1000;
    if (cuts.length === 0 || t > cuts[cuts.length - 1]!) cuts.push(t);
  }
  if (cuts.length < 2) return null;
  return cuts.map((lo, i) => {
    const hi = cuts[i + 1];
    const bounds: JsonObject[] = [{ createdAt: { $gte: fmt(lo) } }];
    if (hi !== undefined) bounds.push({ createdAt: { $lt: fmt(hi) } });
    return {
      filters: (user) => ({ $and: [...(user && Object.keys(user).length > 0 ? [user] : []), ...bounds] }),
      holds: (createdAt) => {
        const t = wandbTimeMs(createdAt);
        return Number.isFinite(t) && t >= lo && (hi === undefined || t < hi);
      },
    };
  });
}

/** An AbortSignal aborted when any of `signals` is. */
function anySignal(signals: AbortSignal[]): AbortSignal {
  const ac = new AbortController();
  for (const s of signals) {
    if (s.aborted) {
      ac.abort(s.reason);
      break;
    }
    s.addEventListener("abort", () => ac.abort(s.reason), { once: true });
  }
  return ac.signal;
}
