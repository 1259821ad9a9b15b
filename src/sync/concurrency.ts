/** Small concurrency helpers for the pipeline. */

/**
 * Maps `items` with at most `limit` calls of `fn` in flight and yields the results IN INPUT ORDER as soon as each
 * is ready (a sliding window: memory holds at most `limit` pending results).
 */
export async function* orderedMap<T, R>(
  items: AsyncIterable<T> | Iterable<T>,
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): AsyncGenerator<R> {
  const window: Promise<R>[] = [];
  let i = 0;
  for await (const item of items) {
    const p = fn(item, i++);
    p.catch(() => {}); // observed when awaited below; avoid an unhandled rejection meanwhile
    window.push(p);
    if (window.length >= Math.max(1, limit)) yield await window.shift()!;
  }
  while (window.length > 0) yield await window.shift()!;
}

/** Runs `fn` over items with at most `limit` in flight; rejects with the first error after all started work ends. */
export async function forEachLimit<T>(
  items: Iterable<T>,
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  const it = items[Symbol.iterator]();
  let index = 0;
  let failed: unknown;
  let hasFailed = false;
  const worker = async () => {
    for (;;) {
      if (hasFailed) return;
      const n = it.next();
      if (n.done) return;
      const i = index++;
      try {
        await fn(n.value, i);
      } catch (e) {
        if (!hasFailed) {
          hasFailed = true;
          failed = e;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
  if (hasFailed) throw failed;
}

/**
 * Yields `source`'s items, asking for the next one as soon as the current one is handed out, so that the source's
 * work (e.g. the next page of a listing) overlaps with the consumer's. Closing early closes the source.
 */
export async function* readAhead<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  let next: Promise<IteratorResult<T>> | undefined = it.next();
  let done = false;
  try {
    for (;;) {
      const r: IteratorResult<T> = await next;
      next = undefined;
      if (r.done) {
        done = true;
        return;
      }
      next = it.next();
      next.catch(() => {}); // observed when awaited above; avoid an unhandled rejection meanwhile
      yield r.value;
    }
  } finally {
    if (!done) {
      // The consumer stopped (or the source failed): let a pending request end, then close the source.
      if (next)
        await next.then(
          () => {},
          () => {},
        );
      await it.return?.();
    }
  }
}

/**
 * forEachLimit over an async iterable: `limit` workers pull items as they become free, so items of the next page of
 * a listing start while the last items of the previous one are still in flight. Rejects with the first error after
 * all started work ends (no new item is pulled after an error; the source is closed).
 */
export async function forEachLimitAsync<T>(
  items: AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const it = items[Symbol.asyncIterator]();
  let failed: unknown;
  let hasFailed = false;
  let exhausted = false;
  const worker = async () => {
    for (;;) {
      if (hasFailed || exhausted) return;
      let n: IteratorResult<T>;
      try {
        n = await it.next();
      } catch (e) {
        if (!hasFailed) {
          hasFailed = true;
          failed = e;
        }
        exhausted = true;
        return;
      }
      if (n.done) {
        exhausted = true;
        return;
      }
      try {
        await fn(n.value);
      } catch (e) {
        if (!hasFailed) {
          hasFailed = true;
          failed = e;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
  if (hasFailed) {
    if (!exhausted) {
      try {
        await it.return?.();
      } catch {
        // the first error is the one to report
      }
    }
    throw failed;
  }
}

/** A mutual-exclusion lock: callers run one at a time, in arrival order. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => {},
      () => {},
    );
    return result;
  }
}

/**
 * A weighted semaphore: bounds the sum of weights held at once (here, history cells buffered in memory).
 * A request heavier than the capacity is let through alone, so one huge run still proceeds.
 */
export class WeightedSemaphore {
  private used = 0;
  private readonly waiting: { weight: number; resolve: () => void }[] = [];

  constructor(readonly capacity: number) {}

  /** Acquirers waiting for their weight. */
  get queued(): number {
    return this.waiting.length;
  }

  async acquire(weight: number): Promise<() => void> {
    const w = Math.min(Math.max(0, weight), this.capacity);
    if (this.waiting.length > 0 || this.used + w > this.capacity) {
      await new Promise<void>((resolve) => this.waiting.push({ weight: w, resolve }));
    } else this.used += w;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= w;
      this.drain();
    };
  }

  private drain(): void {
    while (this.waiting.length > 0 && this.used + this.waiting[0]!.weight <= this.capacity) {
      const next = this.waiting.shift()!;
      this.used += next.weight;
      next.resolve();
    }
  }
}
