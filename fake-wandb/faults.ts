/**
 * The fault and cost model of fake-wandb: seeded random faults, a fixed-window rate limiter and a latency model.
 * Decisions are drawn from one seeded generator in request-arrival order, so a given request sequence always meets
 * the same faults.
 */

export type FaultKind = "500" | "502" | "503" | "429" | "reset" | "truncated" | "stall" | "graphql";

export const FAULT_KINDS: readonly FaultKind[] = ["500", "502", "503", "429", "reset", "truncated", "stall", "graphql"];

export interface FaultSettings {
  failRate: number;
  faultKinds: FaultKind[];
  /** Requests per second allowed on the API host (0 = unlimited). */
  rateLimit: number;
  latencyMs: number;
  latencyPerKbMs: number;
  stallMs: number;
}

export const DEFAULT_FAULTS: FaultSettings = {
  failRate: 0,
  faultKinds: ["500", "502", "503", "429", "reset", "truncated", "stall", "graphql"],
  rateLimit: 0,
  latencyMs: 0,
  latencyPerKbMs: 0,
  stallMs: 30_000,
};

/** mulberry32: small, fast, good enough for fault dice. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function parseFaultKinds(value: unknown): FaultKind[] {
  const list = typeof value === "string" ? value.split(",") : value;
  if (!Array.isArray(list)) throw new Error("faultKinds must be a list or a comma-separated string");
  const out: FaultKind[] = [];
  for (const raw of list) {
    const k = String(raw).trim();
    if (k === "") continue;
    if (!(FAULT_KINDS as readonly string[]).includes(k)) {
      throw new Error(`unknown fault kind "${k}" (known: ${FAULT_KINDS.join(", ")})`);
    }
    out.push(k as FaultKind);
  }
  return out;
}

/** Validates a partial settings object (from /_fake/faults or setFaults) and returns the merged settings. */
export function mergeFaults(current: FaultSettings, patch: Record<string, unknown>): FaultSettings {
  const next: FaultSettings = { ...current, faultKinds: [...current.faultKinds] };
  const nonNegative = (name: keyof FaultSettings, max = Number.POSITIVE_INFINITY): number | undefined => {
    const v = patch[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > max) {
      throw new Error(`${name} must be a number between 0 and ${max}`);
    }
    return v;
  };
  const known = new Set(["failRate", "faultKinds", "rateLimit", "latencyMs", "latencyPerKbMs", "stallMs"]);
  for (const k of Object.keys(patch)) if (!known.has(k)) throw new Error(`unknown fault setting "${k}"`);
  const failRate = nonNegative("failRate", 1);
  if (failRate !== undefined) next.failRate = failRate;
  const rateLimit = nonNegative("rateLimit");
  if (rateLimit !== undefined) next.rateLimit = rateLimit;
  const latencyMs = nonNegative("latencyMs");
  if (latencyMs !== undefined) next.latencyMs = latencyMs;
  const latencyPerKbMs = nonNegative("latencyPerKbMs");
  if (latencyPerKbMs !== undefined) next.latencyPerKbMs = latencyPerKbMs;
  const stallMs = nonNegative("stallMs");
  if (stallMs !== undefined) next.stallMs = stallMs;
  if (patch.faultKinds !== undefined && patch.faultKinds !== null) {
    const kinds = parseFaultKinds(patch.faultKinds);
    if (kinds.length === 0) throw new Error("faultKinds must not be empty");
    next.faultKinds = kinds;
  }
  return next;
}

export interface RateDecision {
  limited: boolean;
  headers: Record<string, string>;
}

/** Fixed one-second windows, as W&B describes its GraphQL limits ("requests per second in a fixed window"). */
export class RateLimiter {
  private windowStart = 0;
  private count = 0;

  check(limit: number, now = Date.now()): RateDecision {
    if (!(limit > 0)) return { limited: false, headers: {} };
    const window = Math.floor(now / 1000) * 1000;
    if (window !== this.windowStart) {
      this.windowStart = window;
      this.count = 0;
    }
    this.count++;
    const limitPerWindow = Math.max(1, Math.floor(limit));
    const remaining = Math.max(0, limitPerWindow - this.count);
    const resetSeconds = Math.max(1, Math.ceil((window + 1000 - now) / 1000));
    const headers: Record<string, string> = {
      "RateLimit-Limit": String(limitPerWindow),
      "RateLimit-Remaining": String(remaining),
      "RateLimit-Reset": String(resetSeconds),
    };
    if (this.count > limitPerWindow) {
      headers["Retry-After"] = String(resetSeconds);
      return { limited: true, headers };
    }
    return { limited: false, headers };
  }

  reset(): void {
    this.windowStart = 0;
    this.count = 0;
  }
}

/** Draws the fault (if any) for one request; `allowed` narrows the kinds that make sense on this endpoint. */
export class FaultDice {
  private readonly random: () => number;

  constructor(seed: number) {
    this.random = seededRandom((seed ^ 0x5eed_fa17) >>> 0);
  }

  draw(settings: FaultSettings, allowed: (k: FaultKind) => boolean): FaultKind | null {
    if (!(settings.failRate > 0)) return null;
    const hit = this.random() < settings.failRate;
    const pick = this.random();
    if (!hit) return null;
    const kinds = settings.faultKinds.filter(allowed);
    if (kinds.length === 0) return null;
    return kinds[Math.floor(pick * kinds.length)] ?? null;
  }
}
