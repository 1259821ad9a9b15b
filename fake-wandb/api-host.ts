/** The API host: POST /graphql (rate limit, auth, fault dice, SDK-shape checks, execution) and GET /files/... */
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  type DocumentNode,
  execute,
  type GraphQLError,
  Kind,
  type OperationDefinitionNode,
  parse,
  validate,
} from "graphql";
import { handleControl } from "./control.js";
import { applyFault } from "./fault-replies.js";
import type { FaultKind } from "./faults.js";
import { basicKey, errorsReply, jsonReply, type Reply, readBody, safeEqual, splitTarget } from "./http.js";
import { HttpStatusError, type ResolverContext } from "./resolvers.js";
import type { CachedDocument, ServerState } from "./server-state.js";
import { analyzeShapes, MAX_RUNS_FIRST, maxRunsFirst } from "./shapes.js";

const DOC_CACHE_SIZE = 512;

function authorized(st: ServerState, req: IncomingMessage): boolean {
  const key = basicKey(req.headers.authorization);
  return key !== null && safeEqual(key, st.apiKey);
}

const UNAUTHORIZED = (): Reply => errorsReply(401, "user is not logged in");

export async function handleApi(st: ServerState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = splitTarget(req.url);
  const path = url.path;
  if (path.startsWith("/_fake/")) return handleControl(st, req, res, url);
  st.stats.total++;
  if (path === "/graphql") return handleGraphql(st, req, res);
  if (path.startsWith("/files/")) return handleApiFile(st, req, res, path);
  await readBody(req).catch(() => undefined);
  await st.send(req, res, errorsReply(404, "not found"), { costed: false });
}

/** Rate limit, auth and fault st.dice, in that order. Returns the rate-limit headers, or null when answered. */
async function gate(
  st: ServerState,
  req: IncomingMessage,
  res: ServerResponse,
  allowed: (k: FaultKind) => boolean,
): Promise<{ headers: Record<string, string>; truncate: boolean } | null> {
  const rate = st.limiter.check(st.settings.rateLimit);
  if (rate.limited) {
    st.stats.rateLimited++;
    await st.send(req, res, jsonReply(429, { error: "rate limit exceeded" }, rate.headers), { costed: true });
    return null;
  }
  if (!authorized(st, req)) {
    await st.send(req, res, UNAUTHORIZED(), { costed: true });
    return null;
  }
  const kind = st.dice.draw(st.settings, allowed);
  if (kind && (await applyFault(st, req, res, kind))) return null;
  return { headers: rate.headers, truncate: kind === "truncated" };
}

function lookupDocument(st: ServerState, query: string): CachedDocument {
  const hit = st.docCache.get(query);
  if (hit) {
    st.docCache.delete(query);
    st.docCache.set(query, hit);
    return hit;
  }
  let entry: CachedDocument;
  try {
    const document = parse(query);
    const errors = validate(st.schema, document);
    entry = { document, errors, shapes: errors.length === 0 ? analyzeShapes(document) : null };
  } catch (e) {
    entry = { document: null, errors: [e as GraphQLError], shapes: null };
  }
  st.docCache.set(query, entry);
  if (st.docCache.size > DOC_CACHE_SIZE) {
    const oldest = st.docCache.keys().next().value;
    if (oldest !== undefined) st.docCache.delete(oldest);
  }
  return entry;
}

function selectOperation(doc: DocumentNode, name: string | undefined): OperationDefinitionNode | undefined {
  const ops = doc.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  if (name !== undefined) return ops.find((o) => o.name?.value === name);
  return ops.length === 1 ? ops[0] : undefined;
}

async function handleGraphql(st: ServerState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  st.stats.graphql++;
  if (req.method !== "POST") {
    await readBody(req).catch(() => undefined);
    await st.send(req, res, errorsReply(405, "use POST for /graphql"), { costed: false });
    return;
  }
  const raw = await readBody(req);
  let body: { query?: unknown; variables?: unknown; operationName?: unknown };
  try {
    body = JSON.parse(raw.toString("utf8"));
  } catch {
    st.countOperation("invalid");
    await st.send(req, res, errorsReply(400, "request body is not valid JSON"), { costed: false });
    return;
  }
  const query = typeof body?.query === "string" ? body.query : null;
  const operationName =
    typeof body.operationName === "string" && body.operationName !== "" ? body.operationName : undefined;
  const variables =
    body.variables && typeof body.variables === "object" && !Array.isArray(body.variables)
      ? (body.variables as Record<string, unknown>)
      : {};
  const cached = query === null ? null : lookupDocument(st, query);
  const operation = cached?.document ? selectOperation(cached.document, operationName) : undefined;
  st.countOperation(operation ? (operation.name?.value ?? "anonymous") : (operationName ?? "invalid"));

  const gateResult = await gate(st, req, res, () => true);
  if (!gateResult) return;
  const { headers, truncate } = gateResult;

  if (query === null || cached === null) {
    await st.send(req, res, errorsReply(400, "Must provide query string.", headers), { costed: true, truncate });
    return;
  }
  if (cached.errors.length > 0 || !cached.document) {
    const reply = jsonReply(400, { errors: cached.errors.map((e) => ({ message: e.message })) }, headers);
    await st.send(req, res, reply, { costed: true, truncate });
    return;
  }
  if (st.sdkShapesOnly && cached.shapes) {
    const problem =
      cached.shapes.problem ??
      (maxRunsFirst(cached.shapes, operation, variables) > MAX_RUNS_FIRST
        ? `first must be <= ${MAX_RUNS_FIRST}`
        : null);
    if (problem) {
      await st.send(req, res, errorsReply(400, problem, headers), { costed: true, truncate });
      return;
    }
  }
  const context: ResolverContext = {
    store: st.store,
    baseUrl: st.baseUrl,
    signUrl: (path) => st.signUrl(path),
    memo: new Map(),
    historySamplesCap: st.historySamplesCap,
    ignoreRunFilters: st.ignoreRunFilters,
  };
  const result = await execute({
    schema: st.schema,
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
  await st.send(req, res, reply, { costed: true, truncate });
}

async function handleApiFile(st: ServerState, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  st.stats.files++;
  await readBody(req).catch(() => undefined);
  if (req.method !== "GET" && req.method !== "HEAD") {
    await st.send(req, res, errorsReply(405, "method not allowed"), { costed: false });
    return;
  }
  const gateResult = await gate(st, req, res, (k) => k !== "graphql");
  if (!gateResult) return;
  const { headers, truncate } = gateResult;
  const found = st.parseFilePath(path);
  if (!found) {
    await st.send(req, res, jsonReply(404, { error: "file not found" }, headers), { costed: true, truncate });
    return;
  }
  if (st.redirectFiles) {
    const location = st.signUrl(path);
    const reply: Reply = { status: 302, headers: { ...headers, Location: location }, body: Buffer.alloc(0) };
    await st.send(req, res, reply, { costed: true, truncate });
    return;
  }
  await st.sendFileBytes(req, res, found.run, found.name, headers, truncate);
}
