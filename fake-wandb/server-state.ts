/**
 * The state one fake server's hosts share (store, options, fault settings, stats, timers, signing secret) and what
 * both hosts do with it: sign storage URLs, count, send a reply after the modelled latency, serve file bytes and
 * byte ranges, answer an internal error.
 */
import { createHmac } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { DocumentNode, GraphQLError, GraphQLSchema } from "graphql";
import { DEFAULT_FAULTS, FaultDice, type FaultKind, type FaultSettings, mergeFaults, RateLimiter } from "./faults.js";
import { decodeSegments, JSON_TYPE, jsonReply, parseRange, type Reply } from "./http.js";
import type { FakeRun, FakeStore } from "./model.js";
import { fakeSchema, HttpStatusError } from "./resolvers.js";
import type { ShapeInfo } from "./shapes.js";
import { stringifyWire } from "./wire-json.js";

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

export interface CachedDocument {
  document: DocumentNode | null;
  /** Syntax or validation errors: answered with HTTP 400. */
  errors: readonly GraphQLError[];
  shapes: ShapeInfo | null;
}

export function emptyStats(): FakeStats {
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

export class ServerState {
  readonly apiKey: string;
  readonly redirectFiles: boolean;
  readonly sdkShapesOnly: boolean;
  readonly historySamplesCap: number;
  readonly ignoreRunFilters: boolean;
  settings: FaultSettings;
  stats = emptyStats();
  readonly dice: FaultDice;
  readonly limiter = new RateLimiter();
  readonly secret: Buffer;
  readonly timers = new Set<NodeJS.Timeout>();
  readonly docCache = new Map<string, CachedDocument>();
  readonly schema: GraphQLSchema = fakeSchema();
  closed = false;
  /** Set once both hosts listen. */
  baseUrl = "";
  storageUrl = "";

  constructor(
    readonly store: FakeStore,
    options: FakeServerOptions,
  ) {
    const seed = options.seed ?? 1;
    this.apiKey = options.apiKey;
    this.redirectFiles = options.redirectFiles ?? true;
    this.sdkShapesOnly = options.sdkShapesOnly ?? false;
    this.historySamplesCap = options.historySamplesCap ?? (this.sdkShapesOnly ? 1000 : Number.POSITIVE_INFINITY);
    this.ignoreRunFilters = options.ignoreRunFilters ?? false;
    this.settings = mergeFaults(DEFAULT_FAULTS, { ...(options.faults ?? {}) });
    this.dice = new FaultDice(seed);
    this.secret = createHmac("sha256", `fake-wandb:${seed}`).update(this.apiKey).digest();
  }

  signature(decodedPath: string): string {
    return createHmac("sha256", this.secret).update(decodedPath).digest("hex").slice(0, 40);
  }

  /** A signed storage URL for an encoded path such as /files/e/p/r/a%20b.txt. */
  signUrl(path: string): string {
    return `${this.storageUrl}${path}?token=${this.signature(decodeSegments(path).join("/"))}`;
  }

  later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  sleep(ms: number): Promise<void> {
    return ms > 0 ? new Promise((resolve) => this.later(ms, resolve)) : Promise.resolve();
  }

  countStatus(status: number | string): void {
    const k = String(status);
    this.stats.byStatus[k] = (this.stats.byStatus[k] ?? 0) + 1;
  }

  countFault(kind: FaultKind): void {
    this.stats.faults[kind] = (this.stats.faults[kind] ?? 0) + 1;
  }

  countOperation(name: string): void {
    this.stats.byOperation[name] = (this.stats.byOperation[name] ?? 0) + 1;
  }

  /** Writes a reply after the modelled latency; `fault` may be "truncated" (half the body, then a reset). */
  async send(
    req: IncomingMessage,
    res: ServerResponse,
    reply: Reply,
    opts: { costed: boolean; truncate?: boolean },
  ): Promise<void> {
    if (opts.costed) {
      await this.sleep(this.settings.latencyMs + (this.settings.latencyPerKbMs * reply.body.length) / 1024);
    }
    if (this.closed || res.destroyed) return;
    const headOnly = req.method === "HEAD";
    res.writeHead(reply.status, { "Content-Length": reply.body.length, ...reply.headers });
    this.countStatus(reply.status);
    if (headOnly) {
      res.end();
      return;
    }
    if (opts.truncate && reply.body.length >= 2) {
      const half = reply.body.subarray(0, Math.floor(reply.body.length / 2));
      this.stats.bytesOut += half.length;
      res.write(half, () => res.socket?.destroy());
      return;
    }
    if (opts.truncate) {
      res.socket?.destroy();
      return;
    }
    this.stats.bytesOut += reply.body.length;
    res.end(reply.body);
  }

  internalError(res: ServerResponse, e: unknown): void {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    if (e instanceof HttpStatusError) {
      const body = Buffer.from(stringifyWire({ errors: [{ message: e.message }] }));
      res.writeHead(e.status, { "Content-Type": JSON_TYPE, "Content-Length": body.length });
      res.end(body);
      this.countStatus(e.status);
      return;
    }
    const body = Buffer.from(stringifyWire({ errors: [{ message: `fake-wandb: ${(e as Error)?.message ?? e}` }] }));
    res.writeHead(500, { "Content-Type": JSON_TYPE, "Content-Length": body.length });
    res.end(body);
    this.countStatus(500);
  }

  /** /files/<entity>/<project>/<run>/<path>: the file's bytes or the decoded parts, or null when malformed. */
  parseFilePath(pathname: string): { run: FakeRun; name: string } | null {
    const parts = decodeSegments(pathname.slice("/files/".length));
    if (parts.length < 4) return null;
    const [entity, project, runName, ...rest] = parts;
    if (entity !== this.store.entity || project !== this.store.project) return null;
    const run = this.store.run(runName as string);
    const name = rest.join("/");
    if (!run || name === "") return null;
    return this.store.files(run).some((f) => f.name === name) ? { run, name } : null;
  }

  async sendFileBytes(
    req: IncomingMessage,
    res: ServerResponse,
    run: FakeRun,
    name: string,
    headers: Record<string, string>,
    truncate: boolean,
  ): Promise<void> {
    const content = this.store.fileContent(run, name);
    const meta = this.store.files(run).find((f) => f.name === name);
    if (!content || !meta) {
      await this.send(req, res, jsonReply(404, { error: "file not found" }, headers), { costed: true, truncate });
      return;
    }
    const extra = {
      ...headers,
      "Content-Type": meta.mimetype || "application/octet-stream",
      ETag: `"${meta.md5}"`,
      "Last-Modified": new Date(`${meta.updatedAt}Z`).toUTCString(),
    };
    await this.sendRanged(req, res, content.length, async (s, e) => content.subarray(s, e + 1), extra, truncate);
  }

  async sendRanged(
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
      await this.send(req, res, reply, { costed: true });
      return;
    }
    if (req.method === "HEAD") {
      // HEAD: the headers a GET would carry, with the full Content-Length and no body.
      res.writeHead(200, { ...base, "Content-Length": size });
      this.countStatus(200);
      res.end();
      return;
    }
    if (range === null) {
      const body = size === 0 ? Buffer.alloc(0) : await read(0, size - 1);
      await this.send(req, res, { status: 200, headers: base, body }, { costed: true, truncate });
      return;
    }
    const body = await read(range.start, range.end);
    const reply: Reply = {
      status: 206,
      headers: { ...base, "Content-Range": `bytes ${range.start}-${range.end}/${size}` },
      body,
    };
    await this.send(req, res, reply, { costed: true, truncate });
  }

  resetStats(): void {
    this.stats = emptyStats();
  }

  setFaults(f: Partial<FaultSettings>): void {
    this.settings = mergeFaults(this.settings, f as Record<string, unknown>);
    this.limiter.reset();
  }
}
