/**
 * The HTTP half of fake-wandb: the API host (POST /graphql, authenticated GET /files/..., and the /_fake/* control
 * endpoints) and a second "storage host" on another port that serves signed file and parquet-export URLs without
 * auth, as Google Cloud Storage does for the real W&B.
 *
 * This file starts and stops the two hosts over one ServerState (server-state.ts); what they answer is api-host.ts,
 * storage-host.ts and control.ts, with http.ts (request and reply helpers) and fault-replies.ts (faults as HTTP).
 */

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { handleApi } from "./api-host.js";
import type { FaultSettings } from "./faults.js";
import type { FakeStore } from "./model.js";
import { type FakeServerOptions, type FakeStats, ServerState } from "./server-state.js";
import { handleStorage } from "./storage-host.js";

export type { AuthLeak, FakeServerOptions, FakeStats } from "./server-state.js";

export interface FakeServer {
  url: string;
  storageUrl: string;
  stats(): FakeStats;
  resetStats(): void;
  setFaults(f: Partial<FaultSettings>): void;
  faults(): FaultSettings;
  close(): Promise<void>;
}

export async function startFakeServer(store: FakeStore, options: FakeServerOptions): Promise<FakeServer> {
  const host = options.host ?? "127.0.0.1";
  const st = new ServerState(store, options);

  // Idle keep-alive connections live long (as behind Google's front end), so pooled client sockets stay valid.
  const serverOptions = { keepAliveTimeout: 120_000, headersTimeout: 130_000 };
  const apiServer = createServer(serverOptions, (req, res) => {
    handleApi(st, req, res).catch((e) => st.internalError(res, e));
  });
  const storageServer = createServer(serverOptions, (req, res) => {
    handleStorage(st, req, res).catch((e) => st.internalError(res, e));
  });
  await Promise.all([listen(apiServer, options.port ?? 0), listen(storageServer, 0)]);
  const urlHost = host.includes(":") ? `[${host}]` : host;
  st.baseUrl = `http://${urlHost}:${(apiServer.address() as AddressInfo).port}`;
  st.storageUrl = `http://${urlHost}:${(storageServer.address() as AddressInfo).port}`;

  function listen(server: Server, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  }

  async function close(): Promise<void> {
    if (st.closed) return;
    st.closed = true;
    for (const t of st.timers) clearTimeout(t);
    st.timers.clear();
    const stop = (s: Server) =>
      new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      });
    await Promise.all([stop(apiServer), stop(storageServer)]);
  }

  return {
    url: st.baseUrl,
    storageUrl: st.storageUrl,
    stats: () => structuredClone(st.stats),
    resetStats: () => st.resetStats(),
    setFaults: (f) => st.setFaults(f),
    faults: () => ({ ...st.settings, faultKinds: [...st.settings.faultKinds] }),
    close,
  };
}
