/**
 * The keysets of history_rows.vals (table history_keysets): per project, a small integer for each list of keys a
 * chunk of rows stores numbers for. The registry hands out ids inside the writer's open transaction (the new row of
 * history_keysets is part of it) and remembers them per project; when a transaction rolls back, what it added is
 * forgotten with it (the project's ids are read again on the next use).
 */
import type { Row } from "./values.js";

export interface KeysetStore {
  /** Every keyset of a project: id and keys. */
  load(entity: string, project: string): Promise<Row[]>;
  /** Inserts one keyset (inside the open transaction). */
  insert(entity: string, project: string, id: number, keys: readonly string[]): Promise<unknown>;
}

interface ProjectKeysets {
  ids: Map<string, number>;
  next: number;
}

export class KeysetRegistry {
  private readonly projects = new Map<string, ProjectKeysets>();
  /** Projects given a new keyset in the open transaction. */
  private readonly touched = new Set<string>();

  constructor(private readonly store: KeysetStore) {}

  /** The id of `keys` (in this order) in the project, created in the open transaction when it is new. */
  async id(entity: string, project: string, keys: readonly string[]): Promise<number> {
    const pk = JSON.stringify([entity, project]);
    let p = this.projects.get(pk);
    if (p === undefined) {
      p = { ids: new Map(), next: 1 };
      for (const r of await this.store.load(entity, project)) {
        const id = Number(r.keyset);
        p.ids.set(JSON.stringify(keyList(r.keys)), id);
        p.next = Math.max(p.next, id + 1);
      }
      this.projects.set(pk, p);
    }
    const sig = JSON.stringify(keys);
    const known = p.ids.get(sig);
    if (known !== undefined) return known;
    const id = p.next++;
    this.touched.add(pk);
    await this.store.insert(entity, project, id, keys);
    p.ids.set(sig, id);
    return id;
  }

  /** The id of `keys` when it is known already (no statement needed), else undefined. */
  peek(entity: string, project: string, keys: readonly string[]): number | undefined {
    return this.projects.get(JSON.stringify([entity, project]))?.ids.get(JSON.stringify(keys));
  }

  /** Called when the open transaction ends: a rolled-back one takes its new keysets with it. */
  transactionEnded(committed: boolean): void {
    if (!committed) for (const pk of this.touched) this.projects.delete(pk);
    this.touched.clear();
  }
}

/** A keys column as read back (a list in DuckDB, an array in PostgreSQL; JSON text from some drivers). */
function keyList(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String);
  if (typeof v === "string" && v.startsWith("[")) return (JSON.parse(v) as unknown[]).map(String);
  return [];
}
