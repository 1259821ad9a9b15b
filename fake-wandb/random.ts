/** Seeded randomness (mulberry32, integer hashes) and W&B's zone-less time format, for the generator. */

// ---------------------------------------------------------------------------------------------------------------
// Randomness

/** mulberry32: a tiny seeded PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Integer hash of up to three 32-bit inputs (murmur3-style finaliser); returns an unsigned 32-bit integer. */
export function hash3(a: number, b: number, c: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h ^ b, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h ^ c, 0x27d4eb2f);
  h ^= h >>> 15;
  h = Math.imul(h, 0x165667b1);
  h ^= h >>> 16;
  return h >>> 0;
}

const INV32 = 1 / 4294967296;
export function unit(h: number): number {
  return h * INV32;
}

/** 32-bit FNV-1a of a string (for salts derived from names). */
export function strHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789";
export function randomId(rng: () => number, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += ALNUM[Math.floor(rng() * 36)];
  return s;
}
export function pick<T>(rng: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rng() * xs.length)] as T;
}
export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// ---------------------------------------------------------------------------------------------------------------
// Time

/** 2025-01-02T03:04:05 UTC, the creation time of the first run. */
export const BASE_EPOCH = Date.UTC(2025, 0, 2, 3, 4, 5) / 1000;

/** "2025-01-02T03:04:05" (no zone, as W&B sends it) from Unix seconds. */
export function formatTime(epochSeconds: number): string {
  return new Date(Math.floor(epochSeconds) * 1000).toISOString().slice(0, 19);
}
/** Unix seconds from a W&B time ("2025-01-02T03:04:05", zone-less = UTC; a zone or fraction is honoured). */
export function parseTime(s: string): number {
  const hasZone = /(Z|[+-]\d\d:?\d\d)$/.test(s);
  const ms = Date.parse(hasZone ? s : `${s}Z`);
  return ms / 1000;
}
