/**
 * Wire shapes → the decoded types of types.ts. JSONString fields are parsed with the W&B-tolerant parser (NaN,
 * ±Infinity, exact big integers); history/events rows likewise; `_step` is normalised to an integer.
 */
import { isJsonObject, type JsonObject, type JsonValue, parseJsonStringField, parseWandbJson } from "../model/json.js";
import { lastStepOf, normaliseStep } from "../model/records.js";
import { NotFoundError, WandbError } from "./errors.js";
import type { HistoryRow, WandbFile, WandbProject, WandbRun, WandbSweep } from "./types.js";

/**
 * Parses W&B JSON text exactly: model/json.ts's parseWandbJson under the name this module has always exported (the
 * native JSON.parse whenever that is lossless, otherwise the tolerant parser: NaN/±Infinity, exact bigints).
 */
export const parseJsonText: (text: string) => JsonValue = parseWandbJson;

function str(v: JsonValue | undefined): string | null {
  return typeof v === "string" ? v : null;
}

function num(v: JsonValue | undefined): number | null {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "string" && /^-?\d+(\.\d+)?$/.test(v)) return Number(v);
  return null;
}

/** A JSONString field decoded (fast path when lossless); a string that does not parse is kept as the string. */
function jsonStringField(v: JsonValue | undefined): JsonValue {
  if (typeof v !== "string") return parseJsonStringField(v);
  try {
    return parseJsonText(v);
  } catch {
    return v;
  }
}

function objectField(v: JsonValue | undefined): JsonObject {
  const parsed = jsonStringField(v);
  return isJsonObject(parsed) ? parsed : {};
}

/** Config keys that belong only to rawConfig (as in the SDK). */
const RAW_ONLY_CONFIG_KEYS = new Set(["_wandb", "wandb_version"]);

/** Unwraps {"value": v, "desc": d} config entries; `_wandb` and `wandb_version` are left out. */
export function unwrapConfig(raw: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const k of Object.keys(raw)) {
    if (RAW_ONLY_CONFIG_KEYS.has(k)) continue;
    const v = raw[k]!;
    const value = isJsonObject(v) && "value" in v ? v.value! : v;
    if (k === "__proto__") Object.defineProperty(out, k, { value, enumerable: true, writable: true });
    else out[k] = value;
  }
  return out;
}

/** Decodes one run node (full run fields). */
export function decodeRun(node: JsonObject, entity: string, project: string): WandbRun {
  const rawConfig = objectField(node.config);
  const summary = objectField(node.summaryMetrics);
  const systemMetrics = objectField(node.systemMetrics);
  let historyKeys: JsonValue = node.historyKeys ?? null;
  if (typeof historyKeys === "string") historyKeys = jsonStringField(historyKeys);
  const raw: JsonObject = { ...node, config: rawConfig, summaryMetrics: summary, systemMetrics, historyKeys };
  const user = isJsonObject(node.user) ? { name: str(node.user.name), username: str(node.user.username) } : null;
  const name = str(node.name);
  if (name === null) {
    throw new WandbError({
      code: "PROTOCOL",
      operation: "decodeRun",
      run: `${entity}/${project}`,
      reason: "run node without a name",
    });
  }
  return {
    storageId: str(node.id) ?? "",
    name,
    displayName: str(node.displayName),
    entity,
    project,
    state: str(node.state),
    tags: Array.isArray(node.tags) ? node.tags.filter((t): t is string => typeof t === "string") : [],
    group: str(node.group),
    jobType: str(node.jobType),
    // The SDK's own test fixture once spelled it sweep_name; accept both.
    sweepName: str(node.sweepName) ?? str(node.sweep_name),
    commit: str(node.commit),
    readOnly: typeof node.readOnly === "boolean" ? node.readOnly : null,
    createdAt: str(node.createdAt) ?? "",
    heartbeatAt: str(node.heartbeatAt),
    description: str(node.description),
    notes: str(node.notes),
    user,
    config: unwrapConfig(rawConfig),
    rawConfig,
    summary,
    systemMetrics,
    historyKeys,
    lastHistoryStep: lastStepOf(historyKeys),
    historyLineCount: num(node.historyLineCount),
    raw,
  };
}

/** Parses one history/events row (a W&B JSON string, or already an object) and normalises `_step`. */
export function decodeRow(line: JsonValue, operation: string): HistoryRow {
  let row: JsonValue;
  if (typeof line === "string") {
    try {
      row = parseJsonText(line);
    } catch (e) {
      throw new WandbError({
        code: "PROTOCOL",
        operation,
        reason: `history row is not valid JSON (${(e as Error).message})`,
        cause: e,
      });
    }
  } else row = line;
  if (!isJsonObject(row)) {
    throw new WandbError({ code: "PROTOCOL", operation, reason: "history row is not a JSON object" });
  }
  if ("_step" in row) {
    const s = normaliseStep(row._step);
    if (s !== null) row._step = s;
  }
  return row;
}

/** The step of a decoded row, or null. */
export function stepOf(row: HistoryRow): number | null {
  const s = row._step;
  return typeof s === "number" && Number.isFinite(s) ? s : normaliseStep(s);
}

export function decodeFile(node: JsonObject): WandbFile {
  return {
    id: str(node.id) ?? "",
    name: str(node.name) ?? "",
    url: str(node.url),
    directUrl: str(node.directUrl),
    sizeBytes: num(node.sizeBytes) ?? 0,
    mimetype: str(node.mimetype),
    updatedAt: str(node.updatedAt),
    md5: str(node.md5),
  };
}

/** Decodes one `models` edge node; null when it has no name. `entity` is used when the node has no entityName. */
export function decodeProject(node: JsonObject, entity: string): WandbProject | null {
  const name = str(node.name);
  if (name === null || name === "") return null;
  return {
    name,
    entity: str(node.entityName) ?? entity,
    storageId: str(node.id) ?? "",
    createdAt: str(node.createdAt),
  };
}

/** Decodes a sweep node; `sweepName` (the name asked for) is used when the node has no name. */
export function decodeSweep(node: JsonObject, sweepName: string): WandbSweep {
  const config = jsonStringField(node.config);
  return {
    name: str(node.name) ?? sweepName,
    storageId: str(node.id) ?? "",
    displayName: str(node.displayName),
    method: str(node.method),
    state: str(node.state),
    description: str(node.description),
    bestLoss: num(node.bestLoss),
    config,
    createdAt: str(node.createdAt),
    updatedAt: str(node.updatedAt),
    runCount: num(node.runCount),
    runCountExpected: num(node.runCountExpected),
    raw: { ...node, config },
  };
}

/** Key → W&B type names from historyKeys.keys[k].typeCounts (e.g. {"loss": ["number"]}). */
export function keyTypes(historyKeys: JsonValue): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  if (!isJsonObject(historyKeys) || !isJsonObject(historyKeys.keys)) return out;
  for (const [k, info] of Object.entries(historyKeys.keys)) {
    if (!isJsonObject(info) || !Array.isArray(info.typeCounts)) continue;
    const types = new Set<string>();
    for (const tc of info.typeCounts) if (isJsonObject(tc) && typeof tc.type === "string") types.add(tc.type);
    out.set(k, types);
  }
  return out;
}

const NON_FINITE: Record<string, number> = {
  NaN: Number.NaN,
  Infinity: Number.POSITIVE_INFINITY,
  "-Infinity": Number.NEGATIVE_INFINITY,
};

/**
 * Real-JSON rows (sampledHistory, liveData) cannot hold NaN/±Infinity, so servers send them as the strings "NaN",
 * "Infinity", "-Infinity". Where historyKeys says a key only ever holds numbers, turn those strings back into numbers.
 */
export function restoreNonFinite(row: HistoryRow, types: Map<string, Set<string>>): HistoryRow {
  if (types.size === 0) return row;
  for (const k of Object.keys(row)) {
    const v = row[k];
    if (typeof v !== "string" || !Object.hasOwn(NON_FINITE, v)) continue;
    const t = types.get(k);
    if (t && t.size > 0 && [...t].every((x) => x === "number")) row[k] = NON_FINITE[v]!;
  }
  return row;
}

/** `data.project`, or NotFoundError when W&B answered null (unknown project, or not visible with this key). */
export function requireProject(data: JsonObject, operation: string, where: string): JsonObject {
  const p = data.project;
  if (!isJsonObject(p)) {
    throw new NotFoundError({
      operation,
      run: where,
      reason: `project ${where.split("/").slice(0, 2).join("/")} not found (or not visible with this API key)`,
    });
  }
  return p;
}

/** `data.project.run`, or NotFoundError when the project or the run is null. */
export function requireRun(data: JsonObject, operation: string, where: string): JsonObject {
  const run = requireProject(data, operation, where).run;
  if (!isJsonObject(run)) throw new NotFoundError({ operation, run: where, reason: `run ${where} not found` });
  return run;
}
