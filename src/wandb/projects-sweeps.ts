/** The projects of an entity (the SDK's Projects paginator), and sweeps: aliased GetSweeps, else one GetSweep each. */
import { isJsonObject, type JsonObject } from "../model/json.js";
import type { AliasBatcher } from "./batcher.js";
import { isShapeRejection, SDK_PAGE_SIZE } from "./capabilities.js";
import type { ClientCore } from "./client-core.js";
import { decodeProject, decodeSweep, requireProject } from "./decode.js";
import { PROJECTS, SWEEP, SWEEP_LEGACY } from "./queries.js";
import type { WandbProject, WandbSweep } from "./types.js";

/** The sweep reads one client batches (several sweeps asked for within 25 ms share one document). */
export type SweepReads = AliasBatcher<{ entity: string; project: string; name: string }>;

export async function* listProjects(core: ClientCore, entity: string): AsyncIterable<WandbProject[]> {
  let cursor: string | null = null;
  for (;;) {
    const data = await core.transport.graphql(
      "Projects",
      PROJECTS,
      { entity, cursor, perPage: SDK_PAGE_SIZE },
      { run: entity },
    );
    // An entity W&B does not know (or that this key cannot see) lists nothing.
    const conn = isJsonObject(data.models) ? data.models : {};
    const edges = Array.isArray(conn.edges) ? conn.edges.filter(isJsonObject) : [];
    const projects = edges
      .map((e) => e.node)
      .filter(isJsonObject)
      .map((n) => decodeProject(n, entity))
      .filter((p): p is WandbProject => p !== null);
    if (projects.length > 0) yield projects;
    const pageInfo = isJsonObject(conn.pageInfo) ? conn.pageInfo : {};
    if (pageInfo.hasNextPage !== true || edges.length === 0) return;
    // The SDK's Projects paginator: continue after the last edge's cursor.
    const last = edges[edges.length - 1]!;
    const next = typeof last.cursor === "string" ? last.cursor : pageInfo.endCursor;
    if (typeof next !== "string" || next === cursor) return;
    cursor = next;
  }
}

export async function getSweep(
  sweepReads: SweepReads,
  entity: string,
  project: string,
  sweepName: string,
): Promise<WandbSweep | null> {
  const where = `${entity}/${project}`;
  // Several sweeps asked for at about the same time (the first runs of a listing) share one aliased document.
  const data = await sweepReads.load(entity, project, where, { entity, project, name: sweepName }, 1);
  const p = requireProject(data, "GetSweep", where);
  return isJsonObject(p.sweep) ? decodeSweep(p.sweep, sweepName) : null;
}

/** GetSweep as the SDK sends it (the legacy Sweep document on servers that reject GetSweep's newer fields). */
export async function getSweepAlone(
  core: ClientCore,
  entity: string,
  project: string,
  name: string,
): Promise<JsonObject> {
  const vars = { entity, project, name };
  const where = `${entity}/${project}`;
  try {
    return await core.transport.graphql("GetSweep", SWEEP, vars, { run: where });
  } catch (e) {
    if (!isShapeRejection(e)) throw e;
    return await core.transport.graphql("Sweep", SWEEP_LEGACY, vars, { run: where });
  }
}
