#!/usr/bin/env node
// Checks the import graph of src/ and fake-wandb/ against the documented flow (README.md, "Layout").
// Usage: node scripts/check-imports.mjs [ROOT]   (ROOT defaults to the repository; the test runs it on a temp tree)
// Exit 0 when every edge is allowed and there is no cycle; else 1, with one line per problem.
//
// Data flows wandb -> sync -> archive -> export -> cli (and wandb -> sync/download -> output for wandb-download).
// An import goes the other way round: a stage imports the stages it takes from or hands to, never one that uses it.
// Test files (*.test.ts) and test/ may import anything; product code never imports them, nor fake-wandb/.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

/** Which stages each stage of src/ may import (its own folder always). "src" is src/index.ts, the library root. */
export const ALLOWED = {
  model: [], // values, records, DuckDB settings, the parquet-export reader, atomic files: shared by all, knows none
  wandb: ["model"], // the W&B protocol client
  archive: ["model"], // DuckDB and PostgreSQL behind one interface
  output: ["model"], // wandb-download's file writers (pickle, parquet, jsonl)
  sync: ["model", "wandb", "archive", "output"], // sync/pipeline: wandb -> archive; sync/download: wandb -> output
  export: ["model", "archive"], // the archive's Parquet export, through archive/index.ts
  import: ["model", "archive", "sync"], // local .wandb files into the archive, with the sync's history spool, safe file paths and plan marks
  serve: ["model", "archive"], // the browser viewer, reading the archive
  cli: ["model", "wandb", "archive", "output", "sync", "export", "import", "serve"],
  src: ["model", "wandb", "archive", "output", "sync", "export", "import", "serve", "cli"],
};

/** Stages that other stages (src/index.ts excepted) may reach only through one file: their public surface. */
export const PUBLIC_SURFACE = { archive: "src/archive/index.ts" };

const isTest = (rel) => rel.endsWith(".test.ts") || rel.startsWith("test/");

/** The stage of a repository-relative path: src/<stage>/..., "src" for src/*.ts, "fake-wandb", "test", or null. */
export function stageOf(rel) {
  const parts = rel.split("/");
  if (parts[0] === "src") return parts.length === 2 ? "src" : parts[1];
  if (parts[0] === "fake-wandb" || parts[0] === "test") return parts[0];
  return null;
}

function walk(dir, out) {
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    if (name === "node_modules" || name.startsWith(".")) continue;
    const p = join(dir, name);
    // The viewer's page modules are a browser program the server only serves as files, outside the stage flow.
    if (p.endsWith(join("src", "serve", "static"))) continue;
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.(ts|mts|mjs|js)$/.test(name) && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

/** Resolves a relative specifier as TypeScript's NodeNext does for our sources ("./x.js" is ./x.ts). */
function resolveSpecifier(root, fromFile, spec) {
  const base = resolve(dirname(fromFile), spec);
  const candidates = [
    base.replace(/\.js$/, ".ts").replace(/\.mjs$/, ".mts"),
    base,
    `${base}.ts`,
    join(base, "index.ts"),
  ];
  for (const c of candidates) {
    try {
      if (statSync(c).isFile()) return relative(root, c).split(sep).join("/");
    } catch {
      // try the next form
    }
  }
  return relative(root, base).split(sep).join("/");
}

/** Every relative import (static, dynamic, type-only, re-export) of the files of src/ and fake-wandb/. */
export function importGraph(root) {
  const files = [...walk(join(root, "src"), []), ...walk(join(root, "fake-wandb"), [])];
  const graph = new Map();
  for (const file of files) {
    const rel = relative(root, file).split(sep).join("/");
    const info = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
    const targets = info.importedFiles
      .map((f) => f.fileName)
      .filter((s) => s.startsWith("."))
      .map((s) => resolveSpecifier(root, file, s));
    graph.set(rel, [...new Set(targets)]);
  }
  return graph;
}

/** Edges of product code against the stage rules. */
export function edgeProblems(graph) {
  const problems = [];
  for (const [from, targets] of graph) {
    if (isTest(from)) continue;
    const s = stageOf(from);
    if (s !== "fake-wandb" && !(s in ALLOWED)) {
      problems.push(
        `${from}: stage "${s}" is not in the stage table of scripts/check-imports.mjs (add it, and its README)`,
      );
      continue;
    }
    for (const to of targets) {
      const t = stageOf(to);
      if (isTest(to)) problems.push(`${from} -> ${to}: product code imports test code`);
      else if (t === null) problems.push(`${from} -> ${to}: imports outside src/ and fake-wandb/`);
      else if (s === "fake-wandb" || t === "fake-wandb") {
        if (s !== t) problems.push(`${from} -> ${to}: fake-wandb/ and src/ stand apart (neither imports the other)`);
      } else if (s !== t && !ALLOWED[s].includes(t)) {
        problems.push(`${from} -> ${to}: ${s}/ may import only ${ALLOWED[s].join(", ") || "nothing of src/"}`);
      } else if (s !== t && s !== "src" && PUBLIC_SURFACE[t] !== undefined && to !== PUBLIC_SURFACE[t]) {
        problems.push(`${from} -> ${to}: ${t}/ is reached only through ${PUBLIC_SURFACE[t]}`);
      }
    }
  }
  return problems;
}

/** Import cycles among product files (Tarjan's strongly connected components), each as "a -> b -> a". */
export function cycleProblems(graph) {
  const nodes = [...graph.keys()].filter((f) => !isTest(f));
  const index = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const problems = [];
  let next = 0;
  const strong = (v) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w) || isTest(w)) continue;
      if (!index.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) !== index.get(v)) return;
    const comp = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      comp.push(w);
    } while (w !== v);
    const selfLoop = comp.length === 1 && (graph.get(v) ?? []).includes(v);
    if (comp.length > 1 || selfLoop) problems.push(`import cycle: ${comp.sort().join(" <-> ")}`);
  };
  for (const v of nodes) if (!index.has(v)) strong(v);
  return problems;
}

export function checkImports(root) {
  const graph = importGraph(root);
  return { files: graph.size, problems: [...edgeProblems(graph), ...cycleProblems(graph)] };
}

/** What the command prints and its exit status, for a repository root. */
export function checkReport(root) {
  const { files, problems } = checkImports(root);
  if (problems.length === 0) {
    return {
      status: 0,
      stdout: `check-imports: ${files} files of src/ and fake-wandb/ follow the documented flow, no cycles\n`,
      stderr: "",
    };
  }
  const lines = problems.map((p) => `check-imports: ${p}`);
  lines.push(`check-imports: ${problems.length} problem(s) in the import graph of ${files} files`);
  return { status: 1, stdout: "", stderr: `${lines.join("\n")}\n` };
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), ".."));
  const r = checkReport(root);
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  process.exitCode = r.status;
}
