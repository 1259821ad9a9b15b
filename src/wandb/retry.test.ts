import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { NotFoundError, WandbError } from "./errors.js";
import { redact, registerSecret, unregisterSecret } from "./redact.js";
import {
  backoffDelay,
  classifyNetworkError,
  classifyStatus,
  DEFAULT_RETRY,
  errorMessages,
  isTransientGraphqlMessage,
  serverWaitMs,
  withRetry,
} from "./retry.js";

describe("backoff", () => {
  test("full jitter: random() * min(max, min * 2^(retry-1))", () => {
    const r = DEFAULT_RETRY;
    assert.equal(
      backoffDelay(1, r, () => 0.999999),
      499,
    );
    assert.equal(
      backoffDelay(2, r, () => 0.5),
      500,
    );
    assert.equal(
      backoffDelay(3, r, () => 1 - 1e-9),
      1999,
    );
    assert.equal(
      backoffDelay(20, r, () => 1 - 1e-9),
      29_999,
    );
    assert.equal(
      backoffDelay(5, r, () => 0),
      0,
    );
  });

  test("Retry-After in seconds, as an HTTP date, and RateLimit-Reset", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    assert.equal(serverWaitMs({ "retry-after": "3" }, now), 3000);
    assert.equal(serverWaitMs({ "retry-after": "1.5" }, now), 1500);
    assert.equal(serverWaitMs({ "retry-after": new Date(now + 7000).toUTCString() }, now), 7000);
    assert.equal(serverWaitMs({ "retry-after": new Date(now - 7000).toUTCString() }, now), 0);
    assert.equal(serverWaitMs({ "ratelimit-reset": "2" }, now), 2000);
    assert.equal(serverWaitMs({ "retry-after": "4", "ratelimit-reset": "2" }, now), 4000);
    assert.equal(serverWaitMs({ "retry-after": "soon" }, now), undefined);
    assert.equal(serverWaitMs({}, now), undefined);
  });
});

describe("classification", () => {
  test("statuses", () => {
    for (const s of [400, 409, 413, 422])
      assert.deepEqual(classifyStatus(s), { code: "BAD_REQUEST", transient: false });
    assert.deepEqual(classifyStatus(401), { code: "AUTH", transient: false });
    assert.deepEqual(classifyStatus(403), { code: "AUTH", transient: false });
    assert.deepEqual(classifyStatus(404), { code: "NOT_FOUND", transient: false });
    assert.deepEqual(classifyStatus(410), { code: "NOT_FOUND", transient: false });
    assert.deepEqual(classifyStatus(501), { code: "SERVER", transient: false });
    assert.deepEqual(classifyStatus(429), { code: "RATE_LIMITED", transient: true });
    for (const s of [500, 502, 503, 504]) assert.deepEqual(classifyStatus(s), { code: "SERVER", transient: true });
  });

  test("GraphQL messages that look transient", () => {
    assert.ok(isTransientGraphqlMessage("An internal error occurred. Please contact support."));
    assert.ok(isTransientGraphqlMessage('Post "http://x/search": context deadline exceeded'));
    assert.ok(isTransientGraphqlMessage("service unavailable, try again"));
    assert.ok(isTransientGraphqlMessage("rate limit exceeded"));
    assert.ok(!isTransientGraphqlMessage('Cannot query field "foo" on type "Run"'));
    assert.ok(!isTransientGraphqlMessage("permission denied"));
  });

  test("error bodies in every W&B shape", () => {
    assert.deepEqual(errorMessages({ error: "rate limit exceeded" }), ["rate limit exceeded"]);
    assert.deepEqual(errorMessages({ errors: ["Server down"] }), ["Server down"]);
    assert.deepEqual(errorMessages({ errors: [{ message: "a" }, { message: "b" }] }), ["a", "b"]);
    assert.deepEqual(errorMessages({ data: {} }), []);
    assert.deepEqual(errorMessages("text"), []);
  });

  test("network errors: resets transient, timeouts TIMEOUT, unknown not transient", () => {
    const reset = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
    assert.equal(classifyNetworkError(reset, { operation: "Runs" }).transient, true);
    assert.equal(classifyNetworkError(reset, { operation: "Runs" }).code, "NETWORK");
    const t = classifyNetworkError(new Error("aborted"), { operation: "Runs", timedOut: true, timeoutMs: 2000 });
    assert.equal(t.code, "TIMEOUT");
    assert.equal(t.transient, true);
    const cause = new Error("other side closed");
    const wrapped = Object.assign(new Error("fetch failed", { cause }), {});
    Object.assign(cause, { code: "UND_ERR_SOCKET" });
    assert.equal(classifyNetworkError(wrapped, { operation: "Runs" }).transient, true);
    assert.equal(classifyNetworkError(new Error("weird"), { operation: "Runs" }).transient, false);
  });
});

describe("withRetry", () => {
  const fast = { ...DEFAULT_RETRY, maxAttempts: 4 };

  test("retries transient errors with the backoff, then succeeds", async () => {
    const waits: number[] = [];
    let n = 0;
    const v = await withRetry(
      { operation: "Runs", retry: fast, sleep: async (ms) => void waits.push(ms), random: () => 0.5 },
      async () => {
        n++;
        if (n < 3) throw new WandbError({ code: "SERVER", operation: "Runs", reason: "HTTP 502", transient: true });
        return "ok";
      },
    );
    assert.equal(v, "ok");
    assert.equal(n, 3);
    assert.deepEqual(waits, [250, 500]);
  });

  test("honours the server's wait, capped by maxServerWaitMs", async () => {
    const waits: number[] = [];
    let n = 0;
    await withRetry(
      {
        operation: "Runs",
        retry: { ...fast, maxServerWaitMs: 5000 },
        sleep: async (ms) => void waits.push(ms),
        random: () => 0.5,
      },
      async () => {
        n++;
        if (n === 1)
          throw new WandbError({
            code: "RATE_LIMITED",
            operation: "Runs",
            reason: "429",
            transient: true,
            retryAfterMs: 1200,
          });
        if (n === 2)
          throw new WandbError({
            code: "RATE_LIMITED",
            operation: "Runs",
            reason: "429",
            transient: true,
            retryAfterMs: 999_000,
          });
        return 1;
      },
    );
    assert.deepEqual(waits, [1200, 5000]);
  });

  test("gives up after maxAttempts and says so", async () => {
    let n = 0;
    await assert.rejects(
      withRetry(
        { operation: "HistoryPage", run: "e/p/r", retry: fast, sleep: async () => {}, random: () => 0 },
        async () => {
          n++;
          throw new WandbError({
            code: "SERVER",
            operation: "HistoryPage",
            run: "e/p/r",
            reason: "HTTP 503",
            transient: true,
          });
        },
      ),
      (e: unknown) => {
        assert.ok(e instanceof WandbError);
        assert.equal(e.attempts, 4);
        assert.equal(e.retried, true);
        assert.equal(e.code, "SERVER");
        assert.match(e.message, /^W&B HistoryPage \(e\/p\/r\) failed: HTTP 503; gave up after 4 attempts$/);
        return true;
      },
    );
    assert.equal(n, 4);
  });

  test("never retries a terminal error", async () => {
    let n = 0;
    await assert.rejects(
      withRetry({ operation: "Run", retry: fast, sleep: async () => {}, random: () => 0 }, async () => {
        n++;
        throw new WandbError({
          code: "AUTH",
          operation: "Run",
          status: 401,
          reason: "HTTP 401: user is not logged in",
        });
      }),
      (e: unknown) => e instanceof WandbError && e.attempts === 1 && !e.retried && /not retried/.test(e.message),
    );
    assert.equal(n, 1);
  });

  test("an abort stops the loop with the signal's reason", async () => {
    const ac = new AbortController();
    const reason = new Error("stop");
    let n = 0;
    await assert.rejects(
      withRetry(
        {
          operation: "Runs",
          retry: fast,
          signal: ac.signal,
          sleep: async () => {
            ac.abort(reason);
          },
          random: () => 0,
        },
        async () => {
          n++;
          throw new WandbError({ code: "SERVER", operation: "Runs", reason: "x", transient: true });
        },
      ),
      (e: unknown) => e === reason,
    );
    assert.equal(n, 1);
  });

  test("NotFoundError keeps its class through the retry loop", async () => {
    await assert.rejects(
      withRetry({ operation: "Run", retry: fast, sleep: async () => {}, random: () => 0 }, async () => {
        throw new NotFoundError({ operation: "Run", reason: "run e/p/r not found" });
      }),
      (e: unknown) => e instanceof NotFoundError && e.code === "NOT_FOUND",
    );
  });
});

describe("redaction", () => {
  const key = "secret-0123456789abcdefghijklmnopqrstuvwxyz";

  test("registered keys and their encodings are removed from any text", () => {
    registerSecret(key);
    try {
      const b64 = Buffer.from(`api:${key}`).toString("base64");
      const out = redact(`key=${key} header: Basic ${b64} url ${encodeURIComponent(key)}`);
      assert.ok(!out.includes(key));
      assert.ok(!out.includes(b64));
      assert.match(out, /\[REDACTED\]/);
    } finally {
      unregisterSecret(key);
    }
  });

  test("credential shapes are masked even when the secret is unknown", () => {
    assert.equal(redact("Authorization: Basic YXBpOnh4eHh4eHh4eHh4eHh4eA=="), "Authorization: [REDACTED]");
    assert.equal(redact("machine h login u password hunter2"), "machine h login u password [REDACTED]");
    assert.match(redact("api_key=abcdef123"), /api_key=\[REDACTED\]/);
  });

  test("WandbError messages never carry a registered key, even when the server echoes it", () => {
    registerSecret(key);
    try {
      const e = new WandbError({ code: "AUTH", operation: "Viewer", status: 401, reason: `HTTP 401: bad key ${key}` });
      assert.ok(!e.message.includes(key));
      assert.ok(!JSON.stringify(e).includes(key));
      assert.match(e.message, /W&B Viewer failed: HTTP 401: bad key \[REDACTED\]; not retried/);
    } finally {
      unregisterSecret(key);
    }
  });
});
