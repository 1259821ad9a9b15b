/**
 * The executable GraphQL schema of fake-wandb: the SDL of schema.ts plus resolvers backed by a FakeStore.
 * Encodings follow W&B: config/summaryMetrics/systemMetrics and history/events rows are JSON strings; historyKeys,
 * sampledHistory and liveData are real JSON; connections are offset based with base64("arrayconnection:<i>")
 * cursors. The schema is built once per process and shared by every server (resolvers read the store from the
 * per-request context).
 *
 * Over 400 lines on purpose: the resolver map is one object with an entry per type of schema.ts's SDL, read against
 * it; the small helpers above it (cursors, paging, literals) serve only these resolvers.
 */
import {
  buildSchema,
  GraphQLError,
  type GraphQLFieldResolver,
  type GraphQLObjectType,
  GraphQLScalarType,
  type GraphQLSchema,
  Kind,
  type ValueNode,
} from "graphql";
import type { FakeFile, FakeRun, FakeStore, FObject } from "./model.js";
import { SCHEMA_SDL } from "./schema.js";
import { sanitizeJsonValue, stringifyWire } from "./wire-json.js";

/** A resolver failure that the server answers with this HTTP status and {"errors":[{"message"}]}. */
export class HttpStatusError extends Error {
  override name = "HttpStatusError";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ResolverContext {
  store: FakeStore;
  /** Base URL of the API host, e.g. http://127.0.0.1:1234 (run-file `url`s live under it). */
  baseUrl: string;
  /** Turns a storage path (decoded, starting with "/") into a signed storage-host URL. */
  signUrl: (path: string) => string;
  /** Per-request memo of store.query results (runCount and runs share one query). */
  memo: Map<string, FakeRun[]>;
  /**
   * Largest `history(samples:)` honoured: a larger one is silently lowered to it (so a window wider than the cap is
   * randomly down-sampled), as a server with an undocumented cap would do. Infinity: no cap.
   */
  historySamplesCap: number;
  /** Run filters are ignored (every run matches), as a server that does not support them would answer. */
  ignoreRunFilters?: boolean;
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers shared with the server.

const CURSOR_PREFIX = "arrayconnection:";

export function encodeCursor(index: number): string {
  return Buffer.from(CURSOR_PREFIX + index, "utf8").toString("base64");
}

export function decodeCursor(cursor: string): number {
  const text = Buffer.from(cursor, "base64").toString("utf8");
  const n = text.startsWith(CURSOR_PREFIX) ? Number(text.slice(CURSOR_PREFIX.length)) : Number.NaN;
  if (!Number.isInteger(n) || n < -1) throw new GraphQLError(`invalid cursor: ${cursor}`);
  return n;
}

/** Path of a run file below the entity/project/run prefix, each segment percent-encoded, slashes kept. A name
 * with a "." or ".." segment (edge profile: "../../escape.txt") becomes one segment with its slashes encoded:
 * clients and URL parsers resolve dot segments away, even percent-encoded ones (WHATWG URL), so the URL could
 * never reach the file. */
export function encodePath(path: string): string {
  const segments = path.split("/");
  if (segments.some((s) => s === "." || s === "..")) return encodeURIComponent(path);
  return segments.map(encodeURIComponent).join("/");
}

export function runFilePath(store: FakeStore, run: string, name: string): string {
  return `/files/${encodeURIComponent(store.entity)}/${encodeURIComponent(store.project)}/${encodeURIComponent(run)}/${encodePath(name)}`;
}

export function parquetPath(store: FakeStore, run: string, exportId: string): string {
  return `/parquet/${encodeURIComponent(store.entity)}/${encodeURIComponent(store.project)}/${encodeURIComponent(run)}/${encodeURIComponent(exportId)}.parquet`;
}

/** MySQL LIKE: % any run of characters, _ one character, backslash escapes. Case sensitive (binary collation). */
export function likeToRegExp(pattern: string): RegExp {
  let re = "^";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === "\\" && i + 1 < pattern.length) {
      re += escapeRegExp(pattern[++i] as string);
    } else if (c === "%") re += "[\\s\\S]*";
    else if (c === "_") re += "[\\s\\S]";
    else re += escapeRegExp(c);
  }
  return new RegExp(`${re}$`, "u");
}

function escapeRegExp(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

function isNamedError(e: unknown, name: string): e is Error {
  if (!(e instanceof Error)) return false;
  return e.name === name || e.constructor?.name === name;
}

function b64(s: string): string {
  return Buffer.from(s, "utf8").toString("base64");
}

// ---------------------------------------------------------------------------------------------------------------
// Pagination (graphql-relay's arrayconnection semantics, with hasNextPage false on an empty page).

interface PageArgs {
  after?: string | null;
  before?: string | null;
  first?: number | null;
  last?: number | null;
}

export interface Connection<T> {
  totalCount: number;
  edges: { node: T; cursor: string }[];
  pageInfo: { startCursor: string | null; endCursor: string | null; hasNextPage: boolean; hasPreviousPage: boolean };
}

export function paginate<T>(items: readonly T[], args: PageArgs, defaultFirst = 50): Connection<T> {
  const lower = args.after != null ? decodeCursor(args.after) + 1 : 0;
  const upper = args.before != null ? Math.min(items.length, decodeCursor(args.before)) : items.length;
  let first = args.first ?? null;
  const last = args.last ?? null;
  if (first === null && last === null) first = defaultFirst;
  if ((first !== null && first < 0) || (last !== null && last < 0)) {
    throw new GraphQLError("first and last must not be negative");
  }
  let start = lower;
  let end = upper;
  if (first !== null) end = Math.min(end, start + first);
  if (last !== null) start = Math.max(start, end - last);
  const edges: { node: T; cursor: string }[] = [];
  for (let i = start; i < end; i++) edges.push({ node: items[i] as T, cursor: encodeCursor(i) });
  const empty = edges.length === 0;
  return {
    totalCount: items.length,
    edges,
    pageInfo: {
      startCursor: empty ? null : (edges[0] as { cursor: string }).cursor,
      endCursor: empty ? null : (edges[edges.length - 1] as { cursor: string }).cursor,
      hasNextPage: !empty && first !== null && end < upper,
      hasPreviousPage: !empty && last !== null && start > lower,
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Scalars.

function literalToJs(node: ValueNode, variables?: Record<string, unknown> | null): unknown {
  switch (node.kind) {
    case Kind.NULL:
      return null;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(node.value);
    case Kind.STRING:
    case Kind.ENUM:
      return node.value;
    case Kind.BOOLEAN:
      return node.value;
    case Kind.LIST:
      return node.values.map((v) => literalToJs(v, variables));
    case Kind.OBJECT: {
      const o: Record<string, unknown> = {};
      for (const f of node.fields) o[f.name.value] = literalToJs(f.value, variables);
      return o;
    }
    case Kind.VARIABLE:
      return variables?.[node.name.value];
  }
}

const JSONScalar = new GraphQLScalarType({
  name: "JSON",
  serialize: sanitizeJsonValue,
  parseValue: (v) => v,
  parseLiteral: (node, variables) => literalToJs(node, variables),
});

const JSONStringScalar = new GraphQLScalarType({
  name: "JSONString",
  serialize: (v) => (typeof v === "string" ? v : stringifyWire(v)),
  // The SDK sends strings; an object is tolerated and re-encoded.
  parseValue: (v) => (typeof v === "string" ? v : stringifyWire(v)),
  parseLiteral: (node) => {
    if (node.kind === Kind.STRING) return node.value;
    throw new GraphQLError("JSONString must be a string");
  },
});

function toInt64(v: unknown): number | bigint {
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v;
  if (typeof v === "string" && /^-?\d+$/.test(v.trim())) {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : BigInt(v.trim());
  }
  if (typeof v === "number" && Number.isFinite(v)) return Math.trunc(v);
  throw new GraphQLError(`Int64 cannot represent ${String(v)}`);
}

const Int64Scalar = new GraphQLScalarType({
  name: "Int64",
  serialize: toInt64,
  parseValue: toInt64,
  parseLiteral: (node) => {
    if (node.kind === Kind.INT || node.kind === Kind.STRING) return toInt64(node.value);
    throw new GraphQLError("Int64 must be an integer");
  },
});

const DateTimeScalar = new GraphQLScalarType({
  name: "DateTime",
  serialize: (v) => (v instanceof Date ? v.toISOString().slice(0, 19) : v),
  parseValue: (v) => v,
  parseLiteral: (node) => (node.kind === Kind.STRING ? node.value : null),
});

// ---------------------------------------------------------------------------------------------------------------
// Resolvers.

type Resolver = GraphQLFieldResolver<unknown, ResolverContext, Record<string, unknown>>;
type ResolverMap = Record<string, Record<string, Resolver>>;

/** The single project a store holds; resolvers read it from the context. */
const PROJECT = Object.freeze({ kind: "project" });

interface UserSource {
  id?: string;
  name: string;
  username: string;
  email: string;
  entity?: string;
  teams?: string[];
}

interface FileSource {
  run: FakeRun;
  file: FakeFile;
}

interface SweepSource {
  name: string;
  runs: FakeRun[];
}

function queryRuns(ctx: ResolverContext, filtersArg: unknown, orderArg: unknown): FakeRun[] {
  const filtersText = typeof filtersArg === "string" ? filtersArg : null;
  const order = typeof orderArg === "string" && orderArg !== "" ? orderArg : null;
  const key = `${filtersText ?? ""}\u0000${order ?? ""}`;
  const hit = ctx.memo.get(key);
  if (hit) return hit;
  let filters: FObject | null = null;
  if (filtersText !== null && filtersText.trim() !== "") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(filtersText);
    } catch (e) {
      throw new HttpStatusError(400, `invalid filters: ${(e as Error).message}`);
    }
    if (parsed !== null && (typeof parsed !== "object" || Array.isArray(parsed))) {
      throw new HttpStatusError(400, "invalid filters: must be a JSON object");
    }
    filters = parsed as FObject | null;
  }
  let runs: FakeRun[];
  try {
    runs = ctx.store.query(ctx.ignoreRunFilters ? null : filters, order);
  } catch (e) {
    if (isNamedError(e, "FilterError")) throw new HttpStatusError(400, e.message);
    throw e;
  }
  ctx.memo.set(key, runs);
  return runs;
}

function findSweep(ctx: ResolverContext, name: string): SweepSource | null {
  const runs = ctx.store.runs().filter((r) => r.sweepName === name);
  return runs.length > 0 ? { name, runs } : null;
}

function viewerSource(store: FakeStore): UserSource {
  const v = store.viewer;
  const teams = [v.entity];
  if (store.entity !== v.entity) teams.push(store.entity);
  return { id: v.id, name: v.name, username: v.username, email: v.email, entity: v.entity, teams };
}

function sampleEvenly<T>(items: T[], samples: number): T[] {
  if (samples <= 0) return [];
  if (items.length <= samples) return items;
  const out: T[] = [];
  for (let i = 0; i < samples; i++) out.push(items[Math.floor((i * items.length) / samples)] as T);
  return out;
}

function num(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  if (typeof v === "bigint") return Number(v);
  return v as number;
}

const resolvers: ResolverMap = {
  Query: {
    viewer: (_s, _a, ctx) => viewerSource(ctx.store),
    project: (_s, args, ctx) => {
      const entity = (args.entityName as string | null | undefined) ?? ctx.store.viewer.entity;
      return args.name === ctx.store.project && entity === ctx.store.entity ? PROJECT : null;
    },
    serverInfo: () => ({ cliVersionInfo: {}, latestLocalVersionInfo: null, features: [] }),
    models: (_s, args, ctx) => {
      const entity = (args.entityName as string | null | undefined) ?? ctx.store.viewer.entity;
      return paginate(entity === ctx.store.entity ? [PROJECT] : [], args as PageArgs);
    },
  },
  User: {
    id: (u) => (u as UserSource).id ?? b64(`User:${(u as UserSource).username}`),
    entity: (u) => (u as UserSource).entity ?? (u as UserSource).username,
    admin: () => false,
    flags: () => "{}",
    deletedAt: () => null,
    photoUrl: () => null,
    apiKeys: () => ({ edges: [] }),
    teams: (u) => ({
      edges: ((u as UserSource).teams ?? []).map((name, i) => ({
        node: { id: b64(`Entity:${name}`), name },
        cursor: encodeCursor(i),
      })),
    }),
  },
  Project: {
    id: (_s, _a, ctx) => b64(`Project:${ctx.store.internalId}`),
    internalId: (_s, _a, ctx) => ctx.store.internalId,
    name: (_s, _a, ctx) => ctx.store.project,
    entityName: (_s, _a, ctx) => ctx.store.entity,
    description: () => null,
    createdAt: (_s, _a, ctx) => ctx.store.runs()[0]?.createdAt ?? "2025-01-01T00:00:00",
    isBenchmark: () => false,
    readOnly: () => false,
    user: (_s, _a, ctx) => viewerSource(ctx.store),
    runCount: (_s, args, ctx) => queryRuns(ctx, args.filters, null).length,
    runs: (_s, args, ctx) => paginate(queryRuns(ctx, args.filters, args.order), args as PageArgs),
    run: (_s, args, ctx) => ctx.store.run(args.name as string) ?? null,
    sweep: (_s, args, ctx) => findSweep(ctx, args.sweepName as string),
  },
  Run: {
    id: (r) => (r as FakeRun).storageId,
    projectId: (_r, _a, ctx) => ctx.store.projectId,
    sweep: (r, _a, ctx) => {
      const name = (r as FakeRun).sweepName;
      return name ? findSweep(ctx, name) : null;
    },
    host: () => null,
    updatedAt: (r) => (r as FakeRun).heartbeatAt,
    project: () => PROJECT,
    config: (r, _a, ctx) => ctx.store.wireConfig(r as FakeRun),
    summaryMetrics: (r, _a, ctx) => ctx.store.wireSummary(r as FakeRun),
    systemMetrics: (r, _a, ctx) => ctx.store.wireSystemMetrics(r as FakeRun),
    historyKeys: (r, _a, ctx) => ctx.store.historyKeys(r as FakeRun),
    eventsLineCount: (r, _a, ctx) => ctx.store.events(r as FakeRun).length,
    logLineCount: () => 0,
    fileCount: (r, _a, ctx) => ctx.store.files(r as FakeRun).length,
    history: (r, args, ctx) => {
      const run = r as FakeRun;
      const store = ctx.store;
      const samples = Math.min((args.samples as number | null | undefined) ?? 500, ctx.historySamplesCap);
      if (samples <= 0 || run.firstStep < 0) return [];
      const minStep = num(args.minStep);
      const maxStep = num(args.maxStep);
      const lo = Math.max(minStep ?? run.firstStep, run.firstStep);
      const hi = Math.min(maxStep ?? run.lastStep + 1, run.lastStep + 1);
      if (hi <= lo) return [];
      const rows =
        hi - lo <= samples
          ? store.historyRows(run, lo, hi)
          : store.sampleHistory(run, samples, minStep ?? undefined, maxStep ?? undefined);
      return rows.map((row) => store.encodeHistoryLine(row));
    },
    events: (r, args, ctx) => {
      const samples = (args.samples as number | null | undefined) ?? 500;
      return sampleEvenly(ctx.store.events(r as FakeRun), samples).map((row) => ctx.store.encodeHistoryLine(row));
    },
    sampledHistory: (r, args, ctx) => {
      const specs = args.specs as string[];
      return specs.map((text) => {
        let spec: unknown;
        try {
          spec = JSON.parse(text);
        } catch (e) {
          throw new GraphQLError(`invalid sampledHistory spec: ${(e as Error).message}`);
        }
        const s = spec as { keys?: unknown; samples?: unknown; minStep?: unknown; maxStep?: unknown };
        if (!s || typeof s !== "object" || !Array.isArray(s.keys) || !s.keys.every((k) => typeof k === "string")) {
          throw new GraphQLError("invalid sampledHistory spec: keys must be a list of strings");
        }
        const numberOr = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);
        return ctx.store.sampledHistory(r as FakeRun, {
          keys: s.keys as string[],
          samples: numberOr(s.samples),
          minStep: numberOr(s.minStep),
          maxStep: numberOr(s.maxStep),
        });
      });
    },
    parquetHistory: async (r, args, ctx) => {
      const run = r as FakeRun;
      const exports = await ctx.store.parquetExports(run);
      return {
        parquetUrls: exports.map((e) => ctx.signUrl(parquetPath(ctx.store, run.name, e.id))),
        liveData: ctx.store.liveData(run, args.liveKeys as string[]),
      };
    },
    files: (r, args, ctx) => {
      const run = r as FakeRun;
      const names = ((args.names as (string | null)[] | null | undefined) ?? []).filter(
        (n): n is string => typeof n === "string",
      );
      const pattern = (args.pattern as string | null | undefined) ?? null;
      if (names.length > 0 && pattern !== null) {
        throw new GraphQLError("cannot specify both names and pattern");
      }
      let files = ctx.store.files(run);
      if (names.length > 0) {
        const wanted = new Set(names);
        files = files.filter((f) => wanted.has(f.name));
      } else if (pattern !== null) {
        const re = likeToRegExp(pattern);
        files = files.filter((f) => re.test(f.name));
      }
      return paginate(
        files.map((file): FileSource => ({ run, file })),
        args as PageArgs,
      );
    },
  },
  Sweep: {
    id: (s) => b64(`Sweep:${(s as SweepSource).name}`),
    name: (s) => (s as SweepSource).name,
    displayName: (s) => (s as SweepSource).name,
    method: () => "random",
    state: (s) => ((s as SweepSource).runs.some((r) => r.state === "running") ? "RUNNING" : "FINISHED"),
    description: () => null,
    bestLoss: () => null,
    config: (s) =>
      `{"method": "random", "metric": {"goal": "minimize", "name": "loss"}, "name": ${JSON.stringify((s as SweepSource).name)}, "parameters": {}}`,
    createdAt: (s) => (s as SweepSource).runs[0]?.createdAt ?? null,
    updatedAt: (s) => (s as SweepSource).runs[(s as SweepSource).runs.length - 1]?.heartbeatAt ?? null,
    runCount: (s) => (s as SweepSource).runs.length,
    runCountExpected: () => null,
  },
  File: {
    id: (f) => b64(`File:${(f as FileSource).run.name}:${(f as FileSource).file.name}`),
    name: (f) => (f as FileSource).file.name,
    url: (f, _a, ctx) => ctx.baseUrl + runFilePath(ctx.store, (f as FileSource).run.name, (f as FileSource).file.name),
    directUrl: (f, _a, ctx) =>
      ctx.signUrl(runFilePath(ctx.store, (f as FileSource).run.name, (f as FileSource).file.name)),
    sizeBytes: (f) => (f as FileSource).file.sizeBytes,
    mimetype: (f) => (f as FileSource).file.mimetype,
    updatedAt: (f) => (f as FileSource).file.updatedAt,
    md5: (f) => (f as FileSource).file.md5,
  },
};

let cachedSchema: GraphQLSchema | undefined;

/** The executable schema (built once per process). */
export function fakeSchema(): GraphQLSchema {
  if (cachedSchema) return cachedSchema;
  const schema = buildSchema(SCHEMA_SDL);
  const scalars: Record<string, GraphQLScalarType> = {
    JSON: JSONScalar,
    JSONString: JSONStringScalar,
    Int64: Int64Scalar,
    DateTime: DateTimeScalar,
  };
  for (const [name, impl] of Object.entries(scalars)) {
    const t = schema.getType(name) as GraphQLScalarType;
    t.serialize = impl.serialize;
    t.parseValue = impl.parseValue;
    t.parseLiteral = impl.parseLiteral;
  }
  for (const [typeName, fields] of Object.entries(resolvers)) {
    const type = schema.getType(typeName) as GraphQLObjectType | undefined;
    if (!type) throw new Error(`schema has no type ${typeName}`);
    const defs = type.getFields();
    for (const [fieldName, resolve] of Object.entries(fields)) {
      const def = defs[fieldName];
      if (!def) throw new Error(`schema has no field ${typeName}.${fieldName}`);
      def.resolve = resolve;
    }
  }
  cachedSchema = schema;
  return schema;
}
