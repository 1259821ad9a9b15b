/**
 * The sweeps of one sync or download, each fetched once: runs of the same sweep share one request (also when they
 * ask at the same time), never one request per run. A sweep that cannot be read (null on W&B, or an error after the
 * client's retries) is remembered as null with one warning; the run records then keep sweep_info's fallback fields.
 */
import { isWandbError } from "../wandb/errors.js";
import type { WandbApi, WandbSweep } from "../wandb/types.js";

export class SweepCache {
  private readonly sweeps = new Map<string, Promise<WandbSweep | null>>();
  /** The warnings given so far (one per sweep that could not be read). */
  readonly warnings: string[] = [];

  constructor(
    private readonly api: Pick<WandbApi, "getSweep">,
    private readonly onWarning?: (message: string) => void,
  ) {}

  /** The sweep, or null when it could not be read (warned once). Rejects only on a bug, never on a W&B error. */
  get(entity: string, project: string, sweepName: string): Promise<WandbSweep | null> {
    const key = JSON.stringify([entity, project, sweepName]);
    let sweep = this.sweeps.get(key);
    if (!sweep) {
      sweep = this.fetch(entity, project, sweepName);
      this.sweeps.set(key, sweep);
    }
    return sweep;
  }

  /** Distinct sweeps asked for so far. */
  get size(): number {
    return this.sweeps.size;
  }

  private async fetch(entity: string, project: string, sweepName: string): Promise<WandbSweep | null> {
    const where = `${entity}/${project}/${sweepName}`;
    try {
      const sweep = await this.api.getSweep(entity, project, sweepName);
      if (sweep === null) this.warn(`sweep ${where} not found on W&B: its runs' sweep_info holds only its id and URL`);
      return sweep;
    } catch (e) {
      if (!isWandbError(e)) throw e;
      // The message is already one redacted line (operation, reason, retries).
      this.warn(`sweep ${where} could not be read (${e.message}): its runs' sweep_info holds only its id and URL`);
      return null;
    }
  }

  private warn(message: string): void {
    this.warnings.push(message);
    this.onWarning?.(message);
  }
}
