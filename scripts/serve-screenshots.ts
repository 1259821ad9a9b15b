/**
 * `npx tsx scripts/serve-screenshots.ts`: the screenshots of `dr-wandb serve` in docs/images/, taken in Debian's
 * headless Chromium over an archive synced from fake-wandb (seeded, so the pictures are reproducible) plus the
 * test suite's spikes run (NaN, ±Infinity and one-step spikes among 5,000 steps).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium, type Page } from "playwright-core";
import { startFakeWandb } from "../fake-wandb/index.js";
import { openArchive } from "../src/archive/index.js";
import { startServer } from "../src/serve/server.js";
import { openSource } from "../src/serve/source.js";
import { writeExtraRuns } from "../src/serve/test-support.js";
import { runCli } from "../test/helpers.js";

const ROOT = resolve(import.meta.dirname, "..");
const out = (name: string) => join(ROOT, "docs/images", name);

const dir = await mkdtemp(join(tmpdir(), "drwandb-shots-"));
const profile = await mkdtemp(join(tmpdir(), "drwandb-shots-chromium-"));
const fake = await startFakeWandb({ profile: "edge", runs: 24, steps: 1500, metrics: 4, seed: 42 });
try {
  const r = await runCli(
    [
      "sync",
      `${fake.entity}/${fake.project}`,
      "--system-metrics",
      "--files",
      "--files-pattern",
      "%.log",
      "--no-export",
      "--output-dir",
      dir,
    ],
    { env: { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey } },
  );
  if (r.code !== 0) throw new Error(r.stderr);
  const archive = await openArchive({ outputDir: dir });
  await writeExtraRuns(archive, fake.entity, fake.project);
  const ids = (
    await archive.query(
      "SELECT run_id FROM runs WHERE run_id NOT LIKE 'x%' AND run_id <> 'spikes-run' ORDER BY created_at LIMIT 24",
    )
  ).rows.map((x) => String(x[0]));
  await archive.close();
  const srv = await startServer({ source: await openSource({ outputDir: dir }), outputDir: dir });
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    viewport: { width: 1280, height: 860 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const drawn = (page: Page, keys: string[]) =>
    page.waitForFunction(
      (ks) =>
        ks.every((k) => (window as unknown as { drwandb: { panels: Record<string, unknown> } }).drwandb.panels[k]),
      keys,
    );
  try {
    const page = await browser.newPage();
    const hash = (p: Record<string, string | string[]>) => {
      const q = new URLSearchParams({ e: fake.entity, p: fake.project });
      for (const [k, v] of Object.entries(p)) for (const x of [v].flat()) q.append(k, x);
      return `${srv.url}#runs?${q}`;
    };
    const generic = ids.slice(12, 18); // after the 12 edge scenarios: runs with varied configs
    await page.goto(
      hash({
        c: ['config:["lr"]', 'config:["optimizer"]', 'summary:["loss"]'],
        r: generic,
        k: ["loss", "acc"],
        s: "0.6",
      }),
    );
    await drawn(page, ["loss", "acc"]);
    await page.screenshot({ path: out("serve-runs-and-charts.png") });
    await page.goto(hash({ r: generic, k: ["loss", "acc"], g: 'config:["optimizer"]', s: "0.8" }));
    await drawn(page, ["loss", "acc"]);
    await page.locator("#charts-section").screenshot({ path: out("serve-grouped.png") });
    await page.goto(hash({ r: ["spikes-run"], k: ["spiky"] }));
    await drawn(page, ["spiky"]);
    await page.locator("#charts-section").screenshot({ path: out("serve-spikes.png") });
    await page.goto(`${srv.url}#run?${new URLSearchParams({ e: fake.entity, p: fake.project, run: ids[0]! })}`);
    await page.waitForSelector("#config-tree .leaf");
    await page.screenshot({ path: out("serve-run-page.png") });
    await page.close();
  } finally {
    await browser.close();
    await srv.close();
  }
} finally {
  await fake.close();
  await rm(dir, { recursive: true, force: true });
  await rm(profile, { recursive: true, force: true });
}
