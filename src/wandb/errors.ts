/**
 * The one error type of the W&B client. `code` is stable and meant for programs; `message` is one line for people:
 * what failed (operation, run), why, and whether it was retried. The API key never appears in either (messages go
 * through {@link redact}).
 */
import { redact } from "./redact.js";

export type WandbErrorCode =
  | "AUTH"
  | "NOT_FOUND"
  | "RATE_LIMITED"
  | "SERVER"
  | "NETWORK"
  | "TIMEOUT"
  | "GRAPHQL"
  | "BAD_REQUEST"
  | "CONFIG"
  | "PROTOCOL";

export interface WandbErrorInit {
  code: WandbErrorCode;
  /** What we were doing: a GraphQL operation name ("Runs", "HistoryPage"), "downloadFile", "config", ... */
  operation: string;
  /** Why it failed, without the operation/run prefix or retry suffix (those are added). */
  reason: string;
  /** "entity/project/run" (or "entity/project") the operation was about. */
  run?: string;
  /** HTTP status, when there was a response. */
  status?: number;
  /** Requests made for this operation, including the failed one. Default 1. */
  attempts?: number;
  /** Whether this kind of failure is worth retrying (5xx, 429, resets, timeouts, transient GraphQL errors). */
  transient?: boolean;
  /** Server-provided wait before retrying, in ms (Retry-After / RateLimit-Reset). */
  retryAfterMs?: number;
  /** Extra advice appended to the message (e.g. how to set an API key). */
  hint?: string;
  cause?: unknown;
}

export class WandbError extends Error {
  override name = "WandbError";
  readonly code: WandbErrorCode;
  readonly operation: string;
  readonly run: string | undefined;
  readonly status: number | undefined;
  readonly attempts: number;
  /** True when more than one request was made before giving up. */
  readonly retried: boolean;
  readonly transient: boolean;
  readonly retryAfterMs: number | undefined;
  /** The reason alone (redacted), without operation prefix or retry suffix. */
  readonly reason: string;
  readonly hint: string | undefined;

  constructor(init: WandbErrorInit) {
    const attempts = init.attempts ?? 1;
    const reason = oneLine(redact(init.reason));
    const hint = init.hint === undefined ? undefined : oneLine(redact(init.hint));
    super(formatMessage(init.code, init.operation, init.run, reason, attempts, init.transient ?? false, hint), {
      cause: init.cause,
    });
    this.code = init.code;
    this.operation = init.operation;
    this.run = init.run;
    this.status = init.status;
    this.attempts = attempts;
    this.retried = attempts > 1;
    this.transient = init.transient ?? false;
    this.retryAfterMs = init.retryAfterMs;
    this.reason = reason;
    this.hint = hint;
  }

  /** The same error after `attempts` requests in all (the retry loop's final report). */
  withAttempts(attempts: number): WandbError {
    const init = { ...this.init(), attempts };
    return this instanceof NotFoundError ? new NotFoundError({ ...init, code: "NOT_FOUND" }) : new WandbError(init);
  }

  /** The constructor input that reproduces this error. */
  init(): WandbErrorInit {
    return {
      code: this.code,
      operation: this.operation,
      reason: this.reason,
      run: this.run,
      status: this.status,
      attempts: this.attempts,
      transient: this.transient,
      retryAfterMs: this.retryAfterMs,
      hint: this.hint,
      cause: this.cause,
    };
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      operation: this.operation,
      run: this.run,
      status: this.status,
      attempts: this.attempts,
      retried: this.retried,
      transient: this.transient,
      message: this.message,
    };
  }
}

/** W&B says the project or run does not exist (a null `project`/`run`, or HTTP 404). */
export class NotFoundError extends WandbError {
  override name = "NotFoundError";
  constructor(init: Omit<WandbErrorInit, "code"> & { code?: "NOT_FOUND" }) {
    super({ ...init, code: "NOT_FOUND", transient: false });
  }
}

export function isWandbError(e: unknown): e is WandbError {
  return e instanceof WandbError;
}

function oneLine(s: string): string {
  const t = s.replace(/\s+/g, " ").trim();
  return t.length > 500 ? `${t.slice(0, 497)}...` : t;
}

function formatMessage(
  code: WandbErrorCode,
  operation: string,
  run: string | undefined,
  reason: string,
  attempts: number,
  transient: boolean,
  hint: string | undefined,
): string {
  const what = run ? `${operation} (${run})` : operation;
  if (code === "CONFIG") return `W&B ${what}: ${reason}${hint ? `. ${hint}` : ""}`;
  let retry: string;
  if (attempts > 1) retry = `gave up after ${attempts} attempts`;
  else if (transient) retry = "not retried";
  else retry = "not retried: not a transient error";
  return `W&B ${what} failed: ${reason}; ${retry}${hint ? `. ${hint}` : ""}`;
}
