/**
 * Text gathered in memory and written to a spool file about 1 MB at a time: one Buffer per write instead of one per
 * line. Shared by the spools of the Parquet writer (csv-spool.ts, runs-spool.ts).
 */
import type { AtomicFile } from "../model/atomic-file.js";

export class TextBatch {
  private text = "";

  append(s: string): void {
    this.text += s;
  }

  /** True when enough text has gathered that the caller should `drainTo` its file. */
  get full(): boolean {
    return this.text.length >= 1 << 20;
  }

  async drainTo(file: AtomicFile): Promise<void> {
    if (this.text === "") return;
    const t = this.text;
    this.text = "";
    await file.write(t);
  }
}
