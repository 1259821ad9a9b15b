/**
 * The storage host (another port, no auth): signed file and parquet-export URLs, as Google Cloud Storage serves
 * them for the real W&B.
 */
import { open } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { applyFault } from "./fault-replies.js";
import { decodeSegments, type Reply, readBody, safeEqual, splitTarget } from "./http.js";
import type { ServerState } from "./server-state.js";

export async function handleStorage(st: ServerState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { path, query } = splitTarget(req.url);
  await readBody(req).catch(() => undefined);
  st.stats.total++;
  st.stats.storage++;
  const isParquet = path.startsWith("/parquet/");
  if (isParquet) st.stats.parquet++;
  if (req.headers.authorization !== undefined) {
    st.stats.authLeaks.push({ path, at: new Date().toISOString() });
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    await st.send(req, res, storageError(405, "MethodNotAllowed", "Method not allowed."), { costed: false });
    return;
  }
  const token = query.get("token") ?? "";
  const decoded = decodeSegments(path).join("/");
  if (!safeEqual(token, st.signature(decoded))) {
    await st.send(req, res, storageError(403, "SignatureDoesNotMatch", "Access denied."), { costed: false });
    return;
  }
  let truncate = false;
  if (req.method === "GET") {
    const kind = st.dice.draw(st.settings, (k) => k !== "graphql");
    if (kind && (await applyFault(st, req, res, kind))) return;
    truncate = kind === "truncated";
  }
  if (isParquet) return serveParquet(st, req, res, path, truncate);
  if (path.startsWith("/files/")) {
    const found = st.parseFilePath(path);
    if (found) return st.sendFileBytes(req, res, found.run, found.name, {}, truncate);
  }
  await st.send(req, res, storageError(404, "NoSuchKey", "The specified key does not exist."), { costed: true });
}

function storageError(status: number, code: string, message: string): Reply {
  return {
    status,
    headers: { "Content-Type": "application/xml; charset=UTF-8" },
    body: Buffer.from(
      `<?xml version='1.0' encoding='UTF-8'?><Error><Code>${code}</Code><Message>${message}</Message></Error>`,
    ),
  };
}

async function serveParquet(
  st: ServerState,
  req: IncomingMessage,
  res: ServerResponse,
  pathname: string,
  truncate: boolean,
) {
  const parts = decodeSegments(pathname.slice("/parquet/".length));
  const [entity, project, runName, file] = parts;
  const run = entity === st.store.entity && project === st.store.project ? st.store.run(runName ?? "") : undefined;
  const id = file?.endsWith(".parquet") ? file.slice(0, -".parquet".length) : undefined;
  const exp = run && parts.length === 4 ? (await st.store.parquetExports(run)).find((e) => e.id === id) : undefined;
  if (!exp) {
    await st.send(req, res, storageError(404, "NoSuchKey", "The specified key does not exist."), { costed: true });
    return;
  }
  const handle = await open(exp.path, "r");
  try {
    const size = (await handle.stat()).size;
    const read = async (start: number, end: number): Promise<Buffer> => {
      const buf = Buffer.alloc(end - start + 1);
      let off = 0;
      while (off < buf.length) {
        const { bytesRead } = await handle.read(buf, off, buf.length - off, start + off);
        if (bytesRead === 0) break;
        off += bytesRead;
      }
      return buf.subarray(0, off);
    };
    await st.sendRanged(req, res, size, read, { "Content-Type": "application/octet-stream" }, truncate);
  } finally {
    await handle.close();
  }
}
