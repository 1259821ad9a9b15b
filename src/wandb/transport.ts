/**
 * HTTP to W&B on undici: one keep-alive Agent, per-attempt timeouts, retries (src/wandb/retry.ts), the shared
 * rate governor, request/byte counting, and the rule that credentials go only to the base URL's origin. What a
 * GraphQL answer means (data, or which error): graphql-answer.ts.
 *
 * Over 400 lines on purpose: one Transport whose GraphQL, GET and download paths share the keep-alive Agent, the
 * retry loop, governor tickets, counters and the credential-scoping rule; split, that rule would be in several places.
 */
import { getHeapStatistics } from "node:v8";
import { Agent, type Dispatcher, Pool, request } from "undici";
import { collectGarbage } from "../model/heap.js";
import type { JsonObject, JsonValue } from "../model/json.js";
import { parseJsonText } from "./decode.js";
import { WandbError } from "./errors.js";
import { type GovernorTicket, parseRateLimitHeaders, RateGovernor } from "./governor.js";
import { authHint, contentLength, readGraphqlAnswer, snippet } from "./graphql-answer.js";
import { allocateBody, joinBody } from "./large-buffer.js";
import {
  classifyNetworkError,
  classifyStatus,
  DEFAULT_RETRY,
  errorMessages,
  type RetryOptions,
  realSleep,
  type Sleep,
  serverWaitMs,
  withRetry,
} from "./retry.js";

export const DEFAULT_GRAPHQL_TIMEOUT_MS = 60_000;
export const DEFAULT_DOWNLOAD_TIMEOUT_MS = 60_000;
export const MAX_REDIRECTS = 10;
/** Connections per storage origin (signed file and parquet URLs); the API origin keeps `connections`. */
const STORAGE_CONNECTIONS = 256;
const USER_AGENT = "dr-wandb (W&B Public Client compatible)";
/**
 * A GraphQL answer of this size or more (a history window of 500,000 cells is 12-20 MB) is followed by a full garbage
 * collection once it is parsed, when the heap then holds at least `collectAboveHeapBytes` (LARGE_HEAP_BYTES in the
 * commands): its body and text (twice its size, the text in V8's large-object space, which only a full
 * collection frees) would otherwise stay in memory while the rows decoded from its tree are built.
 * LARGE_HEAP_BYTES was 96 MiB while decoded rows were held as objects, then 0 (after every large answer: S2's
 * download 356-362 MB against 380-424, 2026-12-07) while answers were parsed whole. Since HistoryPage rows stay in the
 * answer's bytes (lazy-lines.ts) a large answer leaves little garbage, and collecting after each one bought nothing
 * (S2 `sync` 294-306 MB with it, 300-307 without, 3 runs each; download 301 against 302; S4 alike) for ~7 CPU-s in
 * S2's sync: it is 96 MiB again, a safety net for a heap that grows anyway. DR_WANDB_LARGE_HEAP_MB overrides it
 * (0: after every large answer).
 */
export const LARGE_ANSWER_BYTES = 8 * 2 ** 20;
export const LARGE_HEAP_BYTES = heapMbFromEnv(process.env.DR_WANDB_LARGE_HEAP_MB, 96) * 2 ** 20;
const EMPTY = Buffer.alloc(0);

export interface TransportOptions {
  baseUrl: string;
  apiKey: string;
  /** Per-attempt timeout for a GraphQL request, headers and body together. Default 60 s. */
  timeoutMs?: number;
  /** Per-attempt timeout for file downloads: time to headers, and longest pause between body chunks. Default 60 s. */
  downloadTimeoutMs?: number;
  retry?: Partial<RetryOptions>;
  /** Shared rate governor; a private one (default options) is made when absent. */
  governor?: RateGovernor;
  sleep?: Sleep;
  random?: () => number;
  /** Connections to the API origin. Default 32 (storage origins get at least 256). */
  connections?: number;
  /** Use this dispatcher instead of a private keep-alive Agent (it is then not closed by close()). */
  dispatcher?: Dispatcher;
  userAgent?: string;
  /**
   * Heap size (V8's used heap) from which a large answer is collected at once (LARGE_ANSWER_BYTES). Default: never,
   * the host process's heap being its own business; the commands pass LARGE_HEAP_BYTES.
   */
  collectAboveHeapBytes?: number;
}

export interface TransportStats {
  /** HTTP requests sent (every attempt and redirect hop counts). */
  requests: number;
  byOperation: Record<string, number>;
  /** Response body bytes received (as sent on the wire). */
  bytes: number;
  /** Retries made (attempts after the first). */
  retries: number;
  retriesByOperation: Record<string, number>;
}

export interface GraphqlRequestOptions {
  signal?: AbortSignal;
  /** "entity/project/run", for error messages (and the request's priority, see priorityOf). */
  run?: string;
  /** The runs a batched document reads ("entity/project/run" each): its priority is the earliest of theirs. */
  runs?: string[];
  timeoutMs?: number;
  /**
   * A member name (e.g. "history") whose large arrays of strings `data` holds as LazyLines, read from the answer's
   * bytes a block at a time (lazy-lines.ts), instead of as arrays.
   */
  lazyLines?: string;
}

export interface GetOptions {
  operation: string;
  run?: string;
  signal?: AbortSignal;
  /** Extra request headers (e.g. Range). */
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export interface OpenResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData["body"];
  /** The URL that answered (after redirects). */
  url: string;
}

export class Transport {
  readonly baseUrl: string;
  readonly graphqlUrl: string;
  readonly baseOrigin: string;
  readonly governor: RateGovernor;
  /** First-seen rank of each request label (see priorityOf). */
  private readonly runRanks = new Map<string, number>();
  readonly retry: RetryOptions;
  readonly sleep: Sleep;
  readonly random: () => number;
  readonly timeoutMs: number;
  readonly downloadTimeoutMs: number;
  declare private readonly authorization: string;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly userAgent: string;
  private readonly collectAboveHeapBytes: number;
  private readonly counters: TransportStats = {
    requests: 0,
    byOperation: {},
    bytes: 0,
    retries: 0,
    retriesByOperation: {},
  };

  constructor(options: TransportOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.graphqlUrl = `${this.baseUrl}/graphql`;
    this.baseOrigin = new URL(this.baseUrl).origin;
    this.governor = options.governor ?? new RateGovernor();
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.sleep = options.sleep ?? realSleep;
    this.random = options.random ?? Math.random;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_GRAPHQL_TIMEOUT_MS;
    this.downloadTimeoutMs = options.downloadTimeoutMs ?? DEFAULT_DOWNLOAD_TIMEOUT_MS;
    this.userAgent = options.userAgent ?? USER_AGENT;
    this.collectAboveHeapBytes = options.collectAboveHeapBytes ?? Number.POSITIVE_INFINITY;
    // Non-enumerable so that inspecting the transport never shows the credential.
    Object.defineProperty(this, "authorization", {
      value: `Basic ${Buffer.from(`api:${options.apiKey}`).toString("base64")}`,
      enumerable: false,
    });
    if (options.dispatcher) {
      this.dispatcher = options.dispatcher;
      this.ownsDispatcher = false;
    } else {
      const apiConnections = options.connections ?? 32;
      this.dispatcher = new Agent({
        connections: apiConnections,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 120_000,
        connect: { timeout: 30_000 },
        // Signed storage URLs (another origin) are no API requests: many small files are read at once there.
        factory: (origin, opts) =>
          new Pool(origin, {
            ...opts,
            connections:
              new URL(String(origin)).origin === this.baseOrigin
                ? apiConnections
                : Math.max(apiConnections, STORAGE_CONNECTIONS),
          }),
      });
      this.ownsDispatcher = true;
    }
  }

  stats(): TransportStats {
    return {
      requests: this.counters.requests,
      byOperation: { ...this.counters.byOperation },
      bytes: this.counters.bytes,
      retries: this.counters.retries,
      retriesByOperation: { ...this.counters.retriesByOperation },
    };
  }

  /** Credentials for `url`: only when its origin is the base URL's origin. */
  authorizationFor(url: string): string | undefined {
    try {
      return new URL(url).origin === this.baseOrigin ? this.authorization : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The governor priority of a request about `run` ("entity/project/run"; a batched document: the earliest of its
   * `runs`): the rank at which the run was first seen, so that waiting requests of runs started earlier go first.
   * Under a rate limit, runs then finish (and are written, and free their rows) one after another instead of all
   * together at the end; requests without a label (and the first run seen) come first.
   */
  private priorityOf(run: string | undefined, runs?: readonly string[]): number {
    if (runs !== undefined && runs.length > 0) return Math.min(...runs.map((r) => this.priorityOf(r)));
    if (run === undefined) return 0;
    let rank = this.runRanks.get(run);
    if (rank === undefined) {
      rank = this.runRanks.size;
      this.runRanks.set(run, rank);
    }
    return rank;
  }

  countRequest(operation: string): void {
    this.counters.requests++;
    this.counters.byOperation[operation] = (this.counters.byOperation[operation] ?? 0) + 1;
  }

  countBytes(n: number): void {
    this.counters.bytes += n;
  }

  countRetry(operation: string): void {
    this.counters.retries++;
    this.counters.retriesByOperation[operation] = (this.counters.retriesByOperation[operation] ?? 0) + 1;
  }

  /** Runs `attempt` under the retry policy, counting retries. */
  withRetry<T>(
    ctx: { operation: string; run?: string; signal?: AbortSignal },
    attempt: (n: number) => Promise<T>,
  ): Promise<T> {
    return withRetry(
      {
        ...ctx,
        retry: this.retry,
        sleep: this.sleep,
        random: this.random,
        onRetry: () => this.countRetry(ctx.operation),
      },
      attempt,
    );
  }

  /**
   * Sends one GraphQL document (with retries) and returns its `data`. Errors: WandbError with code AUTH (401/403),
   * NOT_FOUND (404), RATE_LIMITED, SERVER, NETWORK, TIMEOUT, GRAPHQL (`errors` in a 200), BAD_REQUEST, PROTOCOL.
   */
  async graphql(
    operation: string,
    query: string,
    variables: Record<string, unknown>,
    options: GraphqlRequestOptions = {},
  ): Promise<JsonObject> {
    const body = JSON.stringify({ query, variables, operationName: operation });
    return this.withRetry({ operation, run: options.run, signal: options.signal }, (n) =>
      this.graphqlAttempt(operation, body, n, options),
    );
  }

  private async graphqlAttempt(
    operation: string,
    body: string,
    attempt: number,
    options: GraphqlRequestOptions,
  ): Promise<JsonObject> {
    const { signal, run } = options;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const ticket = await this.governor.acquire(signal, this.priorityOf(run, options.runs));
    let outcome: "success" | "failure" | "rateLimited" = "failure";
    let pauseMs = 0;
    // One controller per attempt, aborted by the timeout or by the caller's signal (linked by hand rather than with
    // AbortSignal.any, whose listeners pile up on a long-lived caller signal in Node 20).
    const attemptAbort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      attemptAbort.abort(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const onCallerAbort = () => attemptAbort.abort(signal?.reason);
    signal?.addEventListener("abort", onCallerAbort, { once: true });
    const combined = attemptAbort.signal;
    try {
      this.countRequest(operation);
      let res: Dispatcher.ResponseData;
      let raw: Buffer;
      try {
        res = await request(this.graphqlUrl, {
          method: "POST",
          dispatcher: this.dispatcher,
          headers: {
            "content-type": "application/json",
            accept: "application/json",
            "accept-encoding": "gzip, deflate, br",
            "user-agent": this.userAgent,
            authorization: this.authorization,
          },
          body,
          signal: combined,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
        raw = await readAll(res.body, (n) => this.countBytes(n), undefined, contentLength(res.headers));
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        throw classifyNetworkError(e, { operation, run, timedOut, timeoutMs });
      }
      const status = res.statusCode;
      // The server's budget (RateLimit-*) paces everyone: see RateGovernor.
      ticket.observe(parseRateLimitHeaders(res.headers), status !== 429);
      const size = raw.length;
      // The answer takes the body (and empties it once read as text): no reference to it is kept here meanwhile.
      const answer = { status, headers: res.headers, raw };
      raw = EMPTY;
      const verdict = await readGraphqlAnswer(answer, {
        operation,
        run,
        attempt,
        retry: this.retry,
        random: this.random,
        baseUrl: this.baseUrl,
        graphqlUrl: this.graphqlUrl,
        lazyLines: options.lazyLines,
      });
      if (!verdict.ok) {
        outcome = verdict.outcome;
        pauseMs = verdict.pauseMs;
        throw verdict.error;
      }
      outcome = "success";
      // The body and its text are garbage now, twice the body's size: a large answer's are collected at once rather
      // than beside the rows decoded from it (see LARGE_ANSWER_BYTES).
      if (size >= LARGE_ANSWER_BYTES && getHeapStatistics().used_heap_size >= this.collectAboveHeapBytes) {
        collectGarbage();
      }
      return verdict.data;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onCallerAbort);
      if (outcome === "success") ticket.success();
      else if (outcome === "rateLimited") ticket.rateLimited(pauseMs);
      else ticket.failure();
    }
  }

  /**
   * GET `url`, following up to 10 redirects by hand so that Authorization goes only to the base URL's origin (it is
   * dropped on any cross-origin hop, and re-added on a hop back). Returns the final response with its body unread:
   * the caller must consume or destroy it. Non-2xx answers (except 416) are thrown as WandbErrors; one attempt only.
   */
  async openGet(url: string, options: GetOptions): Promise<OpenResponse> {
    const timeoutMs = options.timeoutMs ?? this.downloadTimeoutMs;
    let current = url;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { "user-agent": this.userAgent, ...options.headers };
      const auth = this.authorizationFor(current);
      if (auth) headers.authorization = auth;
      // Requests to the API host count against its rate limit: they take a governor slot (held until the headers
      // arrive). Signed storage URLs elsewhere do not.
      const onApiHost = new URL(current).origin === this.baseOrigin;
      const ticket = onApiHost ? await this.governor.acquire(options.signal, this.priorityOf(options.run)) : undefined;
      this.countRequest(options.operation);
      let res: Dispatcher.ResponseData;
      try {
        res = await request(current, {
          method: "GET",
          dispatcher: this.dispatcher,
          headers,
          signal: options.signal,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
      } catch (e) {
        ticket?.failure();
        if (options.signal?.aborted) throw options.signal.reason;
        throw classifyNetworkError(e, { operation: options.operation, run: options.run, timeoutMs });
      }
      const status = res.statusCode;
      if (ticket) settleGetTicket(ticket, status, res.headers, this.retry.minDelayMs, this.retry.maxServerWaitMs);
      if (status >= 300 && status < 400 && status !== 304) {
        const loc = res.headers.location;
        await discard(res.body);
        const location = Array.isArray(loc) ? loc[0] : loc;
        if (!location) {
          throw new WandbError({
            code: "PROTOCOL",
            operation: options.operation,
            run: options.run,
            status,
            reason: `HTTP ${status} redirect without a Location`,
          });
        }
        if (hop + 1 > MAX_REDIRECTS) {
          throw new WandbError({
            code: "PROTOCOL",
            operation: options.operation,
            run: options.run,
            status,
            reason: `more than ${MAX_REDIRECTS} redirects`,
          });
        }
        current = new URL(location, current).toString();
        continue;
      }
      if ((status >= 200 && status < 300) || status === 416) {
        return { statusCode: status, headers: res.headers, body: res.body, url: current };
      }
      let text = "";
      try {
        text = (await readAll(res.body, (n) => this.countBytes(n), 64 * 1024)).toString("utf8");
      } catch {
        // the status is what matters
      }
      let parsed: JsonValue | undefined;
      try {
        parsed = parseJsonText(text);
      } catch {
        parsed = undefined;
      }
      const messages = errorMessages(parsed);
      const { code, transient } = classifyStatus(status);
      const wait = serverWaitMs(res.headers);
      throw new WandbError({
        code,
        operation: options.operation,
        run: options.run,
        status,
        reason: `HTTP ${status} from ${new URL(current).host}${messages.length ? `: ${messages.join("; ")}` : text ? `: ${snippet(text)}` : ""}`,
        transient,
        retryAfterMs: transient ? wait : undefined,
        hint: code === "AUTH" && this.authorizationFor(current) ? authHint(this.baseUrl) : undefined,
      });
    }
  }

  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }
}

/** Reports a GET's answer to its governor slot: the RateLimit-* headers, then 429, 5xx or anything else. */
function settleGetTicket(
  ticket: GovernorTicket,
  status: number,
  headers: Record<string, string | string[] | undefined>,
  minDelayMs: number,
  maxServerWaitMs: number,
): void {
  ticket.observe(parseRateLimitHeaders(headers), status !== 429);
  if (status === 429) ticket.rateLimited(Math.min(serverWaitMs(headers) ?? minDelayMs, maxServerWaitMs));
  else if (status >= 500) ticket.failure();
  else ticket.success();
}

/**
 * The largest announced length read into one buffer made in advance: a bogus Content-Length (terabytes) must not
 * fail the allocation before a byte arrives; a larger body is gathered in chunks as it comes.
 */
const PREALLOCATE_MAX_BYTES = 1 << 30;

/**
 * Reads a body to a Buffer, reporting bytes as they arrive; stops (and destroys the body) past `limit`. With the
 * length the server announced (Content-Length, up to PREALLOCATE_MAX_BYTES), the bytes go straight into one buffer of
 * that size as they come, so that a large answer is held once rather than as its chunks plus their concatenation; a
 * body that turns out longer than announced is finished the usual way, and a shorter one is returned as it is (the
 * caller compares its length with the announced one).
 */
function heapMbFromEnv(raw: string | undefined, fallback: number): number {
  const n = raw === undefined || raw.trim() === "" ? Number.NaN : Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
}

export async function readAll(
  body: AsyncIterable<Buffer | Uint8Array> & { destroy?: (e?: Error) => void },
  onBytes: (n: number) => void,
  limit = Number.POSITIVE_INFINITY,
  announced?: number,
): Promise<Buffer> {
  const usable =
    announced !== undefined &&
    Number.isSafeInteger(announced) &&
    announced > 0 &&
    announced <= Math.min(limit, PREALLOCATE_MAX_BYTES);
  let whole: Buffer | undefined = usable ? allocateBody(announced) : undefined;
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    onBytes(b.length);
    if (whole !== undefined && total + b.length <= whole.length) b.copy(whole, total);
    else {
      if (whole !== undefined) {
        chunks.push(whole.subarray(0, total));
        whole = undefined;
      }
      chunks.push(b);
    }
    total += b.length;
    if (total > limit) {
      body.destroy?.();
      break;
    }
  }
  return whole !== undefined ? whole.subarray(0, total) : joinBody(chunks, total);
}

async function discard(body: { dump?: () => Promise<void>; destroy?: () => void }): Promise<void> {
  try {
    if (body.dump) await body.dump();
    else body.destroy?.();
  } catch {
    // ignore: the redirect's body is irrelevant
  }
}
