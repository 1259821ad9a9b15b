/// <reference lib="dom" />
/**
 * The viewer as a person uses it, in Debian's headless Chromium (playwright-core, no downloaded browser), over an
 * archive synced from fake-wandb's edge profile plus a hostile run and a 5,000-step spikes run. Every expected
 * value is computed here from the fake's truth or the archive's own rows, not from the viewer's code.
 * Waits are for selectors, page state and network responses only.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import { runCli, tempDir, truthRuns } from "../../test/helpers.js";
import { openArchive } from "../archive/index.js";
import { parseStrictJson } from "../model/json.js";
import { type RunningServer, startServer } from "./server.js";
import { openSource } from "./source.js";
import { HOSTILE_ID, HOSTILE_KEY, HOSTILE_NAME, SPIKE_STEPS, writeExtraRuns } from "./test-support.js";

let fake: FakeWandb;
let dir: Awaited<ReturnType<typeof tempDir>>;
let srv: RunningServer;
let browser: BrowserContext;
let profile: string;
let truth: Awaited<ReturnType<typeof truthRuns>>;
const pageErrors: string[] = [];

interface Line {
  label: string;
  runIds: string[];
  x: number[];
  y: number[];
  min?: number[];
  max?: number[];
}
interface PanelState {
  lines: Line[];
  sampled: boolean;
  range: [number, number] | null;
  log: boolean;
  /** uPlot's y-scale distribution (3: logarithmic). */
  yDistr: number;
  rev: number;
}

/** Every (step, value) of `key` for a run, read from the archive's history rows (numbers only, NaN/±Inf kept). */
async function archivePoints(runId: string, key: string): Promise<{ x: number[]; y: number[] }> {
  const archive = await openArchive({ outputDir: dir.path, readOnly: true });
  try {
    const q = (s: string) => `'${s.replaceAll("'", "''")}'`;
    const r = await archive.query(`SELECT step, metrics FROM history WHERE run_id = ${q(runId)} ORDER BY step`);
    const x: number[] = [];
    const y: number[] = [];
    for (const [step, metrics] of r.rows) {
      const v = (parseStrictJson(String(metrics)) as Record<string, unknown>)[key];
      if (typeof v === "number" || typeof v === "bigint") {
        x.push(Number(step));
        y.push(Number(v));
      }
    }
    return { x, y };
  } finally {
    await archive.close();
  }
}

function runIdOf(scenario: string): string {
  const r = truth.find((t) => (t.config as Record<string, unknown>).scenario === scenario);
  assert.ok(r, `no ${scenario} run`);
  return String(r.name);
}

function hashUrl(params: Record<string, string | string[]>): string {
  const q = new URLSearchParams({ e: fake.entity, p: fake.project });
  for (const [k, v] of Object.entries(params)) for (const x of [v].flat()) q.append(k, x);
  return `${srv.url}#runs?${q}`;
}

async function newPage(): Promise<Page> {
  const page = await browser.newPage();
  page.on("pageerror", (e) => pageErrors.push(e.message));
  return page;
}

interface Want {
  lines?: number;
  zoomed?: boolean;
  banded?: boolean;
  log?: boolean;
  /** The smoothing parameter in the URL. */
  smoothing?: string;
}

/** Waits until panel `key` is drawn as `want` says (the page's own record of what it drew) and returns it. */
async function panel(page: Page, key: string, want: Want): Promise<PanelState> {
  const handle = await page.waitForFunction(
    ([k, w]) => {
      const s = (window as unknown as { drwandb: { panels: Record<string, PanelState> } }).drwandb.panels[k];
      if (!s) return null;
      if (w.lines !== undefined && s.lines.length !== w.lines) return null;
      if (w.zoomed !== undefined && (s.range !== null) !== w.zoomed) return null;
      if (w.banded !== undefined && s.lines.some((l) => l.min) !== w.banded) return null;
      if (w.log !== undefined && s.log !== w.log) return null;
      if (w.smoothing !== undefined && new URLSearchParams(location.hash.split("?")[1]).get("s") !== w.smoothing) {
        return null;
      }
      return s;
    },
    [key, want] as const,
  );
  return (await handle.jsonValue()) as PanelState;
}

function ema(ys: number[], w: number): number[] {
  let acc = 0;
  let n = 0;
  return ys.map((v) => {
    acc = w * acc + (1 - w) * v;
    n++;
    return acc / (1 - w ** n);
  });
}

before(async () => {
  fake = await startFakeWandb({ profile: "edge", runs: 10, steps: 300, metrics: 3, seed: 7 });
  truth = await truthRuns(fake.url);
  dir = await tempDir("drwandb-serve-browser-");
  const r = await runCli(
    [
      "sync",
      `${fake.entity}/${fake.project}`,
      "--system-metrics",
      "--files",
      "--files-pattern",
      "output.log",
      "--no-export",
      "--output-dir",
      dir.path,
    ],
    { env: { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey } },
  );
  assert.equal(r.code, 0, r.stderr);
  const archive = await openArchive({ outputDir: dir.path });
  await writeExtraRuns(archive, fake.entity, fake.project);
  await archive.markDeleted(fake.entity, fake.project, [runIdOf("killed")]);
  await archive.close();
  srv = await startServer({ source: await openSource({ outputDir: dir.path }), outputDir: dir.path });
  profile = await mkdtemp(join(tmpdir(), "drwandb-chromium-"));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    viewport: { width: 1400, height: 1000 },
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
});

after(async () => {
  await browser?.close();
  await srv?.close();
  await fake?.close();
  await dir?.[Symbol.asyncDispose]();
  if (profile) await rm(profile, { recursive: true, force: true });
});

describe("dr-wandb serve in Chromium", () => {
  it("the runs table shows every run with its name, state and config value", async () => {
    const page = await newPage();
    await page.goto(hashUrl({ c: 'config:["lr"]' }));
    const total = truth.length + 2;
    await page.waitForFunction((n) => document.querySelectorAll("table.runs tbody tr").length === n, total);
    assert.match((await page.textContent("#run-count")) ?? "", new RegExp(`^${total} runs`));
    for (const t of truth) {
      const row = page.locator(`tr[data-run=${JSON.stringify(t.name)}]`);
      const cells = await row.locator("td").allTextContents();
      assert.equal(cells[1], t.name === runIdOf("killed") ? `${t.displayName} (deleted)` : t.displayName);
      assert.equal(cells[2], t.state);
      const lr = Number((t.config as Record<string, number>).lr);
      const shown = await row.locator(`td[data-col='config:["lr"]']`).textContent();
      assert.ok(Math.abs(Number(shown) - lr) <= Math.abs(lr) * 1e-5, `${t.name}: ${shown} vs ${lr}`);
      const deleted = t.name === runIdOf("killed");
      assert.equal(await row.evaluate((e) => e.classList.contains("deleted")), deleted, `${t.name} deleted`);
    }
    await page.close();
  });

  it("two selected runs and a key draw exactly the archive's points of each", async () => {
    const page = await newPage();
    const a = runIdOf("crashed");
    const b = runIdOf("kitchen-sink");
    await page.goto(hashUrl({}));
    await page.locator(`tr[data-run=${JSON.stringify(a)}] input[type=checkbox]`).click();
    await page.waitForSelector(`tr.selected[data-run=${JSON.stringify(a)}]`);
    await page.locator(`tr[data-run=${JSON.stringify(b)}] input[type=checkbox]`).click();
    await page.waitForSelector(`tr.selected[data-run=${JSON.stringify(b)}]`);
    await page.selectOption("#add-panel", "loss");
    const drawn = await panel(page, "loss", { lines: 2 });
    assert.equal(drawn.sampled, false);
    for (const id of [a, b]) {
      const line = drawn.lines.find((l) => l.runIds[0] === id);
      assert.ok(line, `a line for ${id}`);
      const want = await archivePoints(id, "loss");
      assert.ok(want.x.length > 100);
      assert.deepEqual(line.x, want.x);
      assert.deepEqual(line.y, want.y);
    }
    assert.ok(page.url().includes("k=loss"), "the panel is in the URL");
    await page.locator("#log-y").check();
    const log = await panel(page, "loss", { lines: 2, log: true });
    assert.deepEqual(
      log.lines.map((l) => l.y),
      drawn.lines.map((l) => l.y),
      "log scale keeps the values",
    );
    assert.equal(log.yDistr, 3, "uPlot draws the y axis logarithmic");
    await page.getByRole("button", { name: "config diff" }).click();
    await page.waitForSelector("#config-diff");
    // The edge configs differ only at top-level keys (their nested parts are the same): compare those.
    const cfg = (id: string) => truth.find((t) => t.name === id)!.config as Record<string, unknown>;
    const text = (v: unknown) =>
      JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? String(x) : Number.isNaN(x) ? "NaN" : x));
    const differing = Object.keys({ ...cfg(a), ...cfg(b) })
      .filter((k) => text(cfg(a)[k]) !== text(cfg(b)[k]))
      .sort();
    assert.ok(differing.length > 0);
    const shownKeys = await page.locator("#config-diff tbody th").allTextContents();
    assert.deepEqual([...shownKeys].sort(), differing);
    await page.close();
  });

  it("dragging across a down-sampled panel fetches the range at full resolution", async () => {
    const page = await newPage();
    await page.goto(hashUrl({ r: "spikes-run", k: "spiky" }));
    const first = await panel(page, "spiky", { lines: 1, zoomed: false });
    assert.equal(first.sampled, true);
    assert.ok(first.lines[0]!.x.length < SPIKE_STEPS / 2);
    const over = page.locator('.panel[data-key="spiky"] .u-over');
    const box = (await over.boundingBox())!;
    const zoomed = page.waitForResponse((r) => r.url().includes("/api/series") && r.url().includes("x0="));
    await page.mouse.move(box.x + box.width * 0.4, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.45, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await zoomed;
    const z = await panel(page, "spiky", { zoomed: true });
    assert.equal(z.sampled, false);
    const [x0, x1] = z.range!;
    const all = await archivePoints("spikes-run", "spiky");
    const inRange = all.x.map((x, i) => [x, all.y[i]!] as const).filter(([x]) => x >= x0 && x <= x1);
    assert.ok(inRange.length > 50, `${inRange.length} points in [${x0}, ${x1}]`);
    assert.deepEqual(
      z.lines[0]!.x,
      inRange.map(([x]) => x),
    );
    assert.deepEqual(
      z.lines[0]!.y,
      inRange.map(([, y]) => y),
    );
    await page.close();
  });

  it("grouping by a config key draws the group mean with a min-max band; smoothing draws the debiased EMA", async () => {
    const page = await newPage();
    const a = runIdOf("crashed");
    const b = runIdOf("failed");
    await page.goto(hashUrl({ r: [a, b, HOSTILE_ID], k: "loss" }));
    const plain = await panel(page, "loss", { lines: 3, banded: false });
    const pa = await archivePoints(a, "loss");
    const pb = await archivePoints(b, "loss");
    assert.deepEqual(pa.x, pb.x, "the two runs log the same steps");

    await page.selectOption("#group-by", 'config:["optimizer"]');
    const grouped = await panel(page, "loss", { lines: 2, banded: true });
    const adamw = grouped.lines.find((l) => l.runIds.length === 2)!;
    assert.deepEqual([...adamw.runIds].sort(), [a, b].sort());
    assert.deepEqual(adamw.x, pa.x);
    pa.y.forEach((v, i) => {
      assert.ok(Math.abs(adamw.y[i]! - (v + pb.y[i]!) / 2) < 1e-12);
      assert.equal(adamw.min![i], Math.min(v, pb.y[i]!));
      assert.equal(adamw.max![i], Math.max(v, pb.y[i]!));
    });
    const none = grouped.lines.find((l) => l.runIds[0] === HOSTILE_ID)!;
    assert.deepEqual(none.y, (await archivePoints(HOSTILE_ID, "loss")).y);
    assert.notDeepEqual(
      grouped.lines.map((l) => l.y),
      plain.lines.map((l) => l.y),
    );

    await page.selectOption("#group-by", "");
    await panel(page, "loss", { lines: 3, banded: false });
    await page.locator("#smoothing").fill("0.9");
    const smooth = await panel(page, "loss", { lines: 3, smoothing: "0.9" });
    const line = smooth.lines.find((l) => l.runIds[0] === a)!;
    const want = ema(pa.y, 0.9);
    assert.equal(line.y.length, want.length);
    for (const [i, v] of want.entries()) {
      assert.ok(Math.abs(line.y[i]! - v) < 1e-9, `step ${pa.x[i]}: ${line.y[i]} vs ${v}`);
    }
    assert.ok(Math.abs(line.y[5]! - pa.y[5]!) > 1e-6, "smoothing changed the line");
    await page.close();
  });

  it("the run page shows config big integers exactly (2^53+1 and 2^64+7)", async () => {
    const page = await newPage();
    const kitchen = runIdOf("kitchen-sink");
    await page.goto(`${srv.url}#run?${new URLSearchParams({ e: fake.entity, p: fake.project, run: kitchen })}`);
    const leaf = page.locator(`#config-tree .leaf[data-path='["big_param"]'] span:last-child`);
    assert.equal(await leaf.textContent(), "9007199254740993");
    const logText = await readFile(join(dir.path, "files", fake.entity, fake.project, kitchen, "output.log"), "utf8");
    assert.equal(await page.locator("#output-log pre").textContent(), logText);
    assert.ok((await page.locator("#system-charts .panel canvas").count()) > 0, "system-metrics charts drawn");
    await page.goto(`${srv.url}#run?${new URLSearchParams({ e: fake.entity, p: fake.project, run: HOSTILE_ID })}`);
    const big = page.locator(`#config-tree .leaf[data-path='["big"]'] span:last-child`);
    assert.equal(await big.textContent(), "18446744073709551623");
    await page.close();
  });

  it("a hostile run name, tag and key are shown as text and charted; the page keeps working", async () => {
    const page = await newPage();
    await page.goto(hashUrl({ q: "DROP TABLE", r: HOSTILE_ID, k: HOSTILE_KEY }));
    await page.waitForFunction(() => document.querySelectorAll("table.runs tbody tr").length === 1);
    const row = page.locator(`tr[data-run=${JSON.stringify(HOSTILE_ID)}]`);
    assert.equal(await row.locator("td").nth(1).textContent(), HOSTILE_NAME);
    const drawn = await panel(page, HOSTILE_KEY, { lines: 1 });
    assert.deepEqual(
      drawn.lines[0]!.y,
      Array.from({ length: 50 }, (_, i) => i * 2),
    );
    await row.locator("a").click();
    await page.waitForSelector("#run-title");
    assert.equal(await page.textContent("#run-title"), HOSTILE_NAME);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    assert.equal(await page.locator("script:not([src])").count(), 0, "no script element from data");
    await page.goBack();
    await page.waitForFunction(() => document.querySelectorAll("table.runs tbody tr").length === 1);
    assert.deepEqual(pageErrors, []);
    await page.close();
  });
});
