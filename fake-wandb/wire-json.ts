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
