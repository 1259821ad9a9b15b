/**
 * The /_fake/* control endpoints of the API host (no auth, never faulted, never counted): stats, faults, mutate and
 * truth.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { JSON_TYPE, MAX_CONTROL_BODY, readBody } from "./http.js";
import type { FakeRun, MutateOp } from "./model.js";
import type { ServerState } from "./server-state.js";
import { stringifyWire } from "./wire-json.js";

export async function handleControl(
  st: ServerState,
  req: IncomingMessage,
  res: ServerResponse,
  url: { path: string; query: URLSearchParams },
): Promise<void> {
  const body = await readBody(req, MAX_CONTROL_BODY);
  const path = url.path;
  const reply = (status: number, value: unknown) => {
    const b = Buffer.from(stringifyWire(value));
    res.writeHead(status, { "Content-Type": JSON_TYPE, "Content-Length": b.length });
    res.end(b);
  };
  const method = req.method ?? "GET";
  if (path === "/_fake/stats" && method === "GET") return reply(200, st.stats);
  if (path === "/_fake/stats/reset" && method === "POST") {
    st.resetStats();
    return reply(200, { ok: true });
  }
  if (path === "/_fake/faults" && method === "GET") return reply(200, st.settings);
  if (path === "/_fake/faults" && method === "POST") {
    try {
      st.setFaults(JSON.parse(body.toString("utf8") || "{}"));
    } catch (e) {
      return reply(400, { error: (e as Error).message });
    }
    return reply(200, { ok: true, faults: st.settings });
  }
  if (path === "/_fake/mutate" && method === "POST") {
    let ops: MutateOp[];
    try {
      const parsed = JSON.parse(body.toString("utf8"));
      ops = Array.isArray(parsed) ? parsed : [parsed];
    } catch (e) {
      return reply(400, { error: `invalid JSON: ${(e as Error).message}` });
    }
    try {
      for (const op of ops) st.store.mutate(op);
    } catch (e) {
      const err = e as Error;
      if (err?.name === "MutateError" || err?.constructor?.name === "MutateError") {
        return reply(400, { error: err.message });
      }
      throw e;
    }
    return reply(200, { ok: true });
  }
  if (path === "/_fake/truth/runs" && method === "GET") {
    const lines = st.store.runs().map((r) => `${st.store.truthLine(st.store.truthRun(r))}\n`);
    return streamLines(res, lines);
  }
  const truth = /^\/_fake\/truth\/(history|events|files)$/.exec(path);
  if (truth && method === "GET") {
    const run = st.store.run(url.query.get("run") ?? "");
    if (!run) return reply(404, { error: `unknown run ${url.query.get("run")}` });
    if (truth[1] === "files") {
      const lines = st.store
        .files(run)
        .map((f) => `${JSON.stringify({ name: f.name, size: f.sizeBytes, md5: f.md5 })}\n`);
      return streamLines(res, lines);
    }
    if (truth[1] === "events") {
      return streamLines(
        res,
        st.store.events(run).map((row) => `${st.store.truthLine(row)}\n`),
      );
    }
    return streamHistory(st, res, run);
  }
  return reply(404, { error: `unknown control endpoint ${method} ${path}` });
}

function ndjsonHead(res: ServerResponse): void {
  res.writeHead(200, { "Content-Type": "application/x-ndjson" });
}

async function writeChunk(res: ServerResponse, chunk: string): Promise<void> {
  if (!res.write(chunk)) await new Promise<void>((resolve) => res.once("drain", resolve));
}

async function streamLines(res: ServerResponse, lines: string[]): Promise<void> {
  ndjsonHead(res);
  let buf = "";
  for (const line of lines) {
    buf += line;
    if (buf.length > 1 << 16) {
      await writeChunk(res, buf);
      buf = "";
    }
  }
  res.end(buf);
}

async function streamHistory(st: ServerState, res: ServerResponse, run: FakeRun): Promise<void> {
  ndjsonHead(res);
  if (run.firstStep >= 0) {
    const window = 5000;
    for (let lo = run.firstStep; lo <= run.lastStep; lo += window) {
      if (res.destroyed) return;
      let buf = "";
      for (const row of st.store.historyRows(run, lo, Math.min(lo + window, run.lastStep + 1))) {
        buf += `${st.store.truthLine(row)}\n`;
      }
      if (buf) await writeChunk(res, buf);
    }
  }
  res.end();
}
