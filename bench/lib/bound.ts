/**
 * The S1 bound: the time a bare client needs to page through every run of the project serially with cursor
 * pagination, and nothing else. It sends the official client's `Runs` query with the full RunFragment (what
 * `api.runs(path, per_page=500, lazy=False)` asks for: config, summaryMetrics, systemMetrics, historyKeys, ...),
 * 500 runs per page, order +created_at, one request after the other, and parses each page (it must, to read the
 * cursor). Nothing is written anywhere.
 */
import type { FakeProcess } from "./fake.js";

export const BOUND_PAGE_SIZE = 500;

const RUNS_QUERY = `query Runs($project: String!, $entity: String!, $cursor: String, $perPage: Int = 50, $order: String, $filters: JSONString) {
  project(name: $project, entityName: $entity) {
    internalId
    runCount(filters: $filters)
    readOnly
    runs(filters: $filters, after: $cursor, first: $perPage, order: $order) {
      edges { node { projectId ...RunFragment } cursor }
      pageInfo { endCursor hasNextPage }
    }
  }
}
fragment RunFragment on Run {
  id tags name displayName sweepName state config group jobType commit readOnly createdAt heartbeatAt description
  notes systemMetrics summaryMetrics historyLineCount user { name username } historyKeys
}`;

export interface BoundResult {
  wallMs: number;
  pages: number;
  runs: number;
  pageSize: number;
}

interface RunsPage {
  data?: {
    project?: {
      runs?: { edges: unknown[]; pageInfo: { endCursor: string | null; hasNextPage: boolean } };
    };
  };
  errors?: unknown[];
}

/** Parses a page; the wire may carry bare NaN/Infinity tokens, which JSON.parse rejects, so those are mapped first. */
function readPage(body: string): { count: number; endCursor: string | null; hasNextPage: boolean } {
  let page: RunsPage;
  try {
    page = JSON.parse(body) as RunsPage;
  } catch {
    page = JSON.parse(body.replace(/(?<=[:,[]\s*)-?(NaN|Infinity)(?=\s*[,\]}])/g, "null")) as RunsPage;
  }
  const conn = page.data?.project?.runs;
  if (!conn || page.errors) throw new Error(`serial pagination: bad page ${body.slice(0, 200)}`);
  return { count: conn.edges.length, endCursor: conn.pageInfo.endCursor, hasNextPage: conn.pageInfo.hasNextPage };
}

export async function serialPagination(fake: FakeProcess, maxPages = 10_000): Promise<BoundResult> {
  const t0 = performance.now();
  let cursor: string | null = null;
  let pages = 0;
  let runs = 0;
  for (;;) {
    if (pages >= maxPages) throw new Error(`serial pagination: more than ${maxPages} pages`);
    const r = await fake.graphql(RUNS_QUERY, {
      project: fake.project,
      entity: fake.entity,
      cursor,
      perPage: BOUND_PAGE_SIZE,
      order: "+created_at",
      filters: "{}",
    });
    if (r.status !== 200) throw new Error(`serial pagination: HTTP ${r.status} ${r.body.slice(0, 200)}`);
    const { count, endCursor, hasNextPage } = readPage(r.body);
    pages++;
    runs += count;
    if (!hasNextPage || count === 0) break;
    cursor = endCursor;
  }
  return { wallMs: performance.now() - t0, pages, runs, pageSize: BOUND_PAGE_SIZE };
}
