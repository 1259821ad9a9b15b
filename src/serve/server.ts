/**
 * The viewer's HTTP server (node:http): static page assets, uPlot from node_modules, the JSON API (api.ts) and the
 * run files the sync downloaded. GET and HEAD only; nothing is ever written.
 *
 * Safety: on a loopback address only requests naming a loopback Host are answered (no DNS rebinding); on any other
 * address (or with a token given) every request must carry the access token (`?token=`, which sets a cookie, the
 * cookie, or `Authorization: Bearer`). Files are served only from `<output-dir>/files/`, resolved through symlinks,
 * as attachments or plain text, never as a page of this origin.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { readFile, realpath, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { ArchiveError } from "../archive/index.js";
import { BadRequest, handleApi, NotFound } from "./api.js";
import { ArchiveBusyError, type ArchiveSource } from "./source.js";

export interface ServeOptions {
  source: ArchiveSource;
  /** The output folder: run files are served from its files/ subfolder. */
  outputDir: string;
  host?: string;
  port?: number;
  /** Required on every request when set (always set for a non-loopback host: a random one if not given). */
  token?: string;
}

export interface RunningServer {
  url: string;
  /** The URL to open (with the token, when one is required). */
  openUrl: string;
  token: string | null;
  server: Server;
  close(): Promise<void>;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || /^127\./.test(host);
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/**
 * The folder of the page assets: next to this file in the sources, else the sources' copy found from the module's
 * folder upwards (the package's dist/src/serve/, or a test bundle of the CLI).
 */
function staticDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, "static")];
  for (let d = here, i = 0; i < 6; i++, d = dirname(d)) candidates.push(join(d, "src/serve/static"));
  for (const d of candidates) {
    if (existsSync(join(d, "index.html"))) return d;
  }
  throw new Error("the viewer's page assets (src/serve/static) are missing");
}

function uplotDir(): string {
  return dirname(fileURLToPath(import.meta.resolve("uplot/dist/uPlot.iife.min.js")));
}

const SECURITY_HEADERS = {
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
};

function send(res: ServerResponse, req: IncomingMessage, status: number, type: string, body: Buffer | string): void {
  let buf = typeof body === "string" ? Buffer.from(body) : body;
  const headers: Record<string, string | number> = { ...SECURITY_HEADERS, "Content-Type": type };
  if (buf.length > 32_768 && /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""))) {
    buf = gzipSync(buf, { level: 1 });
    headers["Content-Encoding"] = "gzip";
  }
  headers["Content-Length"] = buf.length;
  res.writeHead(status, headers);
  res.end(req.method === "HEAD" ? undefined : buf);
}

function sendJson(res: ServerResponse, req: IncomingMessage, status: number, body: unknown): void {
  const text = JSON.stringify(body, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
  send(res, req, status, "application/json; charset=utf-8", text);
}

function tokenOk(req: IncomingMessage, url: URL, token: string): boolean {
  const given: string[] = [];
  const q = url.searchParams.get("token");
  if (q) given.push(q);
  const auth = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ""));
  if (auth) given.push(auth[1]!);
  for (const part of String(req.headers.cookie ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === "dr_wandb_token") given.push(decodeURIComponent(v.join("=")));
  }
  const want = Buffer.from(token);
  return given.some((g) => {
    const b = Buffer.from(g);
    return b.length === want.length && timingSafeEqual(b, want);
  });
}

/** The file of run `runId` named `name`, if it lies inside `<outputDir>/files/` (symlinks resolved). */
async function runFilePath(
  source: ArchiveSource,
  outputDir: string,
  q: URLSearchParams,
): Promise<{ path: string; name: string } | null> {
  const entity = q.get("entity") ?? "";
  const project = q.get("project") ?? "";
  const run = q.get("run") ?? "";
  const name = q.get("name") ?? "";
  const files = await source.use((r) => r.files({ entity, project }, run));
  const row = files.find((f) => f.name === name);
  if (!row?.local_path) return null;
  const root = resolve(outputDir, "files");
  const candidate = resolve(outputDir, row.local_path);
  if (!candidate.startsWith(root + sep)) return null;
  let real: string;
  let realRoot: string;
  try {
    real = await realpath(candidate);
    realRoot = await realpath(root);
  } catch {
    return null;
  }
  if (!real.startsWith(realRoot + sep)) return null;
  const st = await stat(real);
  return st.isFile() ? { path: real, name } : null;
}

const TEXT_FILES = /\.(log|txt|json|yaml|yml|md|csv|py|cfg|ini|toml)$/i;

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const host = opts.host ?? "127.0.0.1";
  const token = opts.token ?? (isLoopback(host) ? null : randomBytes(18).toString("base64url"));
  const assets = staticDir();
  const vendor = uplotDir();
  const assetCache = new Map<string, Buffer>();
  const asset = async (file: string): Promise<Buffer> => {
    let b = assetCache.get(file);
    if (!b) {
      b = await readFile(file);
      assetCache.set(file, b);
    }
    return b;
  };
  let port = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD" }).end();
      return;
    }
    const url = new URL(req.url ?? "/", "http://viewer.invalid");
    if (isLoopback(host) && !token) {
      const h = String(req.headers.host ?? "")
        .replace(/:\d+$/, "")
        .replace(/^\[(.*)\]$/, "$1");
      if (!isLoopback(h)) {
        send(res, req, 421, "text/plain; charset=utf-8", "this viewer answers only on a loopback host name\n");
        return;
      }
    }
    if (token) {
      if (!tokenOk(req, url, token)) {
        send(
          res,
          req,
          401,
          "text/plain; charset=utf-8",
          "access token required: open the URL dr-wandb serve printed\n",
        );
        return;
      }
      if (url.searchParams.get("token")) {
        res.setHeader("Set-Cookie", `dr_wandb_token=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`);
      }
    }
    const path = url.pathname;
    if (path === "/" || path === "/index.html") {
      send(res, req, 200, TYPES[".html"]!, await asset(join(assets, "index.html")));
      return;
    }
    const a = /^\/assets\/([a-z0-9-]+\.(?:js|css|svg))$/.exec(path);
    if (a) {
      const file = join(assets, a[1]!);
      if (!existsSync(file)) throw new NotFound(`no asset ${a[1]}`);
      send(res, req, 200, TYPES[extname(file)]!, await asset(file));
      return;
    }
    if (path === "/vendor/uPlot.iife.min.js" || path === "/vendor/uPlot.min.css") {
      send(res, req, 200, TYPES[extname(path)]!, await asset(join(vendor, path.slice("/vendor/".length))));
      return;
    }
    if (path === "/api/file") {
      const f = await runFilePath(opts.source, opts.outputDir, url.searchParams);
      if (!f) throw new NotFound("no such file in the archive's files folder");
      const st = await stat(f.path);
      const text = TEXT_FILES.test(f.name);
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Content-Type": text ? "text/plain; charset=utf-8" : "application/octet-stream",
        "Content-Length": st.size,
        "Content-Disposition": `${text && url.searchParams.get("download") !== "1" ? "inline" : "attachment"}; filename*=UTF-8''${encodeURIComponent(f.name.split("/").pop() ?? "file")}`,
      });
      if (req.method === "HEAD") res.end();
      else createReadStream(f.path).pipe(res);
      return;
    }
    const api = /^\/api\/([a-z-]+)$/.exec(path);
    if (api) {
      const r = await opts.source.use(async () => handleApi(api[1]!, url.searchParams, opts.source));
      sendJson(res, req, r.status ?? 200, r.body);
      return;
    }
    throw new NotFound(`nothing at ${path}`);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const [status, code] =
        e instanceof BadRequest
          ? [400, "bad_request"]
          : e instanceof NotFound
            ? [404, "not_found"]
            : e instanceof ArchiveBusyError
              ? [503, "busy"]
              : e instanceof ArchiveError
                ? [500, `archive_${e.code.toLowerCase()}`]
                : [500, "internal"];
      const message = e instanceof Error ? e.message.split("\n")[0] : String(e);
      if (status === 503) res.setHeader("Retry-After", "2");
      sendJson(res, req, status, { error: code, message });
    });
  });
  await new Promise<void>((res, rej) => {
    server.once("error", rej);
    server.listen(opts.port ?? 0, host, () => {
      server.off("error", rej);
      res();
    });
  });
  port = (server.address() as AddressInfo).port;
  const shown = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;
  const url = `http://${shown}:${port}/`;
  return {
    url,
    openUrl: token ? `${url}?token=${encodeURIComponent(token)}` : url,
    token,
    server,
    close: () =>
      new Promise<void>((res) => {
        server.close(() => res());
        server.closeAllConnections();
      }),
  };
}
