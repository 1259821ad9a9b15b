/**
 * The HTTP half of fake-wandb: the API host (POST /graphql, authenticated GET /files/..., and the /_fake/* control
 * endpoints) and a second "storage host" on another port that serves signed file and parquet-export URLs without
 * auth, as Google Cloud Storage does for the real W&B.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { open } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { gunzipSync } from "node:zlib";
import {
  type DocumentNode,
  execute,
  type GraphQLError,
  Kind,
  type OperationDefinitionNode,
  parse,
  validate,
} from "graphql";
import { DEFAULT_FAULTS, FaultDice, type FaultKind, type FaultSettings, mergeFaults, RateLimiter } from "./faults.js";
import type { FakeRun, FakeStore, MutateOp } from "./model.js";
import { fakeSchema, HttpStatusError, type ResolverContext } from "./resolvers.js";
import { analyzeShapes, MAX_RUNS_FIRST, maxRunsFirst, type ShapeInfo } from "./shapes.js";
import { stringifyWire, toWireText } from "./wire-json.js";

export interface FakeServerOptions {
  host?: string;
  port?: number;
  seed?: number;
  apiKey: string;
  redirectFiles?: boolean;
  sdkShapesOnly?: boolean;
  /** Largest history(samples:) honoured (larger ones silently down-sample); default: none, or 1000 with sdkShapesOnly. */
  historySamplesCap?: number;
  /** Ignore run filters (every run matches): a server that does not support them. */
  ignoreRunFilters?: boolean;
  faults?: Partial<FaultSettings>;
}

export interface AuthLeak {
  path: string;
  at: string;
}

export interface FakeStats {
  total: number;
  graphql: number;
  byOperation: Record<string, number>;
  storage: number;
  files: number;
  parquet: number;
  bytesOut: number;
  faults: Record<string, number>;
  rateLimited: number;
  authLeaks: AuthLeak[];
  byStatus: Record<string, number>;
}

export interface FakeServer {
  url: string;
  storageUrl: string;
  stats(): FakeStats;
  resetStats(): void;
  setFaults(f: Partial<FaultSettings>): void;
  faults(): FaultSettings;
  close(): Promise<void>;
}

interface Reply {
  status: number;
  headers: Record<string, string | number>;
  body: Buffer;
}

interface CachedDocument {
  document: DocumentNode | null;
  /** Syntax or validation errors: answered with HTTP 400. */
  errors: readonly GraphQLError[];
  shapes: ShapeInfo | null;
}

const JSON_TYPE = "application/json";
const MAX_BODY = 64 * 1024 * 1024;
const DOC_CACHE_SIZE = 512;

function emptyStats(): FakeStats {
  return {
    total: 0,
    graphql: 0,
    byOperation: {},
    storage: 0,
    files: 0,
    parquet: 0,
    bytesOut: 0,
    faults: {},
    rateLimited: 0,
    authLeaks: [],
    byStatus: {},
  };
}

function jsonReply(status: number, value: unknown, headers: Record<string, string | number> = {}): Reply {
  return {
    status,
    headers: { "Content-Type": JSON_TYPE, ...headers },
    body: Buffer.from(typeof value === "string" ? value : toWireText(value), "utf8"),
  };
}

function errorsReply(status: number, message: string, headers: Record<string, string | number> = {}): Reply {
  return jsonReply(status, { errors: [{ message }] }, headers);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new HttpStatusError(413, "request body too large"));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      try {
        resolve(req.headers["content-encoding"] === "gzip" ? gunzipSync(body) : body);
      } catch {
        reject(new HttpStatusError(400, "request body is not valid gzip"));
      }
    });
    req.on("error", reject);
  });
}

/** Decodes each /-separated segment (a malformed escape leaves the segment as is). */
function decodeSegments(path: string): string[] {
  return path.split("/").map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
}

interface RangeSpec {
  start: number;
  end: number; // inclusive
}

/** Parses a single-range `bytes=` header; null = serve the whole body, "unsatisfiable" = 416. */
function parseRange(header: string | undefined, size: number): RangeSpec | null | "unsatisfiable" {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return null; // multi-range or malformed: ignore, as RFC 9110 allows
  const [, a, b] = m;
  if (a === "" && b === "") return null;
  if (a === "") {
    const n = Number(b);
    if (n === 0) return "unsatisfiable";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  if (start >= size) return "unsatisfiable";
  const end = b === "" ? size - 1 : Math.min(Number(b), size - 1);
  if (end < start) return null;
  return { start, end };
}

/**
 * The raw path and the query of a request target. Unlike `new URL()`, dot segments (also %2E%2E) stay as sent,
 * so a lookup sees exactly the path the client put on the wire.
 */
function splitTarget(target: string | undefined): { path: string; query: URLSearchParams } {
  const t = target ?? "/";
  const q = t.indexOf("?");
  if (q < 0) return { path: t, query: new URLSearchParams() };
  return { path: t.slice(0, q), query: new URLSearchParams(t.slice(q + 1)) };
}

function basicKey(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Basic\s+(\S+)\s*$/i.exec(header);
  if (!m) return null;
  const text = Buffer.from(m[1] as string, "base64").toString("utf8");
  const i = text.indexOf(":");
  return i < 0 ? null : text.slice(i + 1);
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function startFakeServer(store: FakeStore, options: FakeServerOptions): Promise<FakeServer> {
  const host = options.host ?? "127.0.0.1";
  const seed = options.seed ?? 1;
  const apiKey = options.apiKey;
  const redirectFiles = options.redirectFiles ?? true;
  const sdkShapesOnly = options.sdkShapesOnly ?? false;
  const historySamplesCap = options.historySamplesCap ?? (sdkShapesOnly ? 1000 : Number.POSITIVE_INFINITY);
  let settings: FaultSettings = mergeFaults(DEFAULT_FAULTS, { ...(options.faults ?? {}) });
  let stats = emptyStats();
  const dice = new FaultDice(seed);
  const limiter = new RateLimiter();
  const secret = createHmac("sha256", `fake-wandb:${seed}`).update(apiKey).digest();
  const timers = new Set<NodeJS.Timeout>();
  const docCache = new Map<string, CachedDocument>();
  const schema = fakeSchema();
  let closed = false;

  // Idle keep-alive connections live long (as behind Google's front end), so pooled client sockets stay valid.
  const serverOptions = { keepAliveTimeout: 120_000, headersTimeout: 130_000 };
  const apiServer = createServer(serverOptions, (req, res) => {
    handleApi(req, res).catch((e) => internalError(res, e));
  });
  const storageServer = createServer(serverOptions, (req, res) => {
    handleStorage(req, res).catch((e) => internalError(res, e));
  });
  await Promise.all([listen(apiServer, options.port ?? 0), listen(storageServer, 0)]);
  const urlHost = host.includes(":") ? `[${host}]` : host;
  const baseUrl = `http://${urlHost}:${(apiServer.address() as AddressInfo).port}`;
  const storageUrl = `http://${urlHost}:${(storageServer.address() as AddressInfo).port}`;

  function listen(server: Server, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Signing and sending.

  function signature(decodedPath: string): string {
    return createHmac("sha256", secret).update(decodedPath).digest("hex").slice(0, 40);
  }

  /** A signed storage URL for an encoded path such as /files/e/p/r/a%20b.txt. */
  function signUrl(path: string): string {
    return `${storageUrl}${path}?token=${signature(decodeSegments(path).join("/"))}`;
  }

  function later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  }

  function sleep(ms: number): Promise<void> {
    return ms > 0 ? new Promise((resolve) => later(ms, resolve)) : Promise.resolve();
  }

  function countStatus(status: number | string): void {
    const k = String(status);
    stats.byStatus[k] = (stats.byStatus[k] ?? 0) + 1;
  }

  function countFault(kind: FaultKind): void {
    stats.faults[kind] = (stats.faults[kind] ?? 0) + 1;
  }

  /** Writes a reply after the modelled latency; `fault` may be "truncated" (half the body, then a reset). */
  async function send(
    req: IncomingMessage,
    res: ServerResponse,
    reply: Reply,
    opts: { costed: boolean; truncate?: boolean },
  ): Promise<void> {
    if (opts.costed) {
      await sleep(settings.latencyMs + (settings.latencyPerKbMs * reply.body.length) / 1024);
    }
    if (closed || res.destroyed) return;
    const headOnly = req.method === "HEAD";
    res.writeHead(reply.status, { "Content-Length": reply.body.length, ...reply.headers });
    countStatus(reply.status);
    if (headOnly) {
      res.end();
      return;
    }
    if (opts.truncate && reply.body.length >= 2) {
      const half = reply.body.subarray(0, Math.floor(reply.body.length / 2));
      stats.bytesOut += half.length;
      res.write(half, () => res.socket?.destroy());
      return;
    }
    if (opts.truncate) {
      res.socket?.destroy();
      return;
    }
    stats.bytesOut += reply.body.length;
    res.end(reply.body);
  }

  /** The reply for a fault that replaces the response; null for faults that act on the socket or the body. */
  function faultReply(kind: FaultKind): Reply | null {
    switch (kind) {
      case "500":
        return jsonReply(500, { error: "internal database error" });
      case "502":
        return {
          status: 502,
          headers: { "Content-Type": "text/html; charset=UTF-8" },
          body: Buffer.from(
            "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n",
          ),
        };
      case "503":
        return {
          status: 503,
          headers: { "Content-Type": "text/html; charset=UTF-8", "Retry-After": "1" },
          body: Buffer.from(
            "<html><head><title>503 Service Unavailable</title></head><body><h1>Service Unavailable</h1></body></html>\n",
          ),
        };
      case "429":
        return jsonReply(
          429,
          { error: "rate limit exceeded" },
          {
            "Retry-After": "1",
            "RateLimit-Limit": String(Math.max(1, Math.floor(settings.rateLimit)) || 1000),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": "1",
          },
        );
      case "graphql":
        return jsonReply(200, {
          errors: [{ message: "An internal error occurred. Please contact support." }],
          data: null,
        });
      default:
        return null;
    }
  }

  /**
   * Applies a drawn fault. Returns true when the request is finished (a fault reply, a reset or a stall); false
   * for "truncated", which the caller applies to the real reply.
   */
  async function applyFault(req: IncomingMessage, res: ServerResponse, kind: FaultKind): Promise<boolean> {
    countFault(kind);
    if (kind === "truncated") return false;
    if (kind === "reset") {
      countStatus("reset");
      req.socket.destroy();
      return true;
    }
    if (kind === "stall") {
      countStatus("stall");
      const socket: Socket = req.socket;
      let t: NodeJS.Timeout | undefined;
      const stop = () => {
        if (t) {
          clearTimeout(t);
          timers.delete(t);
        }
      };
      t = setTimeout(() => {
        timers.delete(t as NodeJS.Timeout);
        socket.destroy();
      }, settings.stallMs);
      timers.add(t);
      socket.once("close", stop);
      return true;
    }
    const reply = faultReply(kind);
    if (reply) await send(req, res, reply, { costed: true });
    return true;
  }

  function internalError(res: ServerResponse, e: unknown): void {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    if (e instanceof HttpStatusError) {
      const body = Buffer.from(stringifyWire({ errors: [{ message: e.message }] }));
      res.writeHead(e.status, { "Content-Type": JSON_TYPE, "Content-Length": body.length });
      res.end(body);
      countStatus(e.status);
      return;
    }
    const body = Buffer.from(stringifyWire({ errors: [{ message: `fake-wandb: ${(e as Error)?.message ?? e}` }] }));
    res.writeHead(500, { "Content-Type": JSON_TYPE, "Content-Length": body.length });
    res.end(body);
    countStatus(500);
  }

  // -------------------------------------------------------------------------------------------------------------
  // API host.

  function authorized(req: IncomingMessage): boolean {
    const key = basicKey(req.headers.authorization);
    return key !== null && safeEqual(key, apiKey);
  }

  const UNAUTHORIZED = (): Reply => errorsReply(401, "user is not logged in");

  async function handleApi(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = splitTarget(req.url);
    const path = url.path;
    if (path.startsWith("/_fake/")) return handleControl(req, res, url);
    stats.total++;
    if (path === "/graphql") return handleGraphql(req, res);
    if (path.startsWith("/files/")) return handleApiFile(req, res, path);
    await readBody(req).catch(() => undefined);
    await send(req, res, errorsReply(404, "not found"), { costed: false });
  }

  /** Rate limit, auth and fault dice, in that order. Returns the rate-limit headers, or null when answered. */
  async function gate(
    req: IncomingMessage,
    res: ServerResponse,
    allowed: (k: FaultKind) => boolean,
  ): Promise<{ headers: Record<string, string>; truncate: boolean } | null> {
    const rate = limiter.check(settings.rateLimit);
    if (rate.limited) {
      stats.rateLimited++;
      await send(req, res, jsonReply(429, { error: "rate limit exceeded" }, rate.headers), { costed: true });
      return null;
    }
    if (!authorized(req)) {
      await send(req, res, UNAUTHORIZED(), { costed: true });
      return null;
    }
    const kind = dice.draw(settings, allowed);
    if (kind && (await applyFault(req, res, kind))) return null;
    return { headers: rate.headers, truncate: kind === "truncated" };
  }

  function lookupDocument(query: string): CachedDocument {
    const hit = docCache.get(query);
    if (hit) {
      docCache.delete(query);
      docCache.set(query, hit);
      return hit;
    }
    let entry: CachedDocument;
    try {
      const document = parse(query);
      const errors = validate(schema, document);
      entry = { document, errors, shapes: errors.length === 0 ? analyzeShapes(document) : null };
    } catch (e) {
      entry = { document: null, errors: [e as GraphQLError], shapes: null };
    }
    docCache.set(query, entry);
    if (docCache.size > DOC_CACHE_SIZE) {
      const oldest = docCache.keys().next().value;
      if (oldest !== undefined) docCache.delete(oldest);
    }
    return entry;
  }

  function selectOperation(doc: DocumentNode, name: string | undefined): OperationDefinitionNode | undefined {
    const ops = doc.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
    if (name !== undefined) return ops.find((o) => o.name?.value === name);
    return ops.length === 1 ? ops[0] : undefined;
  }

  async function handleGraphql(req: IncomingMessage, res: ServerResponse): Promise<void> {
    stats.graphql++;
    if (req.method !== "POST") {
      await readBody(req).catch(() => undefined);
      await send(req, res, errorsReply(405, "use POST for /graphql"), { costed: false });
      return;
    }
    const raw = await readBody(req);
    let body: { query?: unknown; variables?: unknown; operationName?: unknown };
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch {
      countOperation("invalid");
      await send(req, res, errorsReply(400, "request body is not valid JSON"), { costed: false });
      return;
    }
    const query = typeof body?.query === "string" ? body.query : null;
    const operationName =
      typeof body.operationName === "string" && body.operationName !== "" ? body.operationName : undefined;
    const variables =
      body.variables && typeof body.variables === "object" && !Array.isArray(body.variables)
        ? (body.variables as Record<string, unknown>)
        : {};
    const cached = query === null ? null : lookupDocument(query);
    const operation = cached?.document ? selectOperation(cached.document, operationName) : undefined;
    countOperation(operation ? (operation.name?.value ?? "anonymous") : (operationName ?? "invalid"));

    const gateResult = await gate(req, res, () => true);
    if (!gateResult) return;
    const { headers, truncate } = gateResult;

    if (query === null || cached === null) {
      await send(req, res, errorsReply(400, "Must provide query string.", headers), { costed: true, truncate });
      return;
    }
    if (cached.errors.length > 0 || !cached.document) {
      const reply = jsonReply(400, { errors: cached.errors.map((e) => ({ message: e.message })) }, headers);
      await send(req, res, reply, { costed: true, truncate });
      return;
    }
    if (sdkShapesOnly && cached.shapes) {
      const problem =
        cached.shapes.problem ??
        (maxRunsFirst(cached.shapes, operation, variables) > MAX_RUNS_FIRST
          ? `first must be <= ${MAX_RUNS_FIRST}`
          : null);
      if (problem) {
        await send(req, res, errorsReply(400, problem, headers), { costed: true, truncate });
        return;
      }
    }
    const context: ResolverContext = {
      store,
      baseUrl,
      signUrl,
      memo: new Map(),
      historySamplesCap,
      ignoreRunFilters: options.ignoreRunFilters ?? false,
    };
    const result = await execute({
      schema,
      document: cached.document,
      variableValues: variables,
      operationName,
      contextValue: context,
    });
    const httpError = result.errors?.find((e) => e.originalError instanceof HttpStatusError)?.originalError as
      | HttpStatusError
      | undefined;
    let reply: Reply;
    if (httpError) reply = errorsReply(httpError.status, httpError.message, headers);
    else if (result.errors && result.errors.length > 0 && result.data === undefined) {
      // Request errors (bad variables, unknown operation): graphql-over-http answers 400.
      reply = jsonReply(400, { errors: result.errors.map((e) => ({ message: e.message })) }, headers);
    } else {
      const out: Record<string, unknown> = {};
      if (result.errors && result.errors.length > 0) {
        out.errors = result.errors.map((e) => ({ message: e.message, path: e.path }));
      }
      out.data = result.data ?? null;
      reply = jsonReply(200, out, headers);
    }
    await send(req, res, reply, { costed: true, truncate });
  }

  function countOperation(name: string): void {
    stats.byOperation[name] = (stats.byOperation[name] ?? 0) + 1;
  }

  /** /files/<entity>/<project>/<run>/<path>: the file's bytes or the decoded parts, or null when malformed. */
  function parseFilePath(pathname: string): { run: FakeRun; name: string } | null {
    const parts = decodeSegments(pathname.slice("/files/".length));
    if (parts.length < 4) return null;
    const [entity, project, runName, ...rest] = parts;
    if (entity !== store.entity || project !== store.project) return null;
    const run = store.run(runName as string);
    const name = rest.join("/");
    if (!run || name === "") return null;
    return store.files(run).some((f) => f.name === name) ? { run, name } : null;
  }

  async function handleApiFile(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    stats.files++;
    await readBody(req).catch(() => undefined);
    if (req.method !== "GET" && req.method !== "HEAD") {
      await send(req, res, errorsReply(405, "method not allowed"), { costed: false });
      return;
    }
    const gateResult = await gate(req, res, (k) => k !== "graphql");
    if (!gateResult) return;
    const { headers, truncate } = gateResult;
    const found = parseFilePath(path);
    if (!found) {
      await send(req, res, jsonReply(404, { error: "file not found" }, headers), { costed: true, truncate });
      return;
    }
    if (redirectFiles) {
      const location = signUrl(path);
      const reply: Reply = { status: 302, headers: { ...headers, Location: location }, body: Buffer.alloc(0) };
      await send(req, res, reply, { costed: true, truncate });
      return;
    }
    await sendFileBytes(req, res, found.run, found.name, headers, truncate);
  }

  async function sendFileBytes(
    req: IncomingMessage,
    res: ServerResponse,
    run: FakeRun,
    name: string,
    headers: Record<string, string>,
    truncate: boolean,
  ): Promise<void> {
    const content = store.fileContent(run, name);
    const meta = store.files(run).find((f) => f.name === name);
    if (!content || !meta) {
      await send(req, res, jsonReply(404, { error: "file not found" }, headers), { costed: true, truncate });
      return;
    }
    const extra = {
      ...headers,
      "Content-Type": meta.mimetype || "application/octet-stream",
      ETag: `"${meta.md5}"`,
      "Last-Modified": new Date(`${meta.updatedAt}Z`).toUTCString(),
    };
    await sendRanged(req, res, content.length, async (s, e) => content.subarray(s, e + 1), extra, truncate);
  }

  async function sendRanged(
    req: IncomingMessage,
    res: ServerResponse,
    size: number,
    read: (start: number, endInclusive: number) => Promise<Buffer>,
    headers: Record<string, string>,
    truncate: boolean,
  ): Promise<void> {
    const range = parseRange(req.headers.range, size);
    const base = { ...headers, "Accept-Ranges": "bytes" };
    if (range === "unsatisfiable") {
      const reply: Reply = {
        status: 416,
        headers: { ...base, "Content-Range": `bytes */${size}` },
        body: Buffer.alloc(0),
      };
      await send(req, res, reply, { costed: true });
      return;
    }
    if (req.method === "HEAD") {
      // HEAD: the headers a GET would carry, with the full Content-Length and no body.
      res.writeHead(200, { ...base, "Content-Length": size });
      countStatus(200);
      res.end();
      return;
    }
    if (range === null) {
      const body = size === 0 ? Buffer.alloc(0) : await read(0, size - 1);
      await send(req, res, { status: 200, headers: base, body }, { costed: true, truncate });
      return;
    }
    const body = await read(range.start, range.end);
    const reply: Reply = {
      status: 206,
      headers: { ...base, "Content-Range": `bytes ${range.start}-${range.end}/${size}` },
      body,
    };
    await send(req, res, reply, { costed: true, truncate });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Storage host (no auth; signed URLs).

  async function handleStorage(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { path, query } = splitTarget(req.url);
    await readBody(req).catch(() => undefined);
    stats.total++;
    stats.storage++;
    const isParquet = path.startsWith("/parquet/");
    if (isParquet) stats.parquet++;
    if (req.headers.authorization !== undefined) {
      stats.authLeaks.push({ path, at: new Date().toISOString() });
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      await send(req, res, storageError(405, "MethodNotAllowed", "Method not allowed."), { costed: false });
      return;
    }
    const token = query.get("token") ?? "";
    const decoded = decodeSegments(path).join("/");
    if (!safeEqual(token, signature(decoded))) {
      await send(req, res, storageError(403, "SignatureDoesNotMatch", "Access denied."), { costed: false });
      return;
    }
    let truncate = false;
    if (req.method === "GET") {
      const kind = dice.draw(settings, (k) => k !== "graphql");
      if (kind && (await applyFault(req, res, kind))) return;
      truncate = kind === "truncated";
    }
    if (isParquet) return serveParquet(req, res, path, truncate);
    if (path.startsWith("/files/")) {
      const found = parseFilePath(path);
      if (found) return sendFileBytes(req, res, found.run, found.name, {}, truncate);
    }
    await send(req, res, storageError(404, "NoSuchKey", "The specified key does not exist."), { costed: true });
  }

  function storageError(status: number, code: string, message: string): Reply {
    return {
      status,
      headers: { "Content-Type": "application/xml; charset=UTF-8" },
      body: Buffer.from(
        `<?xml version='1.0' encoding='UTF-8'?><Error><Code>${code}</Code><Message>${message}</Message></Error>`,
      ),
    };
  }

  async function serveParquet(req: IncomingMessage, res: ServerResponse, pathname: string, truncate: boolean) {
    const parts = decodeSegments(pathname.slice("/parquet/".length));
    const [entity, project, runName, file] = parts;
    const run = entity === store.entity && project === store.project ? store.run(runName ?? "") : undefined;
    const id = file?.endsWith(".parquet") ? file.slice(0, -".parquet".length) : undefined;
    const exp = run && parts.length === 4 ? (await store.parquetExports(run)).find((e) => e.id === id) : undefined;
    if (!exp) {
      await send(req, res, storageError(404, "NoSuchKey", "The specified key does not exist."), { costed: true });
      return;
    }
    const handle = await open(exp.path, "r");
    try {
      const size = (await handle.stat()).size;
      const read = async (start: number, end: number): Promise<Buffer> => {
        const buf = Buffer.alloc(end - start + 1);
        let off = 0;
        while (off < buf.length) {
          const { bytesRead } = await handle.read(buf, off, buf.length - off, start + off);
          if (bytesRead === 0) break;
          off += bytesRead;
        }
        return buf.subarray(0, off);
      };
      await sendRanged(req, res, size, read, { "Content-Type": "application/octet-stream" }, truncate);
    } finally {
      await handle.close();
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Control endpoints (no auth, never faulted, never counted).

  async function handleControl(
    req: IncomingMessage,
    res: ServerResponse,
    url: { path: string; query: URLSearchParams },
  ): Promise<void> {
    const body = await readBody(req);
    const path = url.path;
    const reply = (status: number, value: unknown) => {
      const b = Buffer.from(stringifyWire(value));
      res.writeHead(status, { "Content-Type": JSON_TYPE, "Content-Length": b.length });
      res.end(b);
    };
    const method = req.method ?? "GET";
    if (path === "/_fake/stats" && method === "GET") return reply(200, stats);
    if (path === "/_fake/stats/reset" && method === "POST") {
      resetStats();
      return reply(200, { ok: true });
    }
    if (path === "/_fake/faults" && method === "GET") return reply(200, settings);
    if (path === "/_fake/faults" && method === "POST") {
      try {
        setFaults(JSON.parse(body.toString("utf8") || "{}"));
      } catch (e) {
        return reply(400, { error: (e as Error).message });
      }
      return reply(200, { ok: true, faults: settings });
    }
    if (path === "/_fake/mutate" && method === "POST") {
      let ops: MutateOp[];
      try {
        const parsed = JSON.parse(body.toString("utf8"));
        ops = Array.isArray(parsed) ? parsed : [parsed];
      } catch (e) {
        return reply(400, { error: `invalid JSON: ${(e as Error).message}` });
      }
      try {
        for (const op of ops) store.mutate(op);
      } catch (e) {
        const err = e as Error;
        if (err?.name === "MutateError" || err?.constructor?.name === "MutateError") {
          return reply(400, { error: err.message });
        }
        throw e;
      }
      return reply(200, { ok: true });
    }
    if (path === "/_fake/truth/runs" && method === "GET") {
      const lines = store.runs().map((r) => `${store.truthLine(store.truthRun(r))}\n`);
      return streamLines(res, lines);
    }
    const truth = /^\/_fake\/truth\/(history|events|files)$/.exec(path);
    if (truth && method === "GET") {
      const run = store.run(url.query.get("run") ?? "");
      if (!run) return reply(404, { error: `unknown run ${url.query.get("run")}` });
      if (truth[1] === "files") {
        const lines = store
          .files(run)
          .map((f) => `${JSON.stringify({ name: f.name, size: f.sizeBytes, md5: f.md5 })}\n`);
        return streamLines(res, lines);
      }
      if (truth[1] === "events") {
        return streamLines(
          res,
          store.events(run).map((row) => `${store.truthLine(row)}\n`),
        );
      }
      return streamHistory(res, run);
    }
    return reply(404, { error: `unknown control endpoint ${method} ${path}` });
  }

  function ndjsonHead(res: ServerResponse): void {
    res.writeHead(200, { "Content-Type": "application/x-ndjson" });
  }

  async function writeChunk(res: ServerResponse, chunk: string): Promise<void> {
    if (!res.write(chunk)) await new Promise<void>((resolve) => res.once("drain", resolve));
  }

  async function streamLines(res: ServerResponse, lines: string[]): Promise<void> {
    ndjsonHead(res);
    let buf = "";
    for (const line of lines) {
      buf += line;
      if (buf.length > 1 << 16) {
        await writeChunk(res, buf);
        buf = "";
      }
    }
    res.end(buf);
  }

  async function streamHistory(res: ServerResponse, run: FakeRun): Promise<void> {
    ndjsonHead(res);
    if (run.firstStep >= 0) {
      const window = 5000;
      for (let lo = run.firstStep; lo <= run.lastStep; lo += window) {
        if (res.destroyed) return;
        let buf = "";
        for (const row of store.historyRows(run, lo, Math.min(lo + window, run.lastStep + 1))) {
          buf += `${store.truthLine(row)}\n`;
        }
        if (buf) await writeChunk(res, buf);
      }
    }
    res.end();
  }

  // -------------------------------------------------------------------------------------------------------------

  function resetStats(): void {
    stats = emptyStats();
  }

  function setFaults(f: Partial<FaultSettings>): void {
    settings = mergeFaults(settings, f as Record<string, unknown>);
    limiter.reset();
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    for (const t of timers) clearTimeout(t);
    timers.clear();
    const stop = (s: Server) =>
      new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      });
    await Promise.all([stop(apiServer), stop(storageServer)]);
  }

  return {
    url: baseUrl,
    storageUrl,
    stats: () => structuredClone(stats),
    resetStats,
    setFaults,
    faults: () => ({ ...settings, faultKinds: [...settings.faultKinds] }),
    close,
  };
}
