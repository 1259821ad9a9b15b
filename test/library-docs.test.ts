/**
 * Runs every TypeScript example of docs/library.md against the fake W&B server, as a user would run it
 * (`import ... from "dr-wandb"` resolved to this checkout), and checks the output names what the doc says.
 */
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { type FakeWandb, startFakeWandb } from "../fake-wandb/index.js";
import { ROOT, runNode, tempDir } from "./helpers.js";

interface Example {
  code: string;
  expect: string | null;
  line: number;
}

async function examples(): Promise<Example[]> {
  const text = await readFile(join(ROOT, "docs", "library.md"), "utf8");
  const out: Example[] = [];
  const re = /```ts\n([\s\S]*?)```\n(?:<!-- expect: (.*?) -->)?/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    out.push({ code: m[1]!, expect: m[2] ?? null, line: text.slice(0, m.index).split("\n").length });
  }
  return out;
}

let fake: FakeWandb;
before(async () => {
  fake = await startFakeWandb({ seed: 21, runs: 6, steps: 120, metrics: 4 });
});
after(async () => {
  await fake?.close();
});

describe("docs/library.md examples", async () => {
  const list = await examples();
  it("has examples", () => assert.ok(list.length >= 4));
  for (const ex of list) {
    it(`example at line ${ex.line} runs`, async () => {
      await using dir = await tempDir();
      const index = pathToFileURL(join(ROOT, "src", "index.ts")).href;
      const code = ex.code
        .replaceAll('from "dr-wandb"', `from ${JSON.stringify(index)}`)
        .replaceAll("my-entity", fake.entity)
        .replaceAll("my-project", fake.project);
      const file = join(dir.path, "example.mts");
      await writeFile(file, code);
      const r = await runNode(file, { cwd: dir.path, env: { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey } });
      assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
      if (ex.expect) {
        const want = ex.expect.replaceAll("my-entity", fake.entity).replaceAll("my-project", fake.project);
        assert.ok(r.stdout.includes(want), `output lacks ${JSON.stringify(want)}:\n${r.stdout}`);
      }
    });
  }
});
