/**
 * Row shaping shared by every output format: runs in RUN_FIELDS order (model/records.ts), and how a W&B
 * `_timestamp` (Unix seconds, float) becomes a UTC instant with microsecond precision, exactly as Python's
 * `datetime.fromtimestamp(ts, tz=timezone.utc)` would make it.
 */
import type { JsonObject, JsonValue } from "../model/json.js";
import { type HistoryRecord, RUN_FIELDS, type RunRecord, type SystemMetricsRecord } from "../model/records.js";

/** The run as a plain object with keys in {@link RUN_FIELDS} order (a missing field becomes null). */
export function runObject(run: RunRecord): JsonObject {
  const out: JsonObject = {};
  for (const k of RUN_FIELDS) {
    const v = run[k] as JsonValue | undefined;
    out[k] = v === undefined ? null : v;
  }
  return out;
}

/** A UTC instant: whole Unix seconds plus microseconds (0..999999). */
export interface UtcInstant {
  seconds: number;
  micros: number;
}

// Python's datetime range: 0001-01-01T00:00:00 .. 9999-12-31T23:59:59.999999 (UTC).
const MIN_SECONDS = -62135596800;
const MAX_SECONDS = 253402300799;

/** C's round() then half-to-even, as CPython's _PyTime_Round(HALF_EVEN). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  if (Math.abs(x - Math.trunc(x)) === 0.5) return 2 * Math.round(x / 2);
  return r;
}

/**
 * Unix seconds → {seconds, micros}, as CPython's `datetime.fromtimestamp(ts, timezone.utc)` rounds it
 * (modf, then the fraction's microseconds rounded half-to-even). Null when not finite or outside years 1..9999.
 */
export function toUtcInstant(ts: number): UtcInstant | null {
  if (!Number.isFinite(ts)) return null;
  let seconds = Math.trunc(ts);
  let micros = roundHalfEven((ts - seconds) * 1e6);
  if (micros >= 1e6) {
    micros -= 1e6;
    seconds += 1;
  } else if (micros < 0) {
    micros += 1e6;
    seconds -= 1;
  }
  if (seconds < MIN_SECONDS || seconds > MAX_SECONDS) return null;
  return { seconds, micros };
}

/** ISO-8601 UTC with microseconds and a Z: `2023-11-14T22:13:20.123456Z`. */
export function isoOfInstant(t: UtcInstant): string {
  // Years are 1..9999 here, so toISOString() is "YYYY-MM-DDTHH:MM:SS.mmmZ"; keep the seconds, add micros.
  return `${new Date(t.seconds * 1000).toISOString().slice(0, 19)}.${String(t.micros).padStart(6, "0")}Z`;
}

/**
 * The timestamp of a history or system-metrics row as the writers store it. A `_timestamp` that cannot be a
 * datetime (not finite, or outside years 1..9999) is stored as null; history rows keep it, unchanged, as
 * `extra._timestamp` (see {@link historyExtra}), so nothing is lost.
 */
export function rowTimestamp(row: HistoryRecord | SystemMetricsRecord): UtcInstant | null {
  return row.timestamp === null ? null : toUtcInstant(row.timestamp);
}

/** The row's `extra`, plus `_timestamp` when the timestamp could not be converted (see {@link rowTimestamp}). */
export function historyExtra(row: HistoryRecord, instant: UtcInstant | null): JsonObject {
  if (instant === null && row.timestamp !== null) return { ...row.extra, _timestamp: row.timestamp };
  return row.extra;
}
