/**
 * HTTP helpers of the fake server: JSON and GraphQL-error replies, request bodies (gzip, size cap), paths, byte
 * ranges, Basic auth.
 */
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { gunzipSync } from "node:zlib";
import { HttpStatusError } from "./resolvers.js";
import { toWireText } from "./wire-json.js";

export interface Reply {
  status: number;
  headers: Record<string, string | number>;
  body: Buffer;
}

export const JSON_TYPE = "application/json";
/** Request bodies above this get 413: 64 MB for the API hosts (GraphQL); see readBody's `maxBytes`. */
const MAX_BODY = 64 * 1024 * 1024;
/** The cap of the /_fake/mutate control endpoint: room for a run config or summary of a few hundred MB. */
export const MAX_CONTROL_BODY = 768 * 1024 * 1024;

export function jsonReply(status: number, value: unknown, headers: Record<string, string | number> = {}): Reply {
  return {
    status,
    headers: { "Content-Type": JSON_TYPE, ...headers },
    body: Buffer.from(typeof value === "string" ? value : toWireText(value), "utf8"),
  };
}

export function errorsReply(status: number, message: string, headers: Record<string, string | number> = {}): Reply {
  return jsonReply(status, { errors: [{ message }] }, headers);
}

export function readBody(req: IncomingMessage, maxBytes = MAX_BODY): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        reject(new HttpStatusError(413, "request body too large"));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      try {
        resolve(req.headers["content-encoding"] === "gzip" ? gunzipSync(body) : body);
      } catch {
        reject(new HttpStatusError(400, "request body is not valid gzip"));
      }
    });
    req.on("error", reject);
  });
}

/** Decodes each /-separated segment (a malformed escape leaves the segment as is). */
export function decodeSegments(path: string): string[] {
  return path.split("/").map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
}

interface RangeSpec {
  start: number;
  end: number; // inclusive
}

/** Parses a single-range `bytes=` header; null = serve the whole body, "unsatisfiable" = 416. */
export function parseRange(header: string | undefined, size: number): RangeSpec | null | "unsatisfiable" {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return null; // multi-range or malformed: ignore, as RFC 9110 allows
  const [, a, b] = m;
  if (a === "" && b === "") return null;
  if (a === "") {
    const n = Number(b);
    if (n === 0) return "unsatisfiable";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  if (start >= size) return "unsatisfiable";
  const end = b === "" ? size - 1 : Math.min(Number(b), size - 1);
  if (end < start) return null;
  return { start, end };
}

/**
 * The raw path and the query of a request target. Unlike `new URL()`, dot segments (also %2E%2E) stay as sent,
 * so a lookup sees exactly the path the client put on the wire.
 */
export function splitTarget(target: string | undefined): { path: string; query: URLSearchParams } {
  const t = target ?? "/";
  const q = t.indexOf("?");
  if (q < 0) return { path: t, query: new URLSearchParams() };
  return { path: t.slice(0, q), query: new URLSearchParams(t.slice(q + 1)) };
}

export function basicKey(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Basic\s+(\S+)\s*$/i.exec(header);
  if (!m) return null;
  const text = Buffer.from(m[1] as string, "base64").toString("utf8");
  const i = text.indexOf(":");
  return i < 0 ? null : text.slice(i + 1);
}

export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
