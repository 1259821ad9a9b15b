/**
 * Buffers for large answer bodies that give their memory back when freed. glibc's malloc serves a large block with
 * mmap and unmaps it when freed, but then raises its mmap threshold to that block's size (its dynamic threshold, up
 * to 32 MiB on 64-bit): after one 20 MB answer body is freed, every later allocation below 20 MB comes from its heaps,
 * whose free memory is only returned above twice the threshold. Measured in S2's sync (gdb on the running process):
 * the threshold rose to 20 MB when an answer's ArrayBuffer was swept, and glibc then kept ~100 MB free (malloc_stats:
 * 120 MB from the system, 21 MB in use), which malloc_trim gave back at once.
 *
 * A body of LARGE_BODY_BYTES or more is therefore allocated with at least MMAP_MAX_BYTES of address space: always
 * mmapped, its untouched pages never resident, unmapped when freed, and above the largest threshold glibc ever sets,
 * so the threshold does not move. Other allocators just reserve a little unused address space.
 */
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";

/** glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit (4 MiB x sizeof(long)), plus a page for its chunk header. */
const MMAP_MAX_BYTES = 32 * 2 ** 20 + 4096;
/** Smaller bodies (most GraphQL pages) are left to malloc as they are: a threshold of 1 MiB keeps little. */
export const LARGE_BODY_BYTES = 2 ** 20;

/** A buffer of `n` bytes (uninitialised) that, when large, does not move glibc's mmap threshold once freed. */
export function allocateBody(n: number): Buffer {
  if (n < LARGE_BODY_BYTES || n >= MMAP_MAX_BYTES) return Buffer.allocUnsafe(n);
  return Buffer.allocUnsafe(MMAP_MAX_BYTES).subarray(0, n);
}

/** `chunks` joined into one buffer of allocateBody. */
export function joinBody(chunks: Buffer[], total?: number): Buffer {
  if (chunks.length === 1) return chunks[0]!;
  const size = total ?? chunks.reduce((s, c) => s + c.length, 0);
  const out = allocateBody(size);
  let at = 0;
  for (const c of chunks) {
    c.copy(out, at);
    at += c.length;
  }
  return out;
}

/** Undoes one content encoding (gzip, deflate, br) into a buffer of allocateBody. */
export function decompressBody(raw: Buffer, encoding: "gzip" | "deflate" | "br"): Promise<Buffer> {
  const stream =
    encoding === "gzip" ? createGunzip() : encoding === "deflate" ? createInflate() : createBrotliDecompress();
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    stream.on("data", (c: Buffer) => {
      chunks.push(c);
      total += c.length;
    });
    stream.on("error", reject);
    stream.on("end", () => resolve(joinBody(chunks, total)));
    stream.end(raw);
  });
}
