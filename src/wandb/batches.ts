/** Runs by name: aliased RunsByName documents (50 names each), falling back to one Run request per name. */
import { isJsonObject } from "../model/json.js";
import { isShapeRejection } from "./capabilities.js";
import type { ClientCore } from "./client-core.js";
import { decodeRun, requireProject } from "./decode.js";
import type { WandbError } from "./errors.js";
import { RUN, runsByName } from "./queries.js";
import type { WandbRun } from "./types.js";

export async function getRun(
  core: ClientCore,
  entity: string,
  project: string,
  name: string,
): Promise<WandbRun | null> {
  const where = `${entity}/${project}/${name}`;
  const data = await core.transport.graphql("Run", RUN, { entity, project, name }, { run: where });
  const p = requireProject(data, "Run", where);
  return isJsonObject(p.run) ? decodeRun(p.run, entity, project) : null;
}

export async function getRuns(
  core: ClientCore,
  entity: string,
  project: string,
  names: string[],
): Promise<Map<string, WandbRun | null>> {
  const unique = [...new Set(names)];
  const out = new Map<string, WandbRun | null>();
  if (unique.length === 0) return out;
  if (!core.compat && core.caps.aliases !== false && unique.length > 1) {
    let size = Math.min(core.caps.maxAliases ?? core.runsPerRequest, core.runsPerRequest, unique.length);
    // The first batch finds out whether (and how large) aliased documents are accepted.
    for (;;) {
      try {
        await fetchRunBatch(core, entity, project, unique.slice(0, size), out);
        break;
      } catch (e) {
        if (!isShapeRejection(e)) throw e;
        // "field queried more than once" / alias errors reject aliasing itself; anything else may be about size.
        const aliasing = /alias|more than once|duplicate/i.test((e as WandbError).reason);
        const smaller = aliasing ? 0 : Math.floor(size / 2);
        if (smaller < 2) {
          size = 0;
          core.learn({ aliases: false });
          break;
        }
        size = smaller;
        core.learn({ maxAliases: size });
      }
    }
    if (size > 0) {
      if (core.caps.aliases !== true) core.learn({ aliases: true });
      const batches: string[][] = [];
      for (let i = size; i < unique.length; i += size) batches.push(unique.slice(i, i + size));
      await Promise.all(batches.map((b) => fetchRunBatch(core, entity, project, b, out)));
      return new Map(names.map((n) => [n, out.get(n) ?? null]));
    }
  }
  const runs = await Promise.all(unique.map((n) => getRun(core, entity, project, n)));
  for (let i = 0; i < unique.length; i++) out.set(unique[i]!, runs[i] ?? null);
  return new Map(names.map((n) => [n, out.get(n) ?? null]));
}

async function fetchRunBatch(
  core: ClientCore,
  entity: string,
  project: string,
  names: string[],
  out: Map<string, WandbRun | null>,
): Promise<void> {
  const where = `${entity}/${project}`;
  if (names.length === 1) {
    out.set(names[0]!, await getRun(core, entity, project, names[0]!));
    return;
  }
  const vars: Record<string, unknown> = { entity, project };
  names.forEach((n, i) => {
    vars[`n${i}`] = n;
  });
  const data = await core.transport.graphql("RunsByName", runsByName(names.length), vars, { run: where });
  const p = requireProject(data, "RunsByName", where);
  names.forEach((n, i) => {
    const node = p[`r${i}`];
    out.set(n, isJsonObject(node) ? decodeRun(node, entity, project) : null);
  });
}
