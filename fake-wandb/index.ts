/**
 * fake-wandb: a seeded, deterministic test double of the Weights & Biases read API (GraphQL + run files + parquet
 * history exports), with a fault and cost model. See docs/fake-wandb.md.
 *
 *   const fake = await startFakeWandb({ runs: 5 });
 *   // WANDB_BASE_URL=fake.url WANDB_API_KEY=fake.apiKey ...
 *   await fake.close();
 */
import type { FaultKind, FaultSettings } from "./faults.js";
import type { FakeStore, Profile } from "./model.js";
import { type FakeStats, startFakeServer } from "./server.js";
import { createFakeStore } from "./store.js";

export type { FaultKind, FaultSettings } from "./faults.js";
export { FAULT_KINDS } from "./faults.js";
export type * from "./model.js";
export { SCHEMA_SDL } from "./schema.js";
export type { AuthLeak, FakeServer, FakeServerOptions, FakeStats } from "./server.js";
export { startFakeServer } from "./server.js";
export { createFakeStore, FilterError, MutateError } from "./store.js";

/** Passes the SDK's local key check: at least 40 characters of [A-Za-z0-9_]. */
export const DEFAULT_API_KEY = "fakewandb_local_0123456789abcdefghijklmnopqrstuv";

export interface FakeWandbOptions {
  host?: string;
  port?: number;
  seed?: number;
  entity?: string;
  project?: string;
  runs?: number;
  steps?: number;
  metrics?: number;
  events?: number;
  runningFraction?: number;
  profile?: Profile;
  latencyMs?: number;
  latencyPerKbMs?: number;
  rateLimit?: number;
  failRate?: number;
  faultKinds?: FaultKind[];
  stallMs?: number;
  parquetExports?: boolean;
  redirectFiles?: boolean;
  sdkShapesOnly?: boolean;
  /** Largest history(samples:) honoured; larger ones are silently down-sampled (default none; 1000 with sdkShapesOnly). */
  historySamplesCap?: number;
  /** Ignore run filters (every run matches): a server that does not support them. */
  ignoreRunFilters?: boolean;
  apiKey?: string;
  cacheDir?: string;
}

export interface FakeWandb {
  /** API base URL (WANDB_BASE_URL), e.g. http://127.0.0.1:40123 */
  url: string;
  /** The storage host that signed file and parquet URLs point to. */
  storageUrl: string;
  apiKey: string;
  entity: string;
  project: string;
  store: FakeStore;
  stats(): FakeStats;
  resetStats(): void;
  setFaults(f: {
    failRate?: number;
    faultKinds?: FaultKind[];
    rateLimit?: number;
    latencyMs?: number;
    latencyPerKbMs?: number;
    stallMs?: number;
  }): void;
  close(): Promise<void>;
}

export async function startFakeWandb(options: FakeWandbOptions = {}): Promise<FakeWandb> {
  const apiKey = options.apiKey ?? DEFAULT_API_KEY;
  const store = createFakeStore({
    seed: options.seed ?? 1,
    entity: options.entity ?? "fake-entity",
    project: options.project ?? "fake-project",
    runs: options.runs ?? 20,
    steps: options.steps ?? 200,
    metrics: options.metrics ?? 8,
    profile: options.profile ?? "default",
    runningFraction: options.runningFraction,
    events: options.events,
    exportsEnabled: options.parquetExports ?? true,
    cacheDir: options.cacheDir,
  });
  const faults: Partial<FaultSettings> = {};
  if (options.failRate !== undefined) faults.failRate = options.failRate;
  if (options.faultKinds !== undefined) faults.faultKinds = options.faultKinds;
  if (options.rateLimit !== undefined) faults.rateLimit = options.rateLimit;
  if (options.latencyMs !== undefined) faults.latencyMs = options.latencyMs;
  if (options.latencyPerKbMs !== undefined) faults.latencyPerKbMs = options.latencyPerKbMs;
  if (options.stallMs !== undefined) faults.stallMs = options.stallMs;
  const server = await startFakeServer(store, {
    host: options.host ?? "127.0.0.1",
    port: options.port ?? 0,
    seed: options.seed ?? 1,
    apiKey,
    redirectFiles: options.redirectFiles ?? true,
    sdkShapesOnly: options.sdkShapesOnly ?? false,
    ...(options.historySamplesCap !== undefined ? { historySamplesCap: options.historySamplesCap } : {}),
    ignoreRunFilters: options.ignoreRunFilters ?? false,
    faults,
  });
  return {
    url: server.url,
    storageUrl: server.storageUrl,
    apiKey,
    entity: store.entity,
    project: store.project,
    store,
    stats: server.stats,
    resetStats: server.resetStats,
    setFaults: server.setFaults,
    close: async () => {
      await server.close();
      await store.close();
    },
  };
}
