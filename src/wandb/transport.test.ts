import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { gzipSync } from "node:zlib";
import { collectionsRun } from "../model/heap.js";
import type { JsonObject } from "../model/json.js";
import { WandbError } from "./errors.js";
import { RateGovernor } from "./governor.js";
import { LARGE_HEAP_BYTES, readAll, Transport } from "./transport.js";

const KEY = "transport-test-key-0123456789abcdefghijklmnop";
const AUTH = `Basic ${Buffer.from(`api:${KEY}`).toString("base64")}`;

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

interface Stub {
  url: string;
  hits: IncomingMessage[];
  handle(h: Handler): void;
  close(): Promise<void>;
}

async function stub(): Promise<Stub> {
  let handler: Handler = (_q, res) => res.end();
  const hits: IncomingMessage[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req);
    req.resume();
    req.on("end", () => handler(req, res, hits.length));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    handle(h) {
      handler = h;
      hits.length = 0;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const b = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { "content-type": "application/json", "content-length": b.length, ...headers });
  res.end(b);
}

/** A promise and the function that resolves it (a server answer held until the test lets it go). */
function latch(): { held: Promise<void>; release: () => void } {
  let release: () => void = () => {};
  const held = new Promise<void>((r) => {
    release = r;
  });
  return { held, release };
}

describe("Transport", () => {
  let a: Stub;
  let b: Stub;
  const waits: number[] = [];
  const make = (extra: Partial<ConstructorParameters<typeof Transport>[0]> = {}) =>
    new Transport({
      baseUrl: a.url,
      apiKey: KEY,
      timeoutMs: 300,
      downloadTimeoutMs: 300,
      retry: { maxAttempts: 4, minDelayMs: 1, maxDelayMs: 5 },
      sleep: async (ms) => {
        waits.push(ms);
      },
      random: () => 0.5,
      ...extra,
    });

  before(async () => {
    a = await stub();
    b = await stub();
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  test("a GraphQL request: POST {base}/graphql with Basic api:<key>, returns data", async () => {
    a.handle((_q, res) => json(res, 200, { data: { viewer: { id: "x" } } }));
    const t = make();
    const data = await t.graphql("Viewer", "query Viewer { viewer { id } }", {});
    assert.deepEqual(data, { viewer: { id: "x" } });
    assert.equal(a.hits[0]!.url, "/graphql");
    assert.equal(a.hits[0]!.method, "POST");
    assert.equal(a.hits[0]!.headers.authorization, AUTH);
    assert.deepEqual(t.stats().byOperation, { Viewer: 1 });
    assert.ok(t.stats().bytes > 0);
    await t.close();
  });

  test("NaN, Infinity and big integers in the body survive", async () => {
    a.handle((_q, res) => {
      const body = Buffer.from('{"data":{"x":NaN,"y":-Infinity,"z":12345678901234567890}}');
      res.writeHead(200, { "content-length": body.length });
      res.end(body);
    });
    const t = make();
    const data = await t.graphql("X", "query X { x }", {});
    assert.ok(Number.isNaN(data.x));
    assert.equal(data.y, Number.NEGATIVE_INFINITY);
    assert.equal(data.z, 12345678901234567890n);
    await t.close();
  });

  test("gzip bodies are decoded", async () => {
    a.handle((_q, res) => {
      const body = gzipSync(Buffer.from('{"data":{"ok":true}}'));
      res.writeHead(200, { "content-encoding": "gzip", "content-length": body.length });
      res.end(body);
    });
    const t = make();
    assert.deepEqual(await t.graphql("X", "query X { ok }", {}), { ok: true });
    await t.close();
  });

  for (const status of [400, 401, 403, 404, 409, 410, 413, 422, 501]) {
    test(`HTTP ${status} is not retried`, async () => {
      a.handle((_q, res) => json(res, status, { errors: [{ message: `failure ${status}` }] }));
      const t = make();
      await assert.rejects(t.graphql("Runs", "query Runs { x }", {}, { run: "e/p" }), (e: unknown) => {
        assert.ok(e instanceof WandbError);
        assert.equal(e.status, status);
        assert.equal(e.attempts, 1);
        assert.equal(e.retried, false);
        assert.match(
          e.message,
          new RegExp(`^W&B Runs \\(e/p\\) failed: HTTP ${status}: failure ${status}; not retried`),
        );
        return true;
      });
      assert.equal(a.hits.length, 1);
      await t.close();
    });
  }

  test("401 gives AUTH with advice and without the key", async () => {
    a.handle((q, res) =>
      json(res, 401, { errors: [{ message: `user is not logged in (${q.headers.authorization})` }] }),
    );
    const t = make();
    await assert.rejects(t.graphql("Viewer", "query Viewer { viewer { id } }", {}), (e: unknown) => {
      assert.ok(e instanceof WandbError);
      assert.equal(e.code, "AUTH");
      assert.match(e.message, /WANDB_API_KEY/);
      assert.ok(!e.message.includes(KEY));
      assert.ok(!e.message.includes(AUTH.slice(6)));
      return true;
    });
    await t.close();
  });

  test("5xx is retried with backoff until it succeeds; {error} and {errors:[str]} bodies are read", async () => {
    waits.length = 0;
    a.handle((_q, res, n) => {
      if (n === 1) json(res, 500, { error: "internal database error" });
      else if (n === 2) json(res, 502, { errors: ["Server down"] });
      else json(res, 200, { data: { ok: 1 } });
    });
    const t = make();
    assert.deepEqual(await t.graphql("Runs", "query Runs { ok }", {}), { ok: 1 });
    assert.equal(a.hits.length, 3);
    assert.equal(waits.length, 2);
    assert.equal(t.stats().retries, 2);
    await t.close();
  });

  test("5xx until the attempts run out: SERVER, retried, message says so", async () => {
    a.handle((_q, res) => json(res, 503, { error: "unavailable" }));
    const t = make();
    await assert.rejects(t.graphql("Runs", "query Runs { ok }", {}), (e: unknown) => {
      assert.ok(e instanceof WandbError);
      assert.equal(e.code, "SERVER");
      assert.equal(e.attempts, 4);
      assert.equal(e.retried, true);
      assert.equal(e.transient, true);
      assert.match(e.message, /HTTP 503: unavailable; gave up after 4 attempts/);
      return true;
    });
    assert.equal(a.hits.length, 4);
    await t.close();
  });

  test("waiting requests go in the order their runs were first seen (a run started earlier first)", async () => {
    const seen: string[] = [];
    const { held: firstHeld, release: releaseFirst } = latch();
    a.handle((req, res) => {
      void (async () => {
        const tag = decodeURIComponent(new URL(req.url ?? "/", "http://x").searchParams.get("tag") ?? "");
        seen.push(tag);
        if (seen.length === 1) await firstHeld;
        json(res, 200, { data: { ok: tag } });
      })();
    });
    const governor = new RateGovernor({ initialConcurrency: 1, maxConcurrency: 1 });
    const t = make({ governor, baseUrl: a.url });
    // The stub reads the request's tag from its query string: openGet on the API host takes a governor slot too.
    const get = (tag: string, run: string) =>
      t.openGet(`${a.url}/file?tag=${encodeURIComponent(tag)}`, { operation: "file", run }).then(async (r) => {
        await r.body.text();
      });
    const all = [get("A1", "e/p/A")];
    while (seen.length === 0) await delay(1);
    all.push(get("B1", "e/p/B"), get("A2", "e/p/A"), get("C1", "e/p/C"), get("B2", "e/p/B"));
    while (governor.stats().waiting < 4) await delay(1);
    releaseFirst();
    await Promise.all(all);
    assert.deepEqual(seen, ["A1", "A2", "B1", "B2", "C1"]);
    await t.close();
  });

  test("a batched document waits with the earliest of its runs' ranks", async () => {
    const seen: string[] = [];
    const { held: firstHeld, release: releaseFirst } = latch();
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => {
        body += c;
      });
      req.on("end", () => {
        void (async () => {
          const op = (JSON.parse(body) as { operationName: string }).operationName;
          seen.push(op);
          if (seen.length === 1) await firstHeld;
          json(res, 200, { data: { ok: op } });
        })();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const governor = new RateGovernor({ initialConcurrency: 1, maxConcurrency: 1 });
    const t = make({ governor, baseUrl: url });
    try {
      const q = (op: string, options: { run?: string; runs?: string[] }) =>
        t.graphql(op, `query ${op} { ok }`, {}, options);
      const all = [q("A", { run: "e/p/A" })];
      while (seen.length === 0) await delay(1);
      all.push(q("B", { run: "e/p/B" }), q("C", { run: "e/p/C" }));
      // a batch of C and A, labelled as batches are: it goes before B (A was seen first), not after C
      all.push(q("CA", { run: "e/p (2 runs)", runs: ["e/p/C", "e/p/A"] }));
      while (governor.stats().waiting < 3) await delay(1);
      releaseFirst();
      await Promise.all(all);
      assert.deepEqual(seen, ["A", "CA", "B", "C"]);
    } finally {
      releaseFirst();
      await t.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test("429 waits out Retry-After (and pauses the shared governor)", async () => {
    waits.length = 0;
    const governor = new RateGovernor({ initialConcurrency: 8 });
    a.handle((_q, res, n) => {
      if (n === 1) json(res, 429, { error: "rate limit exceeded" }, { "retry-after": "0.05" });
      else json(res, 200, { data: { ok: 1 } });
    });
    const t = make({ governor });
    assert.deepEqual(await t.graphql("Runs", "query Runs { ok }", {}), { ok: 1 });
    assert.deepEqual(waits, [50]);
    assert.equal(governor.limit, 4);
    assert.equal(governor.stats().rateLimited, 1);
    await t.close();
  });

  test("a successful answer that spends the budget (RateLimit-Remaining 0) pauses everyone until RateLimit-Reset", async () => {
    const governor = new RateGovernor({ initialConcurrency: 8 });
    a.handle((_q, res) => json(res, 200, { data: { ok: 1 } }, { "ratelimit-remaining": "0", "ratelimit-reset": "2" }));
    const t = make({ governor });
    const before = Date.now();
    await t.graphql("Runs", "query Runs { ok }", {});
    assert.ok(governor.pausedUntilMs >= before + 1900, `paused until ${governor.pausedUntilMs - before} ms from now`);
    assert.equal(governor.stats().rateLimited, 0, "no 429 was needed");
    a.handle((_q, res) => json(res, 200, { data: { ok: 1 } }, { "ratelimit-remaining": "3", "ratelimit-reset": "2" }));
    const g2 = new RateGovernor({ initialConcurrency: 8 });
    const t2 = make({ governor: g2 });
    await t2.graphql("Runs", "query Runs { ok }", {});
    assert.equal(g2.pausedUntilMs, 0, "budget left: no pause");
    await t.close();
    await t2.close();
  });

  test("RateLimit-Reset is honoured when there is no Retry-After", async () => {
    waits.length = 0;
    a.handle((_q, res, n) => {
      if (n === 1) json(res, 429, { error: "rate limit exceeded" }, { "ratelimit-reset": "0.02" });
      else json(res, 200, { data: { ok: 1 } });
    });
    const t = make();
    await t.graphql("Runs", "query Runs { ok }", {});
    assert.deepEqual(waits, [20]);
    await t.close();
  });

  test("a body cut short (Content-Length mismatch, then close) is retried", async () => {
    a.handle((_q, res, n) => {
      const body = Buffer.from(JSON.stringify({ data: { rows: "x".repeat(5000) } }));
      if (n === 1) {
        res.writeHead(200, { "content-length": body.length });
        res.write(body.subarray(0, 100), () => res.socket?.destroy());
      } else {
        res.writeHead(200, { "content-length": body.length });
        res.end(body);
      }
    });
    const t = make();
    const data = await t.graphql("HistoryPage", "query HistoryPage { rows }", {});
    assert.equal((data.rows as string).length, 5000);
    assert.equal(a.hits.length, 2);
    await t.close();
  });

  test("JSON that does not parse (cut body with a matching length) is retried", async () => {
    a.handle((_q, res, n) => {
      const body = Buffer.from(n === 1 ? '{"data":{"rows":["a","b' : '{"data":{"rows":[]}}');
      res.writeHead(200, { "content-length": body.length });
      res.end(body);
    });
    const t = make();
    assert.deepEqual(await t.graphql("HistoryPage", "query HistoryPage { rows }", {}), { rows: [] });
    assert.equal(a.hits.length, 2);
    await t.close();
  });

  test("a connection reset is retried", async () => {
    a.handle((_q, res, n) => {
      if (n === 1) res.socket?.destroy();
      else json(res, 200, { data: { ok: 1 } });
    });
    const t = make();
    assert.deepEqual(await t.graphql("Runs", "query Runs { ok }", {}), { ok: 1 });
    await t.close();
  });

  test("a stalled response times out per attempt and is retried", async () => {
    a.handle((_q, res, n) => {
      if (n === 1) return; // never answer
      if (n === 2) {
        res.writeHead(200, { "content-length": 100 });
        res.write('{"data":'); // headers, then a stalled body
        return;
      }
      json(res, 200, { data: { ok: 1 } });
    });
    const t = make({ timeoutMs: 150 });
    const start = Date.now();
    assert.deepEqual(await t.graphql("Runs", "query Runs { ok }", {}), { ok: 1 });
    assert.equal(a.hits.length, 3);
    assert.ok(Date.now() - start >= 290);
    await t.close();
  });

  test("a stall on every attempt ends in TIMEOUT", async () => {
    a.handle(() => {});
    const t = make({ timeoutMs: 50, retry: { maxAttempts: 2, minDelayMs: 1, maxDelayMs: 1 } });
    await assert.rejects(t.graphql("Runs", "query Runs { ok }", {}), (e: unknown) => {
      assert.ok(e instanceof WandbError);
      assert.equal(e.code, "TIMEOUT");
      assert.equal(e.attempts, 2);
      return true;
    });
    await t.close();
  });

  test("HTTP 200 with transient GraphQL errors is retried; other GraphQL errors are not", async () => {
    a.handle((_q, res, n) => {
      if (n === 1)
        json(res, 200, { errors: [{ message: "An internal error occurred. Please contact support." }], data: null });
      else json(res, 200, { data: { ok: 1 } });
    });
    const t = make();
    assert.deepEqual(await t.graphql("Runs", "query Runs { ok }", {}), { ok: 1 });
    a.handle((_q, res) => json(res, 200, { errors: [{ message: 'Cannot query field "nope" on type "Run".' }] }));
    await assert.rejects(t.graphql("Runs", "query Runs { nope }", {}), (e: unknown) => {
      assert.ok(e instanceof WandbError);
      assert.equal(e.code, "GRAPHQL");
      assert.equal(e.transient, false);
      assert.equal(e.attempts, 1);
      return true;
    });
    await t.close();
  });

  test("an aborted signal stops the request with its reason", async () => {
    a.handle(() => {});
    const t = make({ timeoutMs: 5000 });
    const ac = new AbortController();
    const reason = new Error("user cancelled");
    setTimeout(() => ac.abort(reason), 30);
    await assert.rejects(
      t.graphql("Runs", "query Runs { ok }", {}, { signal: ac.signal }),
      (e: unknown) => e === reason,
    );
    await t.close();
  });

  test("openGet: credentials only on the base origin, dropped across origins and re-added on the way back", async () => {
    a.handle((q, res) => {
      if (q.url === "/files/x") {
        res.writeHead(302, { location: `${b.url}/signed/x` });
        res.end();
      } else {
        res.writeHead(200, { "content-length": 2 });
        res.end("ok");
      }
    });
    b.handle((_q, res) => {
      res.writeHead(307, { location: `${a.url}/final` });
      res.end();
    });
    const t = make();
    const res = await t.openGet(`${a.url}/files/x`, { operation: "downloadFile" });
    assert.equal(await res.body.text(), "ok");
    assert.equal(res.url, `${a.url}/final`);
    assert.equal(a.hits.length, 2);
    assert.equal(a.hits[0]!.headers.authorization, AUTH);
    assert.equal(a.hits[1]!.headers.authorization, AUTH);
    assert.equal(b.hits.length, 1);
    assert.equal(b.hits[0]!.headers.authorization, undefined);
    assert.equal(t.stats().byOperation.downloadFile, 3);
    await t.close();
  });

  test("openGet: API-host hops take a governor slot and report their RateLimit-* headers; storage hops do not", async () => {
    a.handle((q, res) => {
      if (q.url === "/files/x") {
        res.writeHead(302, {
          location: `${b.url}/signed/x`,
          "ratelimit-limit": "1000",
          "ratelimit-remaining": "750",
          "ratelimit-reset": "1",
        });
        res.end();
      } else json(res, 429, { error: "rate limit exceeded" }, { "retry-after": "0.01" });
    });
    b.handle((_q, res) => {
      res.writeHead(200, { "content-length": 2 });
      res.end("ok");
    });
    const governor = new RateGovernor({ initialConcurrency: 8 });
    const t = make({ governor });
    const res = await t.openGet(`${a.url}/files/x`, { operation: "downloadFile" });
    assert.equal(await res.body.text(), "ok");
    assert.equal(governor.stats().granted, 1, "one slot: the API hop, not the signed URL");
    assert.equal(governor.stats().inFlight, 0, "released once the headers arrived");
    assert.equal(governor.pacing?.capacity, 4, "learned from the 302's headers (0-1000 scale)");
    await assert.rejects(t.openGet(`${a.url}/files/y`, { operation: "downloadFile" }), /HTTP 429/);
    assert.equal(governor.stats().rateLimited, 1);
    assert.equal(governor.stats().inFlight, 0);
    await t.close();
  });

  test("GraphQL answers teach the governor the window's budget; answers without headers teach nothing", async () => {
    a.handle((_q, res) =>
      json(
        res,
        200,
        { data: { ok: 1 } },
        { "ratelimit-limit": "5", "ratelimit-remaining": "4", "ratelimit-reset": "1" },
      ),
    );
    const governor = new RateGovernor({ initialConcurrency: 8 });
    const t = make({ governor });
    await t.graphql("Runs", "query Runs { ok }", {});
    assert.deepEqual(governor.pacing, { capacity: 5, windowMs: 1000, spacingMs: 1000 / (5 * 0.95) });
    a.handle((_q, res) => json(res, 200, { data: { ok: 1 } }));
    const g2 = new RateGovernor({ initialConcurrency: 8 });
    const t2 = make({ governor: g2 });
    for (let i = 0; i < 5; i++) await t2.graphql("Runs", "query Runs { ok }", {});
    assert.equal(g2.pacing, null);
    assert.equal(g2.nextStartMs, 0);
    await t.close();
    await t2.close();
  });

  test("a refused connection is retried only maxConnectAttempts times", async () => {
    const closed = await stub();
    const url = closed.url;
    await closed.close();
    const t = new Transport({ baseUrl: url, apiKey: KEY, retry: { minDelayMs: 1, maxDelayMs: 2 } });
    await assert.rejects(t.graphql("RunCount", "query RunCount { x }", {}, { run: "e/p" }), (e: unknown) => {
      assert.ok(e instanceof WandbError);
      assert.equal(e.code, "NETWORK");
      assert.equal(e.attempts, 3);
      assert.match(e.message, /ECONNREFUSED/);
      return true;
    });
    await t.close();
  });

  test("an HTML page instead of GraphQL JSON is not retried and says to check the base URL", async () => {
    a.handle((_q, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<html>hello</html>");
    });
    const t = make();
    await assert.rejects(t.graphql("Viewer", "query Viewer { viewer { id } }", {}), (e: unknown) => {
      assert.ok(e instanceof WandbError);
      assert.equal(e.code, "PROTOCOL");
      assert.equal(e.attempts, 1);
      assert.match(e.message, /did not answer with GraphQL JSON \(text\/html: hello\); is the base URL a W&B server\?/);
      return true;
    });
    a.handle((_q, res) => json(res, 404, { error: "not found" }));
    await assert.rejects(
      t.graphql("Viewer", "query Viewer { viewer { id } }", {}),
      (e: unknown) => e instanceof WandbError && /not a W&B GraphQL endpoint/.test(e.message) && e.attempts === 1,
    );
    await t.close();
  });

  test("openGet: more than 10 redirects is an error", async () => {
    a.handle((_q, res) => {
      res.writeHead(302, { location: "/again" });
      res.end();
    });
    const t = make();
    await assert.rejects(
      t.openGet(`${a.url}/loop`, { operation: "downloadFile" }),
      (e: unknown) => e instanceof WandbError && /redirects/.test(e.message),
    );
    await t.close();
  });
  test("a large GraphQL answer is followed by one garbage collection once parsed (above the heap size asked for); a small one is not", async () => {
    // A history window's answer: rows as JSON strings, as W&B sends them.
    const rows = (n: number) =>
      Array.from({ length: n }, (_, i) => JSON.stringify({ _step: i, loss: i / 7, note: "x".repeat(200) }));
    const big = rows(40_000); // ~10 MB, over LARGE_ANSWER_BYTES
    // the first request gets a small answer, the second the large one
    a.handle((_q, res, n) => json(res, 200, { data: { project: { run: { history: n === 1 ? rows(10) : big } } } }));
    const t = make({ timeoutMs: 120_000, collectAboveHeapBytes: 0 });
    const before = collectionsRun();
    const small = await t.graphql("HistoryPage", "query HistoryPage { x }", {});
    assert.equal(collectionsRun(), before);
    assert.deepEqual(((small.project as JsonObject).run as JsonObject).history, rows(10));
    const data = await t.graphql("HistoryPage", "query HistoryPage { x }", {});
    assert.equal(collectionsRun(), before + 1);
    // the answer itself is whole
    assert.deepEqual(((data.project as JsonObject).run as JsonObject).history, big);
    await t.close();
    // by default (a library user's process) a large answer is left to V8
    a.handle((_q, res) => json(res, 200, { data: { project: { run: { history: big } } } }));
    const calm = make({ timeoutMs: 120_000 });
    const n = collectionsRun();
    await calm.graphql("HistoryPage", "query HistoryPage { x }", {});
    assert.equal(collectionsRun(), n);
    await calm.close();
    // the commands' heap size: 96 MiB unless DR_WANDB_LARGE_HEAP_MB says otherwise
    if (process.env.DR_WANDB_LARGE_HEAP_MB === undefined) assert.equal(LARGE_HEAP_BYTES, 96 * 2 ** 20);
  });
});

describe("readAll", () => {
  async function* chunks(parts: string[]): AsyncGenerator<Buffer> {
    for (const p of parts) yield Buffer.from(p);
  }
  const parts = ['{"data":', '{"a":[1,2,3]', ',"b":"é"}}'];
  const whole = Buffer.from(parts.join(""));

  test("with the announced length: the same bytes, each counted", async () => {
    let counted = 0;
    const got = await readAll(chunks(parts), (n) => (counted += n), undefined, whole.length);
    assert.deepEqual(got, whole);
    assert.equal(counted, whole.length);
  });

  test("a body longer or shorter than announced comes back whole, as received", async () => {
    assert.deepEqual(await readAll(chunks(parts), () => {}, undefined, 5), whole);
    const short = await readAll(chunks(parts), () => {}, undefined, whole.length + 10);
    assert.deepEqual(short, whole);
    assert.equal(short.length, whole.length, "the caller sees the shortfall in the length");
    assert.deepEqual(await readAll(chunks(parts), () => {}), whole);
    // a bogus announcement (a terabyte) is not allocated in advance: the body is read as it comes
    assert.deepEqual(await readAll(chunks(parts), () => {}, undefined, 2 ** 40), whole);
  });
});
