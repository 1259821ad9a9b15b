/**
 * File downloads: GET with credentials only for the base URL's origin (redirects followed by hand, see
 * Transport.openGet), streamed to `<dest>.part` and renamed when complete; resumed with Range after a failed
 * attempt (and across calls with `resume`); size and md5 verified (W&B's md5 is base64 of the digest).
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat, truncate } from "node:fs/promises";
import { dirname } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { WandbError } from "./errors.js";
import { classifyNetworkError } from "./retry.js";
import { readAll, type Transport } from "./transport.js";

export interface DownloadToFileOptions {
  operation?: string;
  /** "entity/project/run" for messages. */
  run?: string;
  /** Expected size in bytes (verified). */
  size?: number;
  /** Expected MD5, base64 of the digest as W&B reports it (hex accepted too). */
  md5?: string | null;
  /** Continue from an existing `<dest>.part` (or a short `dest`) instead of starting over. */
  resume?: boolean;
  signal?: AbortSignal;
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

/** MD5 of a file: base64 and hex. */
export async function fileMd5(path: string): Promise<{ base64: string; hex: string }> {
  const h = createHash("md5");
  await pipeline(createReadStream(path), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) h.update(chunk);
  });
  const d = h.digest();
  return { base64: d.toString("base64"), hex: d.toString("hex") };
}

function md5Matches(expected: string, actual: { base64: string; hex: string }): boolean {
  const e = expected.trim();
  return e === actual.base64 || e.toLowerCase() === actual.hex;
}

function contentRangeStart(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  const m = s ? /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(s.trim()) : null;
  return m ? Number(m[1]) : undefined;
}

function headerNumber(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  return s !== undefined && /^\d+$/.test(s) ? Number(s) : undefined;
}

/** Downloads `url` to `dest` (through `dest.part`), with retries and resume. Returns the file's size. */
export async function downloadToFile(
  transport: Transport,
  url: string,
  dest: string,
  options: DownloadToFileOptions = {},
): Promise<number> {
  const operation = options.operation ?? "downloadFile";
  const { run, signal, size: expected } = options;
  const part = `${dest}.part`;
  await mkdir(dirname(dest), { recursive: true });

  if (options.resume) {
    const destSize = await sizeOf(dest);
    if (destSize !== undefined && (await sizeOf(part)) === undefined) {
      if (expected !== undefined && destSize === expected) {
        if (!options.md5 || md5Matches(options.md5, await fileMd5(dest))) return destSize;
        await rm(dest, { force: true });
      } else if (expected === undefined || destSize < expected) await rename(dest, part);
      else await rm(dest, { force: true });
    }
  } else {
    await rm(part, { force: true });
  }

  try {
    await transport.withRetry({ operation, run, signal }, async () => {
      let offset = (await sizeOf(part)) ?? 0;
      if (expected !== undefined && offset > expected) {
        await truncate(part, 0);
        offset = 0;
      }
      if (expected !== undefined && offset === expected && offset > 0) return; // already complete
      const res = await transport.openGet(url, {
        operation,
        run,
        signal,
        headers: offset > 0 ? { range: `bytes=${offset}-` } : undefined,
      });
      if (res.statusCode === 416) {
        await res.body.dump().catch(() => undefined);
        await rm(part, { force: true });
        throw new WandbError({
          code: "PROTOCOL",
          operation,
          run,
          status: 416,
          reason: `range ${offset}- not satisfiable; starting over`,
          transient: true,
        });
      }
      let append = false;
      if (res.statusCode === 206) {
        const start = contentRangeStart(res.headers["content-range"]);
        if (start !== offset) {
          await res.body.dump().catch(() => undefined);
          await rm(part, { force: true });
          throw new WandbError({
            code: "PROTOCOL",
            operation,
            run,
            status: 206,
            reason: `server answered range ${start ?? "?"}- to a request for ${offset}-; starting over`,
            transient: true,
          });
        }
        append = true;
      }
      const announced = headerNumber(res.headers["content-length"]);
      let received = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          received += chunk.length;
          transport.countBytes(chunk.length);
          cb(null, chunk);
        },
      });
      try {
        await pipeline(res.body, counter, createWriteStream(part, { flags: append ? "a" : "w" }), { signal });
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        throw classifyNetworkError(e, { operation, run, timeoutMs: transport.downloadTimeoutMs });
      }
      if (announced !== undefined && received !== announced) {
        throw new WandbError({
          code: "PROTOCOL",
          operation,
          run,
          reason: `truncated body: got ${received} of ${announced} bytes`,
          transient: true,
        });
      }
      const total = (await sizeOf(part)) ?? 0;
      if (expected !== undefined && total < expected) {
        throw new WandbError({
          code: "PROTOCOL",
          operation,
          run,
          reason: `truncated file: got ${total} of ${expected} bytes`,
          transient: true,
        });
      }
    });
  } catch (e) {
    // Keep a partial file only when the caller asked for resumable downloads.
    if (!options.resume) await rm(part, { force: true });
    throw e;
  }

  const total = (await sizeOf(part)) ?? 0;
  if (expected !== undefined && total !== expected) {
    await rm(part, { force: true });
    throw new WandbError({
      code: "PROTOCOL",
      operation,
      run,
      reason: `size mismatch for ${dest}: expected ${expected} bytes, got ${total}`,
    });
  }
  if (options.md5) {
    const actual = await fileMd5(part);
    if (!md5Matches(options.md5, actual)) {
      await rm(part, { force: true });
      throw new WandbError({
        code: "PROTOCOL",
        operation,
        run,
        reason: `md5 mismatch for ${dest}: expected ${options.md5}, got ${actual.base64}`,
      });
    }
  }
  await rename(part, dest);
  return total;
}

/** Downloads `url` into memory (small files), with retries. Throws NOT_FOUND on 404. */
export async function downloadToBuffer(
  transport: Transport,
  url: string,
  options: { operation?: string; run?: string; signal?: AbortSignal; maxBytes?: number } = {},
): Promise<Buffer> {
  const operation = options.operation ?? "downloadFile";
  const { run, signal } = options;
  const maxBytes = options.maxBytes ?? 256 * 1024 * 1024;
  return transport.withRetry({ operation, run, signal }, async () => {
    const res = await transport.openGet(url, { operation, run, signal });
    if (res.statusCode === 416) {
      await res.body.dump().catch(() => undefined);
      throw new WandbError({ code: "PROTOCOL", operation, run, status: 416, reason: "HTTP 416", transient: true });
    }
    let buf: Buffer;
    try {
      buf = await readAll(res.body, (n) => transport.countBytes(n), maxBytes);
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      throw classifyNetworkError(e, { operation, run, timeoutMs: transport.downloadTimeoutMs });
    }
    if (buf.length > maxBytes) {
      throw new WandbError({ code: "PROTOCOL", operation, run, reason: `file larger than ${maxBytes} bytes` });
    }
    const announced = headerNumber(res.headers["content-length"]);
    if (announced !== undefined && buf.length !== announced) {
      throw new WandbError({
        code: "PROTOCOL",
        operation,
        run,
        reason: `truncated body: got ${buf.length} of ${announced} bytes`,
        transient: true,
      });
    }
    return buf;
  });
}
