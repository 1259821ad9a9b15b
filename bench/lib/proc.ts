/**
 * Runs one measured child process: wall time, peak resident memory of its whole process tree, a hard timeout.
 *
 * The child is started in its own process group (detached), so a timeout can stop it together with everything it
 * started (the official client's wandb-core sidecar, for example) by signalling that group, and nothing else.
 *
 * Peak RSS: every `sampleMs` the tree (the child and every process descended from it, found through the ppid chain
 * in /proc, plus anything left in its process group) is read from /proc/<pid>/status. We keep the largest sum of
 * VmRSS over the tree seen in one sample, and the largest single-process VmHWM (the kernel's own high-water mark,
 * which catches spikes shorter than the sampling period). The reported peak is the larger of the two.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

export interface MeasureOptions {
  cmd: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  timeoutMs: number;
  sampleMs?: number;
  /** Called on every sample (e.g. to poll the fake's stats); must not throw. */
  onSample?: (elapsedMs: number) => void;
  /** Keep at most this many bytes of stdout (from the end). Default 4 MB. */
  maxStdout?: number;
  /** Stop the tree when its summed RSS exceeds this (protects the shared machine). Default 12 GB. */
  maxTreeRssMb?: number;
}

export interface MeasureResult {
  wallMs: number;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /** Stopped because the tree's memory went past maxTreeRssMb. */
  memoryCapped: boolean;
  /** Peak resident memory of the process tree, in MB (see the module comment). */
  peakRssMb: number;
  /** Largest number of processes seen in the tree at once. */
  maxProcesses: number;
  /** CPU time (user + system) of the tree, summed over every process seen (last sample of each). */
  cpuS: number;
  /** Mean 1-minute load average over the samples (how busy the machine was, all processes). */
  meanLoad: number;
  stdout: string;
  /** The last ~8 KB of stderr. */
  stderrTail: string;
}

interface ProcInfo {
  pid: number;
  ppid: number;
  pgrp: number;
}

function readProcs(): ProcInfo[] {
  const out: ProcInfo[] = [];
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      // pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses, so split after the last ')'.
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.push({ pid: Number(e), ppid: Number(rest[1]), pgrp: Number(rest[2]) });
    } catch {
      // the process ended between readdir and read
    }
  }
  return out;
}

/** The pids of `root` and all its descendants (and members of its process group). */
export function processTree(root: number): number[] {
  const procs = readProcs();
  const children = new Map<number, number[]>();
  for (const p of procs) {
    const list = children.get(p.ppid) ?? [];
    list.push(p.pid);
    children.set(p.ppid, list);
  }
  const seen = new Set<number>();
  const stack = [root];
  while (stack.length > 0 && seen.size < 10_000) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    for (const c of children.get(pid) ?? []) stack.push(c);
  }
  for (const p of procs) if (p.pgrp === root) seen.add(p.pid);
  return [...seen];
}

/** utime + stime of one process, in seconds (USER_HZ is 100 on Linux). */
function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return null;
  }
}

/** The 1-minute load average. */
export function loadAverage(): number {
  try {
    return Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
  } catch {
    return Number.NaN;
  }
}

function statusKb(pid: number): { rss: number; hwm: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = /VmRSS:\s+(\d+) kB/.exec(s);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(s);
    if (!rss || !hwm) return null; // zombie or kernel thread
    return { rss: Number(rss[1]), hwm: Number(hwm[1]) };
  } catch {
    return null;
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Children currently running under measure(); stopped (by process group) if the harness itself is interrupted. */
const live = new Set<ChildProcess>();

export function stopAllMeasured(): void {
  for (const c of live) killGroup(c, "SIGKILL");
}

export function measure(o: MeasureOptions): Promise<MeasureResult> {
  const sampleMs = o.sampleMs ?? 200;
  const maxStdout = o.maxStdout ?? 4 * 1024 * 1024;
  const maxTreeRssMb = o.maxTreeRssMb ?? 12 * 1024;
  let memoryCapped = false;
  return new Promise((resolve) => {
    const start = performance.now();
    const child = spawn(o.cmd, o.args, { cwd: o.cwd, env: o.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    live.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8");
    child.stderr?.setEncoding("utf8");
    child.stdout?.on("data", (d: string) => {
      stdout += d;
      if (stdout.length > maxStdout) stdout = stdout.slice(stdout.length - maxStdout);
    });
    child.stderr?.on("data", (d: string) => {
      stderr += d;
      if (stderr.length > 64 * 1024) stderr = stderr.slice(stderr.length - 16 * 1024);
    });

    let peakSumKb = 0;
    let peakHwmKb = 0;
    let maxProcesses = 0;
    const hwmByPid = new Map<number, number>();
    const cpuByPid = new Map<number, number>();
    let loadSum = 0;
    let loadN = 0;
    const sample = () => {
      if (child.pid === undefined) return;
      let sum = 0;
      const tree = processTree(child.pid);
      maxProcesses = Math.max(maxProcesses, tree.length);
      for (const pid of tree) {
        const s = statusKb(pid);
        if (!s) continue;
        sum += s.rss;
        hwmByPid.set(pid, Math.max(hwmByPid.get(pid) ?? 0, s.hwm));
        const c = cpuSeconds(pid);
        if (c !== null) cpuByPid.set(pid, Math.max(cpuByPid.get(pid) ?? 0, c));
      }
      const la = loadAverage();
      if (Number.isFinite(la)) {
        loadSum += la;
        loadN++;
      }
      peakSumKb = Math.max(peakSumKb, sum);
      if (sum / 1024 > maxTreeRssMb && !memoryCapped) {
        memoryCapped = true;
        killGroup(child, "SIGKILL");
      }
      for (const v of hwmByPid.values()) peakHwmKb = Math.max(peakHwmKb, v);
      o.onSample?.(performance.now() - start);
    };
    const timer = setInterval(sample, sampleMs);
    sample();

    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const deadline = setTimeout(() => {
      timedOut = true;
      killGroup(child, "SIGTERM");
      killTimer = setTimeout(() => killGroup(child, "SIGKILL"), 5000);
    }, o.timeoutMs);

    // Wall time ends when the child itself exits; a sidecar still holding its pipes is then stopped by group.
    let exitedAt: number | undefined;
    let reaper: NodeJS.Timeout | undefined;
    child.on("exit", () => {
      exitedAt = performance.now();
      reaper = setTimeout(() => killGroup(child, "SIGKILL"), 2000);
    });
    child.on("close", (code, signal) => {
      const wallMs = (exitedAt ?? performance.now()) - start;
      if (reaper) clearTimeout(reaper);
      clearInterval(timer);
      clearTimeout(deadline);
      if (killTimer) clearTimeout(killTimer);
      // Anything the child left behind in its group (a sidecar that outlived its parent) goes too.
      killGroup(child, "SIGKILL");
      live.delete(child);
      resolve({
        wallMs,
        exitCode: code,
        signal,
        timedOut,
        memoryCapped,
        peakRssMb: Math.max(peakSumKb, peakHwmKb) / 1024,
        maxProcesses,
        cpuS: [...cpuByPid.values()].reduce((a, b) => a + b, 0),
        meanLoad: loadN ? loadSum / loadN : Number.NaN,
        stdout,
        stderrTail: stderr.slice(-8192),
      });
    });
    child.on("error", (e) => {
      stderr += `\nspawn error: ${e.message}`;
    });
  });
}
