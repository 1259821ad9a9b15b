/** scripts/check-imports.mjs on small temp trees: it passes the documented flow and catches each kind of bad edge. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
// @ts-expect-error: a plain JavaScript module of the repository's scripts (no declarations)
import { checkReport } from "../scripts/check-imports.mjs";

const SCRIPT = fileURLToPath(new URL("../scripts/check-imports.mjs", import.meta.url));
const REPO = fileURLToPath(new URL("..", import.meta.url));
const roots: string[] = [];

/** A tree with the documented flow (every stage importing what it may), plus `extra` files. */
function tree(extra: Record<string, string> = {}): string {
  const root = mkdtempSync(join(tmpdir(), "dr-wandb-imports-"));
  roots.push(root);
  const files: Record<string, string> = {
    "src/model/json.ts": "export const j = 1;\n",
    "src/wandb/client.ts": 'import { j } from "../model/json.js";\nexport const c = j;\n',
    "src/archive/index.ts": 'export type { A } from "./archive.js";\nexport const open = () => import("./open.js");\n',
    "src/archive/archive.ts": 'import type { j } from "../model/json.js";\nexport type A = typeof j;\n',
    "src/archive/open.ts": "export const o = 1;\n",
    "src/output/writer.ts": 'import { j } from "../model/json.js";\nexport const w = j;\n',
    "src/sync/pipeline.ts":
      'import type { A } from "../archive/index.js";\nimport { w } from "../output/writer.js";\nimport { c } from "../wandb/client.js";\nexport const p = [c, w] as unknown as A;\n',
    "src/export/archive-export.ts": 'import type { A } from "../archive/index.js";\nexport let e: A;\n',
    "src/cli/main.ts":
      'import { e } from "../export/archive-export.js";\nimport { p } from "../sync/pipeline.js";\nexport const m = [e, p];\n',
    "src/index.ts": 'export { o } from "./archive/open.js";\nexport { m } from "./cli/main.js";\n',
    "src/output/writer.test.ts": 'import "../../test/support/fixture.js";\nimport "../../fake-wandb/server.js";\n',
    "fake-wandb/server.ts": 'import { g } from "./generator.js";\nexport const s = g;\n',
    "fake-wandb/generator.ts": "export const g = 1;\n",
    "test/support/fixture.ts": 'import "../../src/archive/base.js";\n',
    ...extra,
  };
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

/** The command on a tree: run in this process (checkReport is what the command prints and exits with). */
function check(root: string): { status: number | null; stderr: string } {
  return checkReport(root);
}

/** The command itself, as `npm run check:imports` runs it. */
function checkInProcessOfItsOwn(root: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [SCRIPT, root], { encoding: "utf8" });
  return { status: r.status, stderr: r.stderr };
}

after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

describe("check-imports", () => {
  it("passes a tree that follows the flow (test files may import test/ and fake-wandb/)", () => {
    const r = check(tree());
    assert.equal(r.status, 0, r.stderr);
  });

  it("passes this repository", () => {
    const r = check(REPO);
    assert.equal(r.status, 0, r.stderr);
  });

  it("fails on a backwards edge: model/ importing wandb/ (the command: exit 1 and the edge on stderr)", () => {
    const r = checkInProcessOfItsOwn(
      tree({ "src/model/json.ts": 'import { c } from "../wandb/client.js";\nexport const j = c;\n' }),
    );
    assert.equal(r.status, 1);
    assert.match(r.stderr, /src\/model\/json\.ts -> src\/wandb\/client\.ts: model\/ may import only nothing of src\//);
  });

  it("fails on archive/ importing sync/, and on a dynamic import against the flow", () => {
    const r = check(
      tree({
        "src/archive/open.ts": 'import "../sync/pipeline.js";\nexport const o = 1;\n',
        "src/wandb/client.ts": 'export const c = 1;\nexport const later = () => import("../cli/main.js");\n',
      }),
    );
    assert.equal(r.status, 1);
    assert.match(r.stderr, /src\/archive\/open\.ts -> src\/sync\/pipeline\.ts: archive\/ may import only model/);
    assert.match(r.stderr, /src\/wandb\/client\.ts -> src\/cli\/main\.ts: wandb\/ may import only model/);
  });

  it("fails when a stage reaches past archive/index.ts", () => {
    const r = check(
      tree({ "src/export/archive-export.ts": 'import type { A } from "../archive/archive.js";\nexport let e: A;\n' }),
    );
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /src\/export\/archive-export\.ts -> src\/archive\/archive\.ts: archive\/ is reached only through/,
    );
  });

  it("fails on an import cycle, also one through a dynamic import inside a folder", () => {
    const r = check(
      tree({
        "src/output/writer.ts": 'export const w = 1;\nexport const open = () => import("./jsonl.js");\n',
        "src/output/jsonl.ts": 'import { w } from "./writer.js";\nexport const l = w;\n',
      }),
    );
    assert.equal(r.status, 1);
    assert.match(r.stderr, /import cycle: src\/output\/jsonl\.ts <-> src\/output\/writer\.ts/);
  });

  it("fails when product code imports fake-wandb/ or test code, or fake-wandb/ imports src/", () => {
    const r = check(
      tree({
        "src/cli/main.ts":
          'import "../../fake-wandb/server.js";\nimport "../output/writer.test.js";\nexport const m = 1;\n',
        "fake-wandb/generator.ts": 'import "../src/model/json.js";\nexport const g = 1;\n',
        "src/sync/pipeline.ts": 'import "../../test/support/fixture.js";\nexport const p = 1;\n',
      }),
    );
    assert.equal(r.status, 1);
    assert.match(r.stderr, /src\/cli\/main\.ts -> fake-wandb\/server\.ts: fake-wandb\/ and src\/ stand apart/);
    assert.match(r.stderr, /src\/cli\/main\.ts -> src\/output\/writer\.test\.ts: product code imports test code/);
    assert.match(r.stderr, /fake-wandb\/generator\.ts -> src\/model\/json\.ts: fake-wandb\/ and src\/ stand apart/);
    assert.match(r.stderr, /src\/sync\/pipeline\.ts -> test\/support\/fixture\.ts: product code imports test code/);
  });

  it("fails on a folder of src/ that the stage table does not know", () => {
    const r = check(tree({ "src/extras/x.ts": 'import { j } from "../model/json.js";\nexport const x = j;\n' }));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /src\/extras\/x\.ts: stage "extras" is not in the stage table/);
  });
});
