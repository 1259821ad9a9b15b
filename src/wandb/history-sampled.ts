/**
 * History read as W&B samples it: keyed scans through SampledHistoryPage windows (the SDK's scan_history(keys=...)),
 * a run's sampled history (RunSampledHistory / RunFullHistory) and its system-metrics events.
 */
import { decodeRow, requireRun, restoreNonFinite } from "./decode.js";
import { firstSpecRows, inWindow, ordered, stepWindows } from "./history-windows.js";
import { RUN_EVENTS, RUN_FULL_HISTORY, RUN_SAMPLED_HISTORY, SAMPLED_HISTORY_PAGE } from "./queries.js";
import type { Transport } from "./transport.js";
import type { EventRow, HistoryRow } from "./types.js";

/** A keyed scan's step range, cut into `pageSize` windows, `concurrency` in flight. */
export interface KeyedScan {
  keys: string[];
  from: number;
  stop: number;
  pageSize: number;
  /** Each key's value types from historyKeys: a number-only key's "NaN"/"Infinity" strings become numbers again. */
  types: Map<string, Set<string>>;
  concurrency: number;
}

/** SampledHistoryPage windows (spec maxStep is inclusive: end - 1), as the SDK does for keyed scans. */
export async function* sampledWindows(
  transport: Transport,
  entity: string,
  project: string,
  name: string,
  scan: KeyedScan,
  signal?: AbortSignal,
): AsyncGenerator<HistoryRow[]> {
  const { keys, from, stop, pageSize, types } = scan;
  const where = `${entity}/${project}/${name}`;
  const specKeys = keys.includes("_step") ? keys : ["_step", ...keys];
  const windows = stepWindows(from, stop, pageSize);
  const fetchWindow = async ([lo, hi]: [number, number], s: AbortSignal): Promise<HistoryRow[]> => {
    const spec = JSON.stringify({ keys: specKeys, minStep: lo, maxStep: hi - 1, samples: hi - lo });
    const data = await transport.graphql(
      "SampledHistoryPage",
      SAMPLED_HISTORY_PAGE,
      { entity, project, run: name, spec },
      { run: where, signal: s },
    );
    const rows = firstSpecRows(requireRun(data, "SampledHistoryPage", where).sampledHistory).map((r) =>
      restoreNonFinite(decodeRow(r, "SampledHistoryPage"), types),
    );
    return inWindow(rows, lo, hi);
  };
  for await (const rows of ordered(windows, fetchWindow, scan.concurrency, signal)) {
    if (rows.length > 0) yield rows;
  }
}

/** A run's history sampled by W&B (RunSampledHistory for given keys, else RunFullHistory): at most `samples` rows. */
export async function sampledHistory(
  transport: Transport,
  entity: string,
  project: string,
  name: string,
  options: { keys?: string[]; samples: number },
): Promise<HistoryRow[]> {
  const where = `${entity}/${project}/${name}`;
  if (options.keys && options.keys.length > 0) {
    const keys = options.keys.includes("_step") ? options.keys : ["_step", ...options.keys];
    const specs = [JSON.stringify({ keys, samples: options.samples })];
    const data = await transport.graphql(
      "RunSampledHistory",
      RUN_SAMPLED_HISTORY,
      { entity, project, name, specs },
      { run: where },
    );
    const rows = firstSpecRows(requireRun(data, "RunSampledHistory", where).sampledHistory);
    return rows.map((r) => decodeRow(r, "RunSampledHistory"));
  }
  const data = await transport.graphql(
    "RunFullHistory",
    RUN_FULL_HISTORY,
    { entity, project, name, samples: options.samples },
    { run: where },
  );
  const lines = requireRun(data, "RunFullHistory", where).history;
  return (Array.isArray(lines) ? lines : []).map((l) => decodeRow(l, "RunFullHistory"));
}

/** A run's system-metrics stream (the events W&B samples to at most `samples` rows). */
export async function systemEvents(
  transport: Transport,
  entity: string,
  project: string,
  name: string,
  samples = 500,
): Promise<EventRow[]> {
  const where = `${entity}/${project}/${name}`;
  const data = await transport.graphql(
    "RunFullHistory",
    RUN_EVENTS,
    { entity, project, name, samples },
    {
      run: where,
    },
  );
  const lines = requireRun(data, "RunFullHistory", where).events;
  return (Array.isArray(lines) ? lines : []).map((l) => decodeRow(l, "RunFullHistory"));
}
