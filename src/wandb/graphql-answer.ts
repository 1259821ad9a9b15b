/**
 * What one GraphQL answer means: its body checked against Content-Length, decompressed, parsed as W&B JSON, and read
 * as `data`, or as the WandbError it amounts to (HTTP status, GraphQL `errors`, a body that is not GraphQL JSON)
 * together with what the rate governor should be told about it. Pure apart from decompression; transport.ts sends
 * the request and acts on the verdict.
 */
import { isJsonObject, type JsonObject, type JsonValue } from "../model/json.js";
import { parseJsonText } from "./decode.js";
import { WandbError } from "./errors.js";
import { decompressBody } from "./large-buffer.js";
import { liftStringArrays } from "./lazy-lines.js";
import {
  backoffDelay,
  classifyStatus,
  errorMessages,
  isTransientGraphqlMessage,
  type RetryOptions,
  serverWaitMs,
} from "./retry.js";

type Headers = Record<string, string | string[] | undefined>;

const EMPTY_BODY = Buffer.alloc(0);

export interface GraphqlAnswer {
  status: number;
  headers: Headers;
  /**
   * The body as received (undici does not decode it). readGraphqlAnswer takes it: once read as text the field is
   * emptied, so that a large body is not held beside its text and parsed value (the caller keeps no other reference).
   */
  raw: Buffer;
}

export interface AnswerContext {
  operation: string;
  run?: string;
  /** The attempt's number (for the backoff of a 429 without a server wait). */
  attempt: number;
  retry: RetryOptions;
  random: () => number;
  baseUrl: string;
  graphqlUrl: string;
  /**
   * A member name whose arrays of strings are left in the body's bytes (LazyLines in `data`, see lazy-lines.ts) when
   * they hold at least `lazyMinBytes` (default LAZY_LINES_MIN_BYTES).
   */
  lazyLines?: string;
  lazyMinBytes?: number;
}

/** The smallest array of row texts left in the answer's bytes (smaller ones cost nothing worth saving). */
export const LAZY_LINES_MIN_BYTES = 256 * 1024;

/**
 * The answer's `data`, or its error and what it tells the governor: "rateLimited" (pause everyone for `pauseMs`),
 * "success" (the server is fine: a client error, a non-transient GraphQL error) or "failure".
 */
export type Verdict =
  | { ok: true; data: JsonObject }
  | { ok: false; error: WandbError; outcome: "success" | "failure" | "rateLimited"; pauseMs: number };

export async function readGraphqlAnswer(answer: GraphqlAnswer, ctx: AnswerContext): Promise<Verdict> {
  const { status, headers } = answer;
  const size = answer.raw.length;
  const { operation, run } = ctx;
  const fail = (
    error: WandbError,
    outcome: "success" | "failure" | "rateLimited" = "failure",
    pauseMs = 0,
  ): Verdict => ({
    ok: false,
    error,
    outcome,
    pauseMs,
  });
  /** An answer that is not what the protocol says (the governor is told of a failure). */
  const protocol = (reason: string, transient: boolean, cause?: unknown): Verdict =>
    fail(new WandbError({ code: "PROTOCOL", operation, run, status, reason, transient, cause }));
  const expected = contentLength(headers);
  if (expected !== undefined && expected !== size) {
    return protocol(`truncated response: got ${size} of ${expected} bytes`, true);
  }
  let body: Buffer;
  try {
    body = await decode(answer.raw, headers["content-encoding"]);
  } catch (e) {
    return protocol(`could not decompress the response (${(e as Error).message})`, true, e);
  }
  answer.raw = EMPTY_BODY;
  const minBytes = ctx.lazyMinBytes ?? LAZY_LINES_MIN_BYTES;
  const lifted =
    ctx.lazyLines !== undefined && status >= 200 && status < 300 && body.length >= minBytes
      ? liftStringArrays(body, ctx.lazyLines, minBytes)
      : null;
  const text = lifted !== null ? lifted.skeleton : body.toString("utf8");
  body = EMPTY_BODY;
  let parsed: JsonValue | undefined;
  let parseError: unknown;
  try {
    parsed = parseJsonText(text);
    if (lifted !== null) parsed = lifted.restore(parsed);
  } catch (e) {
    parseError = e;
  }

  if (status < 200 || status >= 300) {
    const { code, transient } = classifyStatus(status);
    const messages = errorMessages(parsed);
    const detail = messages.length > 0 ? messages.join("; ") : snippet(text);
    const wait = serverWaitMs(headers);
    let outcome: "success" | "failure" | "rateLimited" = "failure";
    let pauseMs = 0;
    if (status === 429) {
      outcome = "rateLimited";
      pauseMs = Math.min(wait ?? backoffDelay(ctx.attempt, ctx.retry, ctx.random), ctx.retry.maxServerWaitMs);
    } else if (status < 500) outcome = "success"; // a client error says nothing about server load
    const error = new WandbError({
      code,
      operation,
      run,
      status,
      reason: `HTTP ${status}${detail ? `: ${detail}` : ""}`,
      transient,
      retryAfterMs: transient ? wait : undefined,
      hint:
        code === "AUTH"
          ? authHint(ctx.baseUrl)
          : status === 404 || status === 405
            ? `${ctx.graphqlUrl} is not a W&B GraphQL endpoint; check the base URL`
            : undefined,
    });
    return fail(error, outcome, pauseMs);
  }
  if (parseError !== undefined || !isJsonObject(parsed)) {
    // JSON cut short is worth another try; an HTML page or other text means this is not a W&B GraphQL endpoint.
    const head = text.trimStart();
    const looksCut = parseError !== undefined && (head === "" || head.startsWith("{") || head.startsWith("["));
    return protocol(
      looksCut
        ? `response JSON is cut short or malformed (${size} bytes)${parseError instanceof Error ? `: ${parseError.message}` : ""}`
        : `${ctx.graphqlUrl} did not answer with GraphQL JSON (${contentType(headers)}: ${snippet(text)}); is the base URL a W&B server?`,
      looksCut,
      parseError,
    );
  }
  const messages = errorMessages(parsed);
  if (messages.length > 0) {
    const joined = messages.join("; ");
    const transient = isTransientGraphqlMessage(joined);
    const error = new WandbError({
      code: "GRAPHQL",
      operation,
      run,
      status,
      reason: `GraphQL error: ${joined}`,
      transient,
    });
    return fail(error, transient ? "failure" : "success");
  }
  const data = parsed.data;
  if (!isJsonObject(data)) {
    return protocol("response has no `data` object", false);
  }
  return { ok: true, data };
}

/** The hint of an AUTH error: where the key comes from. */
export function authHint(baseUrl: string): string {
  return `Check the API key for ${new URL(baseUrl).host} (WANDB_API_KEY, \`wandb login\`, or --api-key)`;
}

/** A short, tag-free excerpt of a body for an error message. */
export function snippet(text: string): string {
  const t = text
    .replace(/<[^>]*>/g, " ")
    .replace(/\s+/g, " ")
    .trim();
  return t.length > 200 ? `${t.slice(0, 197)}...` : t;
}

/** The body's length the server announced (Content-Length), if it is a plain number of bytes. */
export function contentLength(headers: Headers): number | undefined {
  // undici does not decode bodies, so Content-Length applies to exactly the bytes we read.
  const v = headers["content-length"];
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined || !/^\d+$/.test(s)) return undefined;
  return Number(s);
}

async function decode(raw: Buffer, encoding: string | string[] | undefined): Promise<Buffer> {
  const enc = (Array.isArray(encoding) ? encoding.join(",") : (encoding ?? "")).trim().toLowerCase();
  if (enc === "" || enc === "identity") return raw;
  let out = raw;
  // Encodings are listed in the order they were applied; undo them in reverse.
  for (const e of enc
    .split(",")
    .map((x) => x.trim())
    .reverse()) {
    if (e === "gzip" || e === "x-gzip") out = await decompressBody(out, "gzip");
    else if (e === "deflate") out = await decompressBody(out, "deflate");
    else if (e === "br") out = await decompressBody(out, "br");
    else if (e !== "identity" && e !== "") throw new Error(`unsupported content-encoding ${e}`);
  }
  return out;
}

function contentType(headers: Headers): string {
  const v = headers["content-type"];
  return (Array.isArray(v) ? v[0] : v) ?? "no content type";
}
