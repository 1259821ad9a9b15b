/**
 * Combining small per-run reads into one GraphQL document.
 *
 * The official SDK asks for one run per request (`project { run(name: $name) { ... } }`). Reads that several runs
 * need at about the same time (history windows of running runs' tails, `parquetHistory` of new runs) are gathered
 * while they keep arriving (40 ms after the last one, at most 200 ms; a wait that ends late because the event loop
 * was busy looks again, since the burst's next read may be queued behind that work) and sent together as aliased
 * run fields:
 * `r0: run(name: $n0) { ... } r1: run(name: $n1) { ... }`.
 * That is a shape the SDK never sends, so it is used only while the server accepts it (the `aliases` capability,
 * shared with the multi-run lookup): a shape rejection turns it off (or lowers the batch size) for that server and
 * the affected reads are sent one by one with the SDK's own documents. `compat` never batches.
 *
 * Each caller gets back what the single document would have answered (`{ project: { run: ... } }`), so callers do
 * not know whether their read was batched.
 */
import type { JsonObject, JsonValue } from "../model/json.js";
import { isJsonObject } from "../model/json.js";
import { type Capabilities, isShapeRejection } from "./capabilities.js";
import { WandbError } from "./errors.js";
import type { Transport } from "./transport.js";

/** One kind of per-run read that can be batched. */
export interface BatchKind<A> {
  /** Operation name of the combined document (the single one keeps the SDK's). */
  operation: string;
  /** Variable declarations of item i, e.g. `$n3: String!, $min3: Int64!`. */
  declare(i: number): string;
  /** The aliased selection of item i under `project`, e.g. `r3: run(name: $n3) { history(...) }`. */
  select(i: number): string;
  /** The variables of item i. */
  variables(i: number, args: A): Record<string, unknown>;
  /** The SDK-shaped request for one item; resolves to its whole `data`. */
  single(args: A, signal?: AbortSignal): Promise<JsonObject>;
  /** The field under `project` each item reads (default "run"): answers are handed out as `{ project: { [field] } }`. */
  field?: string;
  /** A member name whose large arrays of strings the answers hold as LazyLines (GraphqlRequestOptions.lazyLines). */
  lazyLines?: string;
}

export interface BatcherOptions {
  /**
   * How long a batch waits for another read after the last one joined it (each read that joins restarts the wait),
   * at most `maxWaitMs` after its first read.
   */
  gatherMs?: number;
  maxWaitMs?: number;
  /** Most reads per document (also bounded by the learned `maxAliases`). */
  maxItems?: number;
  /** Most cost (e.g. history cells) per document. */
  maxCost?: number;
  /** Never batch (SDK shapes only). */
  compat?: boolean;
  /** Called when something was learned about the server. */
  learn?: (update: Partial<Capabilities>) => void;
  /**
   * A capability of its own besides `aliases` (e.g. for documents whose fields an older server may reject): any
   * rejection turns only it off, leaving `aliases` and `maxAliases` as they are.
   */
  capability?: "sweepBatches";
}

interface Pending<A> {
  entity: string;
  project: string;
  where: string;
  args: A;
  cost: number;
  signal?: AbortSignal;
  resolve: (data: JsonObject) => void;
  reject: (e: unknown) => void;
}

interface Queue<A> {
  items: Pending<A>[];
  cost: number;
  timer: NodeJS.Timeout | undefined;
  /** When its first read joined (performance.now()). */
  since: number;
}

const DEFAULT_GATHER_MS = 40;
/** The longest a batch's first read waits for others while more keep arriving (a burst of reads). */
const DEFAULT_MAX_WAIT_MS = 200;
const DEFAULT_MAX_ITEMS = 50;
/** A gather timer this much past its time found the event loop busy (see AliasBatcher.arm). */
const LATE_TIMER_MS = 10;

export class AliasBatcher<A> {
  /** Documents sent with more than one read in them, and the reads they carried. */
  batches = 0;
  batchedReads = 0;
  private readonly queues = new Map<string, Queue<A>>();
  private readonly gatherMs: number;
  private readonly maxWaitMs: number;
  private readonly maxItems: number;
  private readonly maxCost: number;

  constructor(
    private readonly transport: Transport,
    private readonly caps: Capabilities,
    private readonly kind: BatchKind<A>,
    private readonly options: BatcherOptions = {},
  ) {
    this.gatherMs = Math.max(0, options.gatherMs ?? DEFAULT_GATHER_MS);
    this.maxWaitMs = Math.max(this.gatherMs, options.maxWaitMs ?? DEFAULT_MAX_WAIT_MS);
    this.maxItems = Math.max(1, Math.floor(options.maxItems ?? DEFAULT_MAX_ITEMS));
    this.maxCost = options.maxCost ?? Number.POSITIVE_INFINITY;
  }

  /** Whether reads may be combined at all right now. */
  private enabled(): boolean {
    const own = this.options.capability;
    return (
      !this.options.compat && this.caps.aliases !== false && (!own || this.caps[own] !== false) && this.limit() > 1
    );
  }

  private limit(): number {
    return Math.min(this.maxItems, this.caps.maxAliases ?? Number.POSITIVE_INFINITY);
  }

  /** Reads one run's field, possibly together with other runs' reads of the same project. */
  load(
    entity: string,
    project: string,
    where: string,
    args: A,
    cost: number,
    signal?: AbortSignal,
  ): Promise<JsonObject> {
    if (!this.enabled()) return this.kind.single(args, signal);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<JsonObject>((resolve, reject) => {
      const key = `${entity}\u0000${project}`;
      let q = this.queues.get(key);
      // A read that would push a non-empty batch over its cost goes out with the next one.
      if (q && q.items.length > 0 && q.cost + cost > this.maxCost) {
        this.flush(key);
        q = undefined;
      }
      if (!q) {
        q = { items: [], cost: 0, timer: undefined, since: performance.now() };
        this.queues.set(key, q);
      }
      q.items.push({ entity, project, where, args, cost, signal, resolve, reject });
      q.cost += cost;
      if (q.items.length >= this.limit() || q.cost >= this.maxCost) this.flush(key);
      else {
        // Reads of a burst (runs planned one after another, each after some local work) arrive tens of ms apart:
        // the wait restarts with each, so that they share a document, but never beyond maxWaitMs.
        if (q.timer !== undefined) clearTimeout(q.timer);
        const wait = Math.max(0, Math.min(this.gatherMs, q.since + this.maxWaitMs - performance.now()));
        this.arm(key, q, wait);
      }
    });
  }

  /**
   * Flushes `q` after `wait` ms of quiet. A timer that fires late saw no quiet: the event loop was busy (decoding an
   * answer, writing a run), and the next reads of the burst may be waiting behind that work; the batch then looks
   * again after a short wait, while within maxWaitMs, instead of leaving them for a document of their own.
   */
  private arm(key: string, q: Queue<A>, wait: number): void {
    const due = performance.now() + wait;
    q.timer = setTimeout(() => {
      const now = performance.now();
      if (this.queues.get(key) === q && now - due > LATE_TIMER_MS && now < q.since + this.maxWaitMs) {
        this.arm(key, q, Math.min(LATE_TIMER_MS, q.since + this.maxWaitMs - now));
      } else this.flush(key);
    }, wait);
  }

  private flush(key: string): void {
    const q = this.queues.get(key);
    if (!q) return;
    this.queues.delete(key);
    if (q.timer !== undefined) clearTimeout(q.timer);
    const items = q.items.filter((it) => {
      if (!it.signal?.aborted) return true;
      it.reject(it.signal.reason);
      return false;
    });
    if (items.length === 0) return;
    void this.send(items);
  }

  private async send(items: Pending<A>[]): Promise<void> {
    if (items.length === 1 || !this.enabled()) {
      await Promise.all(items.map((it) => this.sendOne(it)));
      return;
    }
    const size = this.limit();
    if (items.length > size) {
      const chunks: Pending<A>[][] = [];
      for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
      await Promise.all(chunks.map((c) => this.send(c)));
      return;
    }
    const { entity, project } = items[0]!;
    const declarations = items.map((_it, i) => this.kind.declare(i)).join(", ");
    const selections = items.map((_it, i) => `    ${this.kind.select(i)}`).join("\n");
    const query = `query ${this.kind.operation}($entity: String!, $project: String!, ${declarations}) {
  project(name: $project, entityName: $entity) {
${selections}
  }
}`;
    const variables: Record<string, unknown> = { entity, project };
    for (const [i, it] of items.entries()) Object.assign(variables, this.kind.variables(i, it.args));
    let data: JsonObject;
    try {
      data = await this.transport.graphql(this.kind.operation, query, variables, {
        run: items.length === 1 ? items[0]!.where : `${entity}/${project} (${items.length} runs)`,
        runs: items.map((it) => it.where),
        lazyLines: this.kind.lazyLines,
      });
    } catch (e) {
      if (isShapeRejection(e) && this.options.capability) {
        this.options.learn?.({ [this.options.capability]: false });
      } else if (isShapeRejection(e)) {
        const reason = (e as WandbError).reason;
        const aliasing = /alias|more than once|duplicate/i.test(reason);
        const smaller = aliasing ? 0 : Math.floor(items.length / 2);
        this.options.learn?.(smaller < 2 ? { aliases: false } : { maxAliases: smaller });
      } else if (e instanceof WandbError && e.code === "AUTH") {
        for (const it of items) it.reject(e);
        return;
      }
      // Anything else (a shape rejection, or an error that may belong to one of the runs): each read alone, so
      // that every run gets its own answer or its own error.
      await Promise.all(items.map((it) => this.sendOne(it)));
      return;
    }
    if (this.options.capability) {
      if (this.caps[this.options.capability] !== true) this.options.learn?.({ [this.options.capability]: true });
    } else if (this.caps.aliases !== true) this.options.learn?.({ aliases: true });
    this.batches++;
    this.batchedReads += items.length;
    const p = isJsonObject(data.project) ? data.project : null;
    const field = this.kind.field ?? "run";
    items.forEach((it, i) => {
      const value: JsonValue = p ? (p[`r${i}`] ?? null) : null;
      it.resolve({ project: p === null ? null : { [field]: value } });
    });
  }

  private async sendOne(it: Pending<A>): Promise<void> {
    try {
      it.resolve(await this.kind.single(it.args, it.signal));
    } catch (e) {
      it.reject(e);
    }
  }
}
