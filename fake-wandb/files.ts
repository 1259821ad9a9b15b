/** The files of a generated run (config.yaml, wandb-metadata.json, media, hostile names, a large file). */

import { encodeWandbJson } from "./encode.js";
import { makePng, mediaInfo } from "./keys.js";
import type { FakeRun, FValue, GeneratorOptions } from "./model.js";
import { hash3 } from "./random.js";
import type { RunSpec } from "./spec.js";

// ---------------------------------------------------------------------------------------------------------------
// Files

export interface FileSpec {
  name: string;
  mimetype: string;
  content: () => Buffer;
}

function mimeOf(name: string): string {
  if (name.endsWith(".json")) return "application/json";
  if (name.endsWith(".png")) return "image/png";
  if (name.endsWith(".yaml")) return "application/x-yaml";
  if (name.endsWith(".txt") || name.endsWith(".log")) return "text/plain";
  return "application/octet-stream";
}

function yamlValue(v: FValue): string {
  // JSON is valid YAML flow syntax; non-finite numbers use YAML's spelling.
  if (typeof v === "number" && !Number.isFinite(v)) return Number.isNaN(v) ? ".nan" : v > 0 ? ".inf" : "-.inf";
  return encodeWandbJson(v);
}

export function configYaml(run: FakeRun): string {
  let s = "_wandb:\n  value:\n";
  for (const k of Object.keys(run.wandbConfig)) s += `    ${JSON.stringify(k)}: ${yamlValue(run.wandbConfig[k]!)}\n`;
  for (const k of Object.keys(run.config)) {
    s += `${JSON.stringify(k)}:\n  desc: null\n  value: ${yamlValue(run.config[k]!)}\n`;
  }
  return s;
}

/** Every file of a run (content computed on demand). */
export function fileSpecs(spec: RunSpec, run: FakeRun, ctxOptions: GeneratorOptions): FileSpec[] {
  const files: FileSpec[] = [];
  const text = (name: string, f: () => string) =>
    files.push({ name, mimetype: mimeOf(name), content: () => Buffer.from(f(), "utf8") });
  text("wandb-metadata.json", () =>
    JSON.stringify(
      {
        os: "Linux-5.15.0-105-generic-x86_64-with-glibc2.35",
        python: "CPython 3.11.9",
        startedAt: `${new Date(spec.createdEpoch * 1000).toISOString().slice(0, 23)}Z`,
        args: ["--lr", String(run.config.lr ?? 0.001), "--seed", String(spec.index)],
        program: "/home/user/project/train.py",
        codePath: "train.py",
        git: { remote: "https://github.com/example/project.git", commit: run.commit },
        email: run.user.email,
        root: "/home/user/project",
        host: `gpu-node-${spec.index % 7}`,
        username: run.user.username,
        executable: "/usr/bin/python3",
        cpu_count: 16,
        cpu_count_logical: 32,
        gpu: "NVIDIA A100-SXM4-80GB",
        gpu_count: 1,
        disk: { "/": { total: "1000000000000", used: String(100000000 + (spec.seed % 1000000)) } },
        memory: { total: "540000000000" },
      },
      null,
      4,
    ),
  );
  text("output.log", () => {
    const lines: string[] = [];
    const n = 5 + (spec.seed % 40);
    for (let i = 0; i < n; i++) lines.push(`step ${i * 10}: loss=${(1 / (i + 1)).toFixed(4)} ${ctxOptions.project}`);
    return `${lines.join("\n")}\n`;
  });
  text("config.yaml", () => configYaml(run));
  text("requirements.txt", () => "numpy==1.26.4\ntorch==2.3.1\nwandb==0.19.1\n");
  for (const x of spec.extraFiles) {
    if (x.kind === "text") text(x.name, () => x.text);
    else {
      files.push({
        name: x.name,
        mimetype: mimeOf(x.name),
        content: () => {
          const buf = Buffer.alloc(x.size);
          for (let i = 0; i + 4 <= x.size; i += 4) buf.writeUInt32LE(hash3(spec.seed, 0xb16, i), i);
          return buf;
        },
      });
    }
  }
  // Media files referenced by image values in history.
  for (const k of spec.keys) {
    if (k.kind !== "image") continue;
    for (const seg of spec.segments) {
      for (let j = 0; j < seg.count; j++) {
        const step = seg.startStep + j * seg.stride;
        if (step % k.period !== k.phase) continue;
        const m = mediaInfo(spec.seed, k, step);
        files.push({ name: m.path, mimetype: "image/png", content: () => makePng(m.seed) });
      }
    }
  }
  return files;
}
