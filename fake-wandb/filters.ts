/**
 * W&B run filters (Mongo-style) and orders, evaluated against FakeRun metadata.
 *
 * Fields: name, displayName/display_name, state, createdAt/created_at, heartbeatAt/heartbeat_at, updatedAt,
 * tags (array-contains semantics), group, jobType/job_type, sweep/sweepName, username/user, description, notes, commit,
 * `config.<k>.value` / `config.<k>` (+ nested path), `summary_metrics.<k>` (+ nested path). Any other top-level
 * column is invalid: {@link FilterError} (the real server answers HTTP 400 "invalid column").
 * Operators: $and $or $nor $eq $ne $gt $gte $lt $lte $in $nin $exists $regex (+ $options "i"); implicit equality.
 */
import { parseTime } from "./generator.js";
import type { FakeRun, FObject, FValue } from "./model.js";

export class FilterError extends Error {
  override name = "FilterError";
}

type Getter = (run: FakeRun) => FValue | undefined;
interface Field {
  get: Getter;
  isArray?: boolean;
  isTime?: boolean;
}

const TOP_FIELDS: Record<string, Field> = {
  name: { get: (r) => r.name },
  id: { get: (r) => r.name },
  displayName: { get: (r) => r.displayName },
  display_name: { get: (r) => r.displayName },
  state: { get: (r) => r.state },
  createdAt: { get: (r) => r.createdAt, isTime: true },
  created_at: { get: (r) => r.createdAt, isTime: true },
  heartbeatAt: { get: (r) => r.heartbeatAt, isTime: true },
  heartbeat_at: { get: (r) => r.heartbeatAt, isTime: true },
  updatedAt: { get: (r) => r.heartbeatAt, isTime: true },
  tags: { get: (r) => r.tags, isArray: true },
  group: { get: (r) => r.group },
  jobType: { get: (r) => r.jobType },
  job_type: { get: (r) => r.jobType },
  sweep: { get: (r) => r.sweepName },
  sweepName: { get: (r) => r.sweepName },
  username: { get: (r) => r.user.username },
  user: { get: (r) => r.user.username },
  description: { get: (r) => r.description },
  notes: { get: (r) => r.notes },
  commit: { get: (r) => r.commit },
};

function isObject(v: unknown): v is FObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Resolves `segs` inside obj: the longest prefix that is a key wins (keys may contain dots), then descends. */
function lookupPath(obj: FValue | undefined, segs: string[]): FValue | undefined {
  if (segs.length === 0) return obj;
  if (!isObject(obj)) return undefined;
  for (let i = segs.length; i >= 1; i--) {
    const k = segs.slice(0, i).join(".");
    if (Object.hasOwn(obj, k)) {
      const r = lookupPath(obj[k], segs.slice(i));
      if (r !== undefined || i === 1) return r;
    }
  }
  return undefined;
}

/** Config lookup: `config.<k>.value.<path>`, `config.<k>.<path>` and `config.<k>` all address the unwrapped value. */
function configGetter(rest: string): Getter {
  const segs = rest.split(".");
  return (run) => {
    const cfg = run.config;
    for (let i = segs.length; i >= 1; i--) {
      const k = segs.slice(0, i).join(".");
      if (!Object.hasOwn(cfg, k)) continue;
      let tail = segs.slice(i);
      if (tail[0] === "value" && !(isObject(cfg[k]) && Object.hasOwn(cfg[k] as FObject, "value"))) tail = tail.slice(1);
      if (tail[0] === "desc" && tail.length === 1) return null;
      return lookupPath(cfg[k], tail);
    }
    if (segs[0] === "_wandb") return lookupPath(run.wandbConfig, segs[1] === "value" ? segs.slice(2) : segs.slice(1));
    return undefined;
  };
}

function fieldFor(path: string): Field {
  const top = TOP_FIELDS[path];
  if (top) return top;
  if (path.startsWith("config.")) return { get: configGetter(path.slice(7)) };
  for (const prefix of ["summary_metrics.", "summaryMetrics."]) {
    if (path.startsWith(prefix)) {
      const segs = path.slice(prefix.length).split(".");
      return { get: (r) => lookupPath(r.summary, segs) };
    }
  }
  if (path.startsWith("systemMetrics.") || path.startsWith("system_metrics.")) {
    const rest = path.slice(path.indexOf(".") + 1);
    return { get: (r) => (Object.hasOwn(r.systemMetrics, rest) ? r.systemMetrics[rest] : undefined) };
  }
  throw new FilterError(`invalid filter column: ${JSON.stringify(path)}`);
}

// ---------------------------------------------------------------------------------------------------------------

function toNum(v: FValue | undefined): number | bigint | undefined {
  if (typeof v === "number" || typeof v === "bigint") return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  return undefined;
}

/** Total order used by comparisons and sorting: -1/0/1, or undefined when the two are not comparable. */
export function compareValues(a: FValue | undefined, b: FValue | undefined, isTime = false): number | undefined {
  if (a === undefined || a === null || b === undefined || b === null) return undefined;
  if (isTime && typeof a === "string" && typeof b === "string") {
    const x = parseTime(a);
    const y = parseTime(b);
    if (Number.isNaN(x) || Number.isNaN(y)) return a < b ? -1 : a > b ? 1 : 0;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === "string" && typeof b === "string") return a < b ? -1 : a > b ? 1 : 0;
  const x = toNum(a);
  const y = toNum(b);
  if (x === undefined || y === undefined) return undefined;
  if (typeof x === "bigint" || typeof y === "bigint") {
    if (typeof x === "number" && !Number.isFinite(x)) return Number.isNaN(x) ? undefined : x > 0 ? 1 : -1;
    if (typeof y === "number" && !Number.isFinite(y)) return Number.isNaN(y) ? undefined : y > 0 ? -1 : 1;
    const bx = typeof x === "bigint" ? x : x;
    const by = typeof y === "bigint" ? y : y;
    return bx < by ? -1 : bx > by ? 1 : 0;
  }
  if (Number.isNaN(x) || Number.isNaN(y)) return undefined;
  return x < y ? -1 : x > y ? 1 : 0;
}

function deepEqual(a: FValue | undefined, b: FValue | undefined, isTime: boolean): boolean {
  if (a === undefined || a === null) return b === null || b === undefined;
  if (b === undefined || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => deepEqual(x, b[i], false));
  }
  if (isObject(a) || isObject(b)) {
    if (!isObject(a) || !isObject(b)) return false;
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k], false));
  }
  if (typeof a === "string" && typeof b === "string" && !isTime) return a === b;
  if (typeof a === "boolean" || typeof b === "boolean") return a === b;
  if (typeof a === "number" && typeof b === "number" && Number.isNaN(a) && Number.isNaN(b)) return true;
  return compareValues(a, b, isTime) === 0;
}

type Pred = (run: FakeRun) => boolean;

/** Element-wise matching for array fields (tags) and arrays inside config/summary: any element matches. */
function anyOf(v: FValue | undefined, test: (x: FValue | undefined) => boolean, isArray: boolean): boolean {
  if ((isArray || Array.isArray(v)) && Array.isArray(v)) return v.some((x) => test(x)) || test(v);
  return test(v);
}

function compileOps(field: Field, spec: FValue): Pred {
  const isOps = isObject(spec) && Object.keys(spec).length > 0 && Object.keys(spec).every((k) => k.startsWith("$"));
  if (!isOps) {
    return (r) => anyOf(field.get(r), (x) => deepEqual(x, spec, !!field.isTime), !!field.isArray);
  }
  const ops = spec as FObject;
  const preds: Pred[] = [];
  const isArray = !!field.isArray;
  const isTime = !!field.isTime;
  for (const op of Object.keys(ops)) {
    const arg = ops[op];
    switch (op) {
      case "$eq":
        preds.push((r) => anyOf(field.get(r), (x) => deepEqual(x, arg, isTime), isArray));
        break;
      case "$ne":
        preds.push((r) => !anyOf(field.get(r), (x) => deepEqual(x, arg, isTime), isArray));
        break;
      case "$gt":
      case "$gte":
      case "$lt":
      case "$lte": {
        const ok =
          op === "$gt"
            ? (c: number) => c > 0
            : op === "$gte"
              ? (c: number) => c >= 0
              : op === "$lt"
                ? (c: number) => c < 0
                : (c: number) => c <= 0;
        preds.push((r) =>
          anyOf(
            field.get(r),
            (x) => {
              const c = compareValues(x, arg, isTime);
              return c !== undefined && ok(c);
            },
            isArray,
          ),
        );
        break;
      }
      case "$in":
      case "$nin": {
        if (!Array.isArray(arg)) throw new FilterError(`${op} needs an array`);
        const test = (r: FakeRun) => anyOf(field.get(r), (x) => arg.some((a) => deepEqual(x, a, isTime)), isArray);
        preds.push(op === "$in" ? test : (r) => !test(r));
        break;
      }
      case "$exists": {
        const want = arg === true || arg === 1 || arg === "true";
        preds.push((r) => {
          const v = field.get(r);
          return (v !== undefined && v !== null) === want;
        });
        break;
      }
      case "$regex": {
        if (typeof arg !== "string") throw new FilterError("$regex needs a string");
        let re: RegExp;
        try {
          const flags = typeof ops.$options === "string" ? ops.$options.replace(/[^imsu]/g, "") : "";
          re = new RegExp(arg, flags);
        } catch (e) {
          throw new FilterError(`bad $regex: ${(e as Error).message}`);
        }
        preds.push((r) => anyOf(field.get(r), (x) => typeof x === "string" && re.test(x), isArray));
        break;
      }
      case "$options":
        break;
      case "$not": {
        const inner = compileOps(field, arg as FValue);
        preds.push((r) => !inner(r));
        break;
      }
      default:
        throw new FilterError(`unsupported operator ${JSON.stringify(op)}`);
    }
  }
  return (r) => preds.every((p) => p(r));
}

/** Compiles a W&B filter object into a predicate. Throws FilterError for invalid columns/operators. */
export function compileFilter(filter: FValue | undefined): Pred {
  if (filter === null || filter === undefined) return () => true;
  if (!isObject(filter)) throw new FilterError("filters must be an object");
  const preds: Pred[] = [];
  for (const k of Object.keys(filter)) {
    const v = filter[k]!;
    if (k === "$and" || k === "$or" || k === "$nor") {
      if (!Array.isArray(v)) throw new FilterError(`${k} needs an array`);
      const subs = v.map((x) => compileFilter(x));
      if (k === "$and") preds.push((r) => subs.every((p) => p(r)));
      else if (k === "$or") preds.push((r) => subs.some((p) => p(r)));
      else preds.push((r) => !subs.some((p) => p(r)));
    } else if (k.startsWith("$")) {
      throw new FilterError(`unsupported top-level operator ${JSON.stringify(k)}`);
    } else {
      preds.push(compileOps(fieldFor(k), v));
    }
  }
  return (r) => preds.every((p) => p(r));
}

/**
 * Sorts runs (given in creation order) by a W&B order string. Known keys: ±created_at, ±heartbeat_at (and camelCase),
 * ±config.<k>[.value], ±summary_metrics.<k>; missing values sort last in both directions. Unknown keys keep creation
 * order (W&B silently ignores them). Ties keep creation order.
 */
export function sortRuns(runs: FakeRun[], order: string | null | undefined): FakeRun[] {
  if (!order) return runs;
  let o = order.trim();
  let dir = 1;
  if (o.startsWith("-")) {
    dir = -1;
    o = o.slice(1);
  } else if (o.startsWith("+")) o = o.slice(1);
  let field: Field | undefined;
  if (o === "created_at" || o === "createdAt") field = TOP_FIELDS.createdAt;
  else if (o === "heartbeat_at" || o === "heartbeatAt" || o === "updated_at" || o === "updatedAt")
    field = TOP_FIELDS.heartbeatAt;
  else if (o.startsWith("config.") || o.startsWith("summary_metrics.") || o.startsWith("summaryMetrics."))
    field = fieldFor(o);
  if (!field) return runs;
  const get = field.get;
  const isTime = !!field.isTime;
  const keyed = runs.map((r, i) => ({ r, i, v: get(r) }));
  keyed.sort((a, b) => {
    const an = a.v === undefined || a.v === null;
    const bn = b.v === undefined || b.v === null;
    if (an || bn) return an && bn ? a.i - b.i : an ? 1 : -1;
    let c = compareValues(a.v, b.v, isTime);
    if (c === undefined) c = typeRank(a.v) - typeRank(b.v);
    return c !== 0 ? c * dir : a.i - b.i;
  });
  return keyed.map((x) => x.r);
}

function typeRank(v: FValue | undefined): number {
  if (typeof v === "number") return Number.isNaN(v) ? 1 : 0;
  if (typeof v === "bigint" || typeof v === "boolean") return 0;
  if (typeof v === "string") return 2;
  return 3;
}
