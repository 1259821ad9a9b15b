/**
 * fake-wandb in its own process (so the server and the measured tool each get a core), and the harness's control
 * client for it (/_fake/stats, /_fake/mutate, /_fake/truth/runs). Every URL is checked to be loopback first.
 */
import { type ChildProcess, spawn } from "node:child_process";

export interface FakeSettings {
  seed: number;
  runs: number;
  steps: number;
  metrics: number;
  runningFraction: number;
  latencyMs: number;
  latencyPerKbMs: number;
  /** Requests per second on the API host; 0 = unlimited. */
  rateLimit: number;
  parquetExports: boolean;
}

export interface FakeStats {
  total: number;
  graphql: number;
  byOperation: Record<string, number>;
  storage: number;
  files: number;
  parquet: number;
  bytesOut: number;
  rateLimited: number;
  faults: Record<string, number>;
  byStatus: Record<string, number>;
}

export interface TruthRun {
  name: string;
  state: string;
  historyLineCount: number;
  lastStep: number;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

/** Throws unless the URL points at this machine's loopback interface. */
export function assertLoopback(url: string): void {
  const u = new URL(url);
  if (!LOOPBACK.has(u.hostname) || (u.protocol !== "http:" && u.protocol !== "https:")) {
    throw new Error(`bench: refusing non-loopback URL ${url}`);
  }
}

async function http(url: string, init?: RequestInit & { timeoutMs?: number }): Promise<Response> {
  assertLoopback(url);
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(init?.timeoutMs ?? 120_000) });
  return res;
}

export class FakeProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    readonly apiKey: string,
    readonly entity: string,
    readonly project: string,
    readonly settings: FakeSettings,
    readonly startMs: number,
  ) {}

  /** Starts `fake-wandb/bin.ts` with tsx in a child process and waits for its ready line (bounded). */
  static async start(
    root: string,
    entry: string[],
    s: FakeSettings,
    cacheDir: string,
    timeoutMs = 300_000,
  ): Promise<FakeProcess> {
    const args = [
      ...entry,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--seed",
      String(s.seed),
      "--runs",
      String(s.runs),
      "--steps",
      String(s.steps),
      "--metrics",
      String(s.metrics),
      "--running-fraction",
      String(s.runningFraction),
      "--latency-ms",
      String(s.latencyMs),
      "--latency-per-kb-ms",
      String(s.latencyPerKbMs),
      "--rate-limit",
      String(s.rateLimit),
      "--parquet-exports",
      s.parquetExports ? "on" : "off",
      "--cache-dir",
      cacheDir,
    ];
    const t0 = performance.now();
    const child = spawn(process.execPath, ["--max-old-space-size=8192", ...args], {
      cwd: root,
      env: { ...process.env, NODE_OPTIONS: "" },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (d: string) => {
      stderr = (stderr + d).slice(-8192);
    });
    const line = await new Promise<string>((resolve, reject) => {
      let buf = "";
      const timer = setTimeout(() => {
        reject(new Error(`fake-wandb did not start within ${timeoutMs} ms: ${stderr.trim()}`));
      }, timeoutMs);
      child.stdout?.setEncoding("utf8");
      child.stdout?.on("data", (d: string) => {
        buf += d;
        const nl = buf.indexOf("\n");
        if (nl >= 0) {
          clearTimeout(timer);
          resolve(buf.slice(0, nl));
        }
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`fake-wandb exited (${code}) before it was ready: ${stderr.trim()}`));
      });
    }).catch((e) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        // gone
      }
      throw e;
    });
    const ready = JSON.parse(line) as { url: string; apiKey: string; entity: string; project: string };
    assertLoopback(ready.url);
    return new FakeProcess(child, ready.url, ready.apiKey, ready.entity, ready.project, s, performance.now() - t0);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  async stats(): Promise<FakeStats> {
    const res = await http(`${this.url}/_fake/stats`, { timeoutMs: 30_000 });
    if (!res.ok) throw new Error(`GET /_fake/stats: HTTP ${res.status}`);
    return (await res.json()) as FakeStats;
  }

  /** Zeroes the counters and restarts the rate-limit window (by re-posting the same limit). */
  async reset(): Promise<void> {
    let res = await http(`${this.url}/_fake/stats/reset`, { method: "POST" });
    if (!res.ok) throw new Error(`POST /_fake/stats/reset: HTTP ${res.status}`);
    res = await http(`${this.url}/_fake/faults`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ rateLimit: this.settings.rateLimit }),
    });
    if (!res.ok) throw new Error(`POST /_fake/faults: HTTP ${res.status}`);
  }

  async mutate(ops: object[]): Promise<void> {
    const res = await http(`${this.url}/_fake/mutate`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(ops),
    });
    if (!res.ok) throw new Error(`POST /_fake/mutate: HTTP ${res.status} ${await res.text()}`);
  }

  /** The fake's truth about every run (only the fields the harness needs are kept). */
  async truthRuns(): Promise<TruthRun[]> {
    const res = await http(`${this.url}/_fake/truth/runs`, { timeoutMs: 300_000 });
    if (!res.ok) throw new Error(`GET /_fake/truth/runs: HTTP ${res.status}`);
    const text = await res.text();
    const out: TruthRun[] = [];
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      // NaN/Infinity may appear as bare tokens in config/summary; pick the fields we need without a full parse.
      const name = /"name":"([^"]*)"/.exec(line)?.[1];
      const state = /"state":"([^"]*)"/.exec(line)?.[1];
      const rows = /"historyLineCount":(\d+)/.exec(line)?.[1];
      const last = /"lastStep":(-?\d+)/.exec(line)?.[1];
      if (name === undefined || state === undefined) continue;
      out.push({ name, state, historyLineCount: Number(rows ?? 0), lastStep: Number(last ?? -1) });
    }
    return out;
  }

  /** A GraphQL POST with the API key (used by the warm-up and the pagination bound). */
  async graphql(query: string, variables: Record<string, unknown>): Promise<{ body: string; status: number }> {
    const res = await http(`${this.url}/graphql`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Authorization: `Basic ${Buffer.from(`api:${this.apiKey}`).toString("base64")}`,
      },
      body: JSON.stringify({ query, variables }),
    });
    return { body: await res.text(), status: res.status };
  }

  /**
   * Makes the fake write every finished run's parquet export before any tool is timed: the fake writes exports
   * lazily on the first parquetHistory request, serialised, which would otherwise bill the fake's own DuckDB work to
   * whichever tool asks first. Bounded: one request per run, `concurrency` at a time.
   */
  async warmParquet(runNames: string[], concurrency = 4): Promise<number> {
    if (!this.settings.parquetExports) return 0;
    const t0 = performance.now();
    const q = `query Warm($entity: String!, $project: String!, $name: String!) {
      project(name: $project, entityName: $entity) { run(name: $name) { parquetHistory(liveKeys: ["_step"]) { parquetUrls } } }
    }`;
    let next = 0;
    const worker = async () => {
      while (next < runNames.length) {
        const name = runNames[next++]!;
        const r = await this.graphql(q, { entity: this.entity, project: this.project, name });
        if (r.status !== 200) throw new Error(`warm-up of ${name}: HTTP ${r.status} ${r.body.slice(0, 200)}`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, runNames.length) }, worker));
    return performance.now() - t0;
  }

  async close(): Promise<void> {
    const pid = this.child.pid;
    if (pid === undefined || this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    try {
      process.kill(-pid, "SIGTERM");
    } catch {
      return;
    }
    const t = setTimeout(() => {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // gone
      }
    }, 5000);
    await exited;
    clearTimeout(t);
  }
}
