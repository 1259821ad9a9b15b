/**
 * A counting HTTP proxy in front of fake-wandb's API host, for tests that must act at a known moment of a CLI run
 * (kill it while request N is outstanding) instead of after a wall-clock delay. Every request is forwarded as it is
 * (method, path, headers, body; the response streamed back, redirects untouched), except the one the test holds:
 * that request is kept unanswered until the client goes away or the proxy closes.
 */
import { createServer, type IncomingMessage, request, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface GateProxy {
  /** Base URL to give the CLI as WANDB_BASE_URL. */
  readonly url: string;
  /** Requests received so far. */
  readonly count: number;
  /** Holds the `n`-th request (1-based, counted from now on); resolves with its path when it arrives. */
  holdAt(n: number): Promise<string>;
  /** Stops counting towards a hold and forwards everything again. */
  clearHold(): void;
  close(): Promise<void>;
}

export async function startGateProxy(target: string): Promise<GateProxy> {
  const to = new URL(target);
  let count = 0;
  let hold: { at: number; arrived: (path: string) => void } | null = null;
  const held = new Set<ServerResponse>();

  const forward = (req: IncomingMessage, res: ServerResponse) => {
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
    req.pipe(upstream);
  };

  const server = createServer((req, res) => {
    count++;
    if (hold !== null && count === hold.at) {
      held.add(res);
      res.on("close", () => held.delete(res));
      req.resume();
      hold.arrived(req.url ?? "");
      return;
    }
    forward(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    get count() {
      return count;
    },
    holdAt(n: number): Promise<string> {
      return new Promise((arrived) => {
        hold = { at: count + n, arrived };
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
