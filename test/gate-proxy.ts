/**
 * A counting HTTP proxy in front of fake-wandb's API host, for tests that must act at a known moment of a CLI run
 * (kill it while a chosen request is outstanding) instead of after a wall-clock delay. Every request is forwarded as
 * it is (method, path, headers, body; the response streamed back, redirects untouched), except the one the test
 * holds: that request is kept unanswered until the client goes away or the proxy closes.
 *
 * Requests are named by what they ask for: a GraphQL request by its operation's name (`Runs`, `HistoryPage`, ...),
 * any other by its method and first path segment (`GET /files`). A hold picks "the k-th request named X from now
 * on", which a sync makes whatever the machine's load, rather than "the n-th request", whose number varies with
 * how the client batches and prefetches.
 */
import { createServer, type IncomingMessage, request, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface GateProxy {
  /** Base URL to give the CLI as WANDB_BASE_URL. */
  readonly url: string;
  /** Requests received so far. */
  readonly count: number;
  /** The names of every request received so far, in order of arrival. */
  readonly names: readonly string[];
  /**
   * Holds the `k`-th request named `name` (a pattern matches a family of names, "*" any request; 1-based, counted
   * from now on); resolves with its path when it arrives.
   */
  holdAt(name: string | RegExp, k?: number): Promise<string>;
  /** Stops counting towards a hold and forwards everything again. */
  clearHold(): void;
  close(): Promise<void>;
}

/** A request's name: its GraphQL operation (from the body's operationName or the document), else method + path. */
export function requestName(method: string, path: string, body: Buffer): string {
  if (path.startsWith("/graphql")) {
    try {
      const parsed = JSON.parse(body.toString("utf8")) as { operationName?: unknown; query?: unknown };
      if (typeof parsed.operationName === "string" && parsed.operationName !== "") return parsed.operationName;
      const m = typeof parsed.query === "string" ? /\b(?:query|mutation)\s+([A-Za-z_]\w*)/.exec(parsed.query) : null;
      if (m) return m[1]!;
    } catch {
      // not JSON: named by its path below
    }
  }
  return `${method} /${path.split("/")[1]?.split("?")[0] ?? ""}`;
}

export async function startGateProxy(target: string): Promise<GateProxy> {
  const to = new URL(target);
  let count = 0;
  const names: string[] = [];
  let hold: { matches: (name: string) => boolean; left: number; arrived: (path: string) => void } | null = null;
  const held = new Set<ServerResponse>();

  const forward = (req: IncomingMessage, body: Buffer, res: ServerResponse) => {
    const upstream = request(
      {
        host: to.hostname,
        port: to.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: to.host },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    upstream.end(body);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const name = requestName(req.method ?? "GET", req.url ?? "/", body);
      count++;
      names.push(name);
      if (hold?.matches(name) && --hold.left === 0) {
        const { arrived } = hold;
        hold = null;
        held.add(res);
        res.on("close", () => held.delete(res));
        arrived(req.url ?? "");
        return;
      }
      forward(req, body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    get count() {
      return count;
    },
    get names() {
      return names;
    },
    holdAt(name: string | RegExp, k = 1): Promise<string> {
      const matches = (n: string) => (typeof name === "string" ? name === "*" || name === n : name.test(n));
      return new Promise((arrived) => {
        hold = { matches, left: k, arrived };
      });
    },
    clearHold() {
      hold = null;
    },
    async close() {
      for (const res of held) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
