/** Strict parsers for option values: a bad value is a usage error with one clear line. */
import { InvalidArgumentError } from "commander";
import type { JsonObject } from "../model/json.js";
import { isJsonObject, parseWandbJson } from "../model/json.js";

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n <= 0) {
    throw new InvalidArgumentError(`expected a whole number above 0, got "${value}"`);
  }
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`expected a whole number (0 or more), got "${value}"`);
  }
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError(`expected a number above 0, got "${value}"`);
  }
  return n;
}

/** Sizes like 500, 10k, 20MB, 1.5G (bytes, powers of 1024). */
export function byteSize(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(value);
  if (!m) throw new InvalidArgumentError(`expected a size such as 500, 10k, 20MB or 1.5G, got "${value}"`);
  const mult = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as "" | "k"]!;
  return Math.floor(Number(m[1]) * mult);
}

export function jsonFilter(value: string): JsonObject {
  let v: unknown;
  try {
    v = parseWandbJson(value);
  } catch (e) {
    throw new InvalidArgumentError(`not valid JSON: ${(e as Error).message}`);
  }
  if (!isJsonObject(v)) throw new InvalidArgumentError('a W&B filter is a JSON object, e.g. \'{"state": "finished"}\'');
  return v;
}

export function commaList(value: string, previous: string[] | undefined): string[] {
  const items = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  return [...(previous ?? []), ...items];
}

export function isoDate(value: string): string {
  const d = new Date(/T|\s/.test(value) && !/(?:Z|[+-]\d{2}:?\d{2})$/.test(value) ? `${value}Z` : value);
  if (Number.isNaN(d.getTime())) throw new InvalidArgumentError(`expected a date such as 2025-01-31, got "${value}"`);
  return d.toISOString();
}

export function choice<T extends string>(allowed: readonly T[]) {
  return (value: string): T => {
    if (!(allowed as readonly string[]).includes(value)) {
      throw new InvalidArgumentError(`expected one of ${allowed.join(", ")}, got "${value}"`);
    }
    return value as T;
  };
}
