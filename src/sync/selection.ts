/** Which runs to read: the user's W&B filter plus the shorthand options, combined into one W&B filter. */
import type { JsonObject } from "../model/json.js";

export interface RunSelection {
  /** A W&B Mongo-style filter, as the user wrote it. */
  filters?: JsonObject;
  /** Only runs in one of these states. */
  state?: string[];
  /** Only runs carrying one of these tags. */
  tags?: string[];
  /** ISO date/time bounds on createdAt (inclusive after, exclusive before). */
  createdAfter?: string;
  createdBefore?: string;
  /** Stop after this many runs (in creation order). */
  maxRuns?: number;
}

/** W&B compares createdAt as its own zone-less UTC text: "2025-01-02T03:04:05". */
function wandbTime(iso: string): string {
  const d = new Date(/(?:Z|[+-]\d{2}:?\d{2})$/.test(iso) || !iso.includes("T") ? iso : `${iso}Z`);
  if (Number.isNaN(d.getTime())) throw new Error(`not a date: ${iso}`);
  return d.toISOString().slice(0, 19);
}

export function buildFilters(sel: RunSelection | undefined): JsonObject {
  if (!sel) return {};
  const parts: JsonObject[] = [];
  if (sel.filters && Object.keys(sel.filters).length > 0) parts.push(sel.filters);
  if (sel.state && sel.state.length > 0) parts.push({ state: { $in: sel.state } });
  if (sel.tags && sel.tags.length > 0) parts.push({ tags: { $in: sel.tags } });
  const created: JsonObject = {};
  if (sel.createdAfter) created.$gte = wandbTime(sel.createdAfter);
  if (sel.createdBefore) created.$lt = wandbTime(sel.createdBefore);
  if (Object.keys(created).length > 0) parts.push({ createdAt: created });
  if (parts.length === 0) return {};
  if (parts.length === 1) return parts[0]!;
  return { $and: parts };
}
