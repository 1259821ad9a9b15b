/**
 * The retry policy, in one place: which failures are retried, how long to wait, and the loop that applies it.
 *
 * Defaults (DEFAULT_RETRY):
 *   - 8 attempts in all (1 + 7 retries);
 *   - exponential backoff with full jitter: wait = random() * min(maxDelay, minDelay * 2^(retry-1)),
 *     minDelay 0.5 s, maxDelay 30 s; expected total wait before giving up is about 30 s, worst case about 62 s;
 *   - a server-given wait (Retry-After in seconds or as an HTTP date, or RateLimit-Reset in seconds) replaces the
 *     backoff, capped at maxServerWait (120 s);
 *   - retried: 429, 5xx except 501, 408, connection resets/refusals, truncated bodies, timeouts, GraphQL errors
 *     whose message looks transient; never retried: 400, 401, 403, 404, 409, 410, 413, 422, 501, other GraphQL errors.
 */
import { WandbError, type WandbErrorCode } from "./errors.js";

export interface RetryOptions {
  /** Requests in all, including the first. Default 8. */
  maxAttempts: number;
  /** Base of the exponential backoff, ms. Default 500. */
  minDelayMs: number;
  /** Cap of the exponential backoff, ms. Default 30 000. */
  maxDelayMs: number;
  /** Cap on a server-requested wait (Retry-After, RateLimit-Reset), ms. Default 120 000. */
  maxServerWaitMs: number;
  /**
   * Attempts in all when the connection cannot even be made (refused, host unknown or unreachable): a server that is
   * down or a wrong base URL should fail in seconds, not after the full budget. Default 3.
   */
  maxConnectAttempts: number;
}

export const DEFAULT_RETRY: Readonly<RetryOptions> = Object.freeze({
  maxAttempts: 8,
  minDelayMs: 500,
  maxDelayMs: 30_000,
  maxServerWaitMs: 120_000,
  maxConnectAttempts: 3,
});

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** setTimeout as a promise that rejects with the signal's reason when aborted. */
export const realSleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });

/** Full-jitter exponential backoff before retry number `retry` (1 = the first retry). */
export function backoffDelay(retry: number, options: RetryOptions, random: () => number = Math.random): number {
  const exp = Math.min(options.maxDelayMs, options.minDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(random() * exp);
}

type HeaderBag = Record<string, string | string[] | undefined>;

function header(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name] ?? headers[name.toLowerCase()];
  if (Array.isArray(v)) return v.length === 1 ? v[0] : undefined;
  return v;
}

/**
 * The wait the server asked for, in ms: Retry-After (seconds, possibly fractional, or an HTTP date), else
 * RateLimit-Reset (seconds). Undefined when neither is present or parsable.
 */
export function serverWaitMs(headers: HeaderBag, now: number = Date.now()): number | undefined {
  const ra = header(headers, "retry-after")?.trim();
  if (ra) {
    if (/^\d+(\.\d+)?$/.test(ra)) return Math.round(Number(ra) * 1000);
    const t = Date.parse(ra);
    if (!Number.isNaN(t)) return Math.max(0, t - now);
  }
  const reset = header(headers, "ratelimit-reset")?.trim();
  if (reset && /^\d+(\.\d+)?$/.test(reset)) return Math.round(Number(reset) * 1000);
  return undefined;
}

/** HTTP statuses that are never retried (the SDK's list). */
export const NEVER_RETRY_STATUS: ReadonlySet<number> = new Set([400, 401, 403, 404, 409, 410, 413, 422, 501]);

/** How an HTTP status maps to an error code and whether it is worth retrying. */
export function classifyStatus(status: number): { code: WandbErrorCode; transient: boolean } {
  if (status === 401 || status === 403) return { code: "AUTH", transient: false };
  if (status === 404 || status === 410) return { code: "NOT_FOUND", transient: false };
  if (status === 429) return { code: "RATE_LIMITED", transient: true };
  if (status === 408) return { code: "TIMEOUT", transient: true };
  if (status === 501) return { code: "SERVER", transient: false };
  if (status >= 500) return { code: "SERVER", transient: true };
  if (NEVER_RETRY_STATUS.has(status)) return { code: "BAD_REQUEST", transient: false };
  if (status >= 400) return { code: "BAD_REQUEST", transient: true };
  return { code: "PROTOCOL", transient: true };
}

const TRANSIENT_GRAPHQL =
  /internal (server )?error|time ?out|timed out|deadline exceeded|try again|rate limit|unavailable|temporar|overloaded|connection reset/i;

/** Whether a GraphQL error message (HTTP 200 with `errors`) looks worth retrying. */
export function isTransientGraphqlMessage(message: string): boolean {
  return TRANSIENT_GRAPHQL.test(message);
}

/** Error messages from any of the body shapes W&B uses: {"error"}, {"errors": ["str"]}, {"errors": [{"message"}]}. */
export function errorMessages(body: unknown): string[] {
  if (typeof body !== "object" || body === null) return [];
  const b = body as Record<string, unknown>;
  const out: string[] = [];
  if (typeof b.error === "string") out.push(b.error);
  else if (
    typeof b.error === "object" &&
    b.error !== null &&
    typeof (b.error as { message?: unknown }).message === "string"
  )
    out.push((b.error as { message: string }).message);
  if (Array.isArray(b.errors)) {
    for (const e of b.errors) {
      if (typeof e === "string") out.push(e);
      else if (typeof e === "object" && e !== null && typeof (e as { message?: unknown }).message === "string")
        out.push((e as { message: string }).message);
    }
  } else if (typeof b.errors === "string") out.push(b.errors);
  if (out.length === 0 && typeof b.message === "string") out.push(b.message);
  return out;
}

// Node/undici error codes of failures worth retrying (the connection, not the request, went wrong).
const TRANSIENT_NET_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "ENOTFOUND",
  "ENETDOWN",
  "ENOTCONN",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
  "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH",
  "UND_ERR_INFO",
  "HPE_INVALID_CONSTANT",
  "HPE_INVALID_CHUNK_SIZE",
  "ERR_STREAM_PREMATURE_CLOSE",
  "Z_BUF_ERROR",
  "Z_DATA_ERROR",
]);

function errCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let depth = 0; depth < 4 && cur && typeof cur === "object"; depth++) {
    const c = (cur as { code?: unknown }).code;
    if (typeof c === "string") return c;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

function errText(e: unknown): string {
  if (e instanceof Error) {
    const code = errCode(e);
    const cause = e.cause instanceof Error && e.cause.message !== e.message ? ` (${e.cause.message})` : "";
    return `${e.message}${cause}${code && !e.message.includes(code) ? ` [${code}]` : ""}`;
  }
  return String(e);
}

// Failures to connect at all: retried, but only up to maxConnectAttempts.
const CONNECT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "ENETDOWN"]);

/** Whether an error is a failure to connect at all (see RetryOptions.maxConnectAttempts). */
export function isConnectFailure(e: unknown): boolean {
  if (!(e instanceof WandbError) || e.code !== "NETWORK") return false;
  const code = errCode(e.cause);
  return code !== undefined && CONNECT_CODES.has(code);
}

/** Turns a thrown network-level error into a WandbError (timeouts and resets transient). */
export function classifyNetworkError(
  e: unknown,
  ctx: { operation: string; run?: string; timedOut?: boolean; timeoutMs?: number },
): WandbError {
  if (e instanceof WandbError) return e;
  const code = errCode(e);
  if (ctx.timedOut || code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") {
    return new WandbError({
      code: "TIMEOUT",
      operation: ctx.operation,
      run: ctx.run,
      reason: `no complete response within ${ctx.timeoutMs !== undefined ? `${ctx.timeoutMs / 1000} s` : "the timeout"}`,
      transient: true,
      cause: e,
    });
  }
  const transient = code !== undefined && TRANSIENT_NET_CODES.has(code);
  return new WandbError({
    code: "NETWORK",
    operation: ctx.operation,
    run: ctx.run,
    reason: `network error: ${errText(e)}`,
    transient,
    cause: e,
  });
}

export interface RetryContext {
  operation: string;
  run?: string;
  signal?: AbortSignal;
  retry: RetryOptions;
  sleep: Sleep;
  random: () => number;
  now?: () => number;
  /** Called before each retry's wait (stats, logging). */
  onRetry?: (error: WandbError, attempt: number, delayMs: number) => void;
}

/**
 * Runs `attempt` until it succeeds, fails with a non-transient error, or the attempts are used up. Each attempt
 * gets its 1-based number. Throws a WandbError whose `attempts` counts every request made; an abort of `signal`
 * is rethrown as the signal's reason.
 */
export async function withRetry<T>(ctx: RetryContext, attempt: (n: number) => Promise<T>): Promise<T> {
  const max = Math.max(1, ctx.retry.maxAttempts);
  for (let n = 1; ; n++) {
    ctx.signal?.throwIfAborted();
    let err: WandbError;
    try {
      return await attempt(n);
    } catch (e) {
      if (ctx.signal?.aborted) throw ctx.signal.reason;
      err = e instanceof WandbError ? e : classifyNetworkError(e, { operation: ctx.operation, run: ctx.run });
    }
    const limit = isConnectFailure(err) ? Math.min(max, Math.max(1, ctx.retry.maxConnectAttempts)) : max;
    if (!err.transient || n >= limit) throw n === err.attempts ? err : err.withAttempts(n);
    const delay =
      err.retryAfterMs !== undefined
        ? Math.min(err.retryAfterMs, ctx.retry.maxServerWaitMs)
        : backoffDelay(n, ctx.retry, ctx.random);
    ctx.onRetry?.(err, n, delay);
    await ctx.sleep(delay, ctx.signal);
  }
}
