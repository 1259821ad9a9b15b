import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { promisify } from "node:util";
import { brotliCompress, deflate, gzip } from "node:zlib";
import { runNode, tempDir } from "../../test/helpers.js";
import { allocateBody, decompressBody, joinBody, LARGE_BODY_BYTES } from "./large-buffer.js";

/**
 * What glibc keeps after a child process frees a 20 MB body (allocated by `how`), then 24 buffers of 1 MB: RSS
 * growth in MB from before the 1 MB buffers to after they are freed and collected.
 */
async function keptAfterLargeBody(how: "allocateBody" | "allocUnsafe"): Promise<number> {
  const mod = new URL("./large-buffer.ts", import.meta.url).href;
  const script = `
    const { setFlagsFromString } = await import("node:v8");
    const { runInNewContext } = await import("node:vm");
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc");
    const { allocateBody } = await import(${JSON.stringify(mod)});
    const make = (n) => (${JSON.stringify(how)} === "allocateBody" ? allocateBody(n) : Buffer.allocUnsafe(n));
    const settle = async () => {
      for (let i = 0; i < 3; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    let body = make(20e6);
    body.fill(1);
    body = null;
    await settle();
    const before = process.memoryUsage.rss();
    let small = [];
    for (let i = 0; i < 24; i++) small.push(make(1e6).fill(2));
    small = null;
    await settle();
    console.log((process.memoryUsage.rss() - before) / 1e6);
  `;
  await using dir = await tempDir("dr-wandb-body-");
  const file = join(dir.path, "kept.mjs");
  await writeFile(file, script);
  const r = await runNode(file, { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  return Number(r.stdout.trim());
}

describe("large answer bodies", () => {
  test("allocateBody: large bodies get at least 32 MiB of address space, others their size", () => {
    const small = allocateBody(LARGE_BODY_BYTES - 1);
    assert.equal(small.length, LARGE_BODY_BYTES - 1);
    assert.ok(small.buffer.byteLength < 2 * LARGE_BODY_BYTES);
    for (const n of [LARGE_BODY_BYTES, 20e6]) {
      const b = allocateBody(n);
      assert.equal(b.length, n);
      assert.ok(b.buffer.byteLength > 32 * 2 ** 20, `${n}: ${b.buffer.byteLength}`);
    }
    const huge = allocateBody(40 * 2 ** 20);
    assert.equal(huge.buffer.byteLength, 40 * 2 ** 20);
  });

  test("joinBody and decompressBody give the bytes back unchanged", async () => {
    const parts = [Buffer.from("ab"), Buffer.alloc(LARGE_BODY_BYTES, 7), Buffer.from("é")];
    const joined = joinBody(parts);
    assert.deepEqual(joined, Buffer.concat(parts));
    const text = Buffer.from(JSON.stringify({ data: { rows: Array.from({ length: 5e4 }, (_, i) => `row ${i} ü`) } }));
    assert.deepEqual(await decompressBody(await promisify(gzip)(text), "gzip"), text);
    assert.deepEqual(await decompressBody(await promisify(deflate)(text), "deflate"), text);
    assert.deepEqual(await decompressBody(await promisify(brotliCompress)(text), "br"), text);
    await assert.rejects(decompressBody(Buffer.from("not gzip"), "gzip"));
  });

  // glibc's dynamic mmap threshold: what the module exists for (on other C libraries both keep little).
  test("a freed large body leaves glibc returning later frees (a plain buffer leaves them kept)", async () => {
    const plain = await keptAfterLargeBody("allocUnsafe");
    const ours = await keptAfterLargeBody("allocateBody");
    assert.ok(ours < 8, `kept ${ours} MB after allocateBody`);
    const report = process.report.getReport() as { header?: { glibcVersionRuntime?: string } };
    if (process.platform === "linux" && report.header?.glibcVersionRuntime) {
      assert.ok(plain > 16, `the mechanism itself: kept ${plain} MB after a plain 20 MB buffer`);
    }
  });
});
