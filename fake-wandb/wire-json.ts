/**
 * The serializer for fake-wandb's outer HTTP response bodies. Unlike JSON.stringify it writes bigints as their exact
 * digits, and it never writes a bare NaN/Infinity: in the outer JSON (real JSON objects such as historyKeys,
 * sampledHistory rows and liveData) a non-finite number becomes the string "NaN", "Infinity" or "-Infinity". Bare
 * tokens only ever appear inside JSONString values (history/events rows), which are plain strings here.
 */

function nonFiniteString(n: number): string {
  return Number.isNaN(n) ? '"NaN"' : n > 0 ? '"Infinity"' : '"-Infinity"';
}

export function stringifyWire(v: unknown): string {
  switch (typeof v) {
    case "string":
      return JSON.stringify(v);
    case "number":
      return v - v === 0 ? String(v) : nonFiniteString(v);
    case "bigint":
      return v.toString();
    case "boolean":
      return v ? "true" : "false";
    case "object": {
      if (v === null) return "null";
      if (Array.isArray(v)) {
        let s = "[";
        for (let i = 0; i < v.length; i++) {
          if (i > 0) s += ",";
          const x = v[i];
          s += x === undefined || typeof x === "function" ? "null" : stringifyWire(x);
        }
        return `${s}]`;
      }
      if (v instanceof Date) return JSON.stringify(v.toISOString());
      let s = "{";
      let first = true;
      const o = v as Record<string, unknown>;
      for (const k in o) {
        const x = o[k];
        if (x === undefined || typeof x === "function") continue;
        if (first) first = false;
        else s += ",";
        s += `${JSON.stringify(k)}:${stringifyWire(x)}`;
      }
      return `${s}}`;
    }
    default:
      return "null";
  }
}

function hasNonFinite(v: unknown, depth = 0): boolean {
  if (typeof v === "number") return v - v !== 0;
  if (typeof v !== "object" || v === null || depth > 200) return false;
  if (Array.isArray(v)) {
    for (const x of v) if (hasNonFinite(x, depth + 1)) return true;
    return false;
  }
  for (const k in v as Record<string, unknown>)
    if (hasNonFinite((v as Record<string, unknown>)[k], depth + 1)) return true;
  return false;
}

function replaceNonFinite(v: unknown): unknown {
  if (typeof v === "number") return v - v === 0 ? v : Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
  if (typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) return v.map(replaceNonFinite);
  const o: Record<string, unknown> = {};
  for (const k in v as Record<string, unknown>) o[k] = replaceNonFinite((v as Record<string, unknown>)[k]);
  return o;
}

/**
 * A real-JSON value (JSON scalar) made safe for JSON.stringify's number handling: non-finite numbers become the
 * strings "NaN"/"Infinity"/"-Infinity" (copying only when there is one). Bigints are left for {@link toWireText}.
 */
export function sanitizeJsonValue(v: unknown): unknown {
  return hasNonFinite(v) ? replaceNonFinite(v) : v;
}

/** The response text: native JSON.stringify, or {@link stringifyWire} when the value holds a bigint. */
export function toWireText(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch {
    return stringifyWire(v);
  }
}
