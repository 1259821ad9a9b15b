/**
 * Our commands are measured as shipped: compiled JavaScript run by plain `node` (package.json's bins point at
 * dist/), so neither the tsx loader nor its esbuild helper process is billed to them. The harness compiles src/ and
 * fake-wandb/ with tsconfig.build.json into .tmp/bench-dist (gitignored) at start; if that fails it falls back to
 * `node --import tsx` on the sources and says so in the results.
 */
import { spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";

export interface Runtime {
  /** The commit our code was built from, plus how many files under src/ and fake-wandb/ differed from it. */
  source: string;
  /** "dist" (compiled) or "tsx" (sources through the tsx loader). */
  kind: "dist" | "tsx";
  /** The compiled folder (removed when the bench ends). */
  dir: string;
  /** node arguments that start a given entry (e.g. "src/cli/bin.ts"). */
  entry(relTs: string): string[];
  note: string;
}

export function prepareRuntime(root: string, log: (m: string) => void): Runtime {
  // One folder per bench process: two bench runs at once must not rebuild each other's binaries.
  const out = join(root, `.tmp/bench-dist-${process.pid}`);
  rmSync(out, { recursive: true, force: true });
  const head = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8", timeout: 30_000 });
  const dirty = spawnSync("git", ["status", "--porcelain", "--", "src", "fake-wandb"], {
    cwd: root,
    encoding: "utf8",
    timeout: 30_000,
  });
  const changed = (dirty.stdout ?? "").split("\n").filter(Boolean).length;
  const source = `${(head.stdout ?? "").trim() || "?"}${changed ? ` + ${changed} uncommitted files in src/ or fake-wandb/` : ""}`;
  const t0 = performance.now();
  const tsc = join(root, "node_modules/typescript/bin/tsc");
  const r = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json"), "--outDir", out], {
    cwd: root,
    encoding: "utf8",
    timeout: 300_000,
  });
  const need = ["src/cli/bin.js", "src/cli/wandb-download.js", "fake-wandb/bin.js"].map((p) => join(out, p));
  if (need.every((p) => existsSync(p))) {
    const errors = (r.stdout ?? "").split("\n").filter((l) => /error TS/.test(l)).length;
    const note = `compiled with tsc (into .tmp/bench-dist-PID) in ${((performance.now() - t0) / 1000).toFixed(1)} s${errors ? ` (${errors} type errors reported, output emitted anyway)` : ""}; run with plain node`;
    log(`runtime: ${note}`);
    return { kind: "dist", source, dir: out, entry: (rel) => [join(out, rel.replace(/\.ts$/, ".js"))], note };
  }
  const loader = import.meta.resolve("tsx");
  const note = `tsc did not emit the entry points (${(r.stdout ?? "").split("\n").slice(0, 3).join(" ").slice(0, 300)}); sources run with node --import tsx`;
  log(`runtime: ${note}`);
  return { kind: "tsx", source, dir: out, entry: (rel) => ["--import", loader, join(root, rel)], note };
}
