/**
 * What the client's request modules (listing, batches, projects-sweeps, files) share: the transport, the server's
 * learned capabilities (remembered per base URL) and the page settings, plus the page-size fallback.
 */
import { type Capabilities, isShapeRejection, SDK_PAGE_SIZE, saveCapabilities } from "./capabilities.js";
import { WandbError } from "./errors.js";
import type { Transport } from "./transport.js";

export class ClientCore {
  constructor(
    readonly baseUrl: string,
    readonly transport: Transport,
    readonly caps: Capabilities,
    readonly compat: boolean,
    /** Runs per listRuns page unless a call says otherwise. */
    readonly perPage: number,
    readonly filesPerPage: number,
    readonly runsPerRequest: number,
    private readonly cacheFile: string | undefined,
  ) {}

  learn(update: Partial<Capabilities>): void {
    Object.assign(this.caps, update);
    saveCapabilities(this.baseUrl, this.cacheFile);
  }

  /**
   * Sends a paged request with the largest page size the server accepts: `requested` (capped by what was learned),
   * halved on a shape rejection down to the SDK's 50 (the accepted size is remembered), and halved for this request
   * when a big page still fails with 5xx/timeouts after all retries.
   */
  async withPageSize<T>(
    kind: "runs" | "files",
    requested: number,
    listing: { size?: number },
    send: (size: number) => Promise<T>,
  ): Promise<T> {
    const key = kind === "runs" ? "maxRunsPerPage" : "maxFilesPerPage";
    let size = Math.min(listing.size ?? requested, this.caps[key] ?? requested);
    if (this.compat) size = Math.min(size, SDK_PAGE_SIZE);
    for (;;) {
      try {
        const result = await send(size);
        listing.size = size;
        return result;
      } catch (e) {
        if (size <= SDK_PAGE_SIZE) throw e;
        if (isShapeRejection(e)) {
          // Remembered for the server: never try above this again.
          size = Math.max(SDK_PAGE_SIZE, Math.floor(size / 2));
          this.learn({ [key]: size });
        } else if (e instanceof WandbError && e.transient && ["SERVER", "TIMEOUT", "PROTOCOL"].includes(e.code)) {
          // A big page that still fails with 5xx/timeouts after all retries: smaller pages for the rest of this
          // listing only (the failures may have had nothing to do with the size).
          size = Math.max(SDK_PAGE_SIZE, Math.floor(size / 2));
        } else throw e;
      }
    }
  }
}
