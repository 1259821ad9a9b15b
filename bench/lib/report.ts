/** Renders docs/benchmarks.md from a results file (plus the hand-written bench/analysis.md, when present). */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BOUND_PAGE_SIZE } from "./bound.js";
import { LATENCY_MS, LATENCY_PER_KB_MS, makePlan, SCENARIO_IDS, SEED, TARGETS } from "./scenarios.js";
import { speedup } from "./targets.js";
import type { Measurement, Results, ScenarioResult } from "./types.js";

function mb(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

function secs(s: number): string {
  return s >= 600 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(s < 10 ? 2 : 1)} s`;
}

function int(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function wall(m: Measurement): string {
  if (m.status === "unavailable") return "n/a";
  if (m.status === "timeout") return `> ${secs(m.timeoutS)}`;
  if (m.wallS === null) return "?";
  return m.status === "ok" ? secs(m.wallS) : `${secs(m.wallS)} (${m.status})`;
}

function oursRef(sc: ScenarioResult): Measurement | undefined {
  return sc.measurements.find((m) => m.tool === "ours-sync" && m.role !== "full-baseline" && m.role !== "S2 sync");
}

function ratioCells(ref: Measurement | undefined, m: Measurement): [string, string] {
  if (!ref || ref === m) return ["", ""];
  const s = speedup(ref, m);
  if (!s) return ["", ""];
  const oursOver = 1 / s.value;
  return [
    `${s.lowerBound ? "< " : ""}${oursOver.toFixed(oursOver < 0.01 ? 4 : 3)}`,
    `${s.lowerBound ? ">= " : ""}${s.value >= 10 ? s.value.toFixed(1) : s.value.toFixed(2)}x`,
  ];
}

function table(sc: ScenarioResult): string {
  const ref = oursRef(sc);
  const head =
    "| Tool | Status | Wall | Requests (API + storage) | GraphQL | 429s | Bytes | Peak RSS | CPU | Load | History rows | Rows/s | ours-sync ÷ tool | Speed-up of ours-sync |\n" +
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  const rows: string[] = [];
  if (sc.bound) {
    const b = sc.bound;
    rows.push(
      `| bound: serial cursor pagination (bare client, ${b.pageSize}/page) | ok | ${secs(b.wallMs / 1000)} | ${b.requests ? int(b.requests.total) : b.pages} | ${b.requests ? int(b.requests.graphql) : b.pages} | 0 | ${b.requests ? mb(b.requests.bytesOut) : "?"} | (in harness) | | | – | – | | |`,
    );
  }
  for (const m of sc.measurements) {
    const r = m.requests;
    const [over, up] = ratioCells(ref, m);
    const rowsCell =
      m.historyRows === null
        ? "?"
        : `${m.rowsEstimated ? "≈ " : ""}${int(m.historyRows)}${m.status === "timeout" && m.progress ? ` (${m.progress.done}/${m.progress.total} runs)` : ""}`;
    rows.push(
      `| ${m.label}${m.role && m.role !== "incremental" ? ` [${m.role}]` : ""} | ${m.status} | ${wall(m)} | ${r ? `${int(r.total)} (${int(r.apiHost)} + ${int(r.storage)})` : "–"} | ${r ? int(r.graphql) : "–"} | ${r ? int(r.rateLimited) : "–"} | ${r ? mb(r.bytesOut) : "–"} | ${m.peakRssMb === null ? "–" : `${m.peakRssMb.toFixed(0)} MB`} | ${m.cpuS == null ? "–" : secs(m.cpuS)} | ${m.meanLoad == null ? "–" : m.meanLoad.toFixed(1)} | ${rowsCell} | ${m.rowsPerS === null ? "–" : int(m.rowsPerS)} | ${over} | ${up} |`,
    );
  }
  return head + rows.join("\n");
}

function settingsLine(sc: ScenarioResult): string {
  const s = sc.settings;
  const parts = [
    `${int(sc.truth.runs)} runs (${sc.truth.running} running)`,
    `${int(s.steps)} steps x ${s.metrics} metrics per run`,
    `${int(sc.truth.historyRows)} history rows in all`,
    `parquet exports ${s.parquetExports ? "on" : "off"}`,
    s.rateLimit > 0 ? `rate limit ${s.rateLimit} req/s on the API host` : "no rate limit",
  ];
  return parts.join("; ");
}

function opsLine(m: Measurement): string {
  if (!m.requests) return "";
  const ops = Object.entries(m.requests.byOperation)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([k, v]) => `${k || "(anonymous)"} ${v}`)
    .join(", ");
  const extra: string[] = [];
  if (m.requests.parquet) extra.push(`parquet GETs ${m.requests.parquet}`);
  if (m.requests.files) extra.push(`/files GETs ${m.requests.files}`);
  return `${ops}${extra.length ? `; ${extra.join(", ")}` : ""}`;
}

function scenarioSection(sc: ScenarioResult): string {
  const out: string[] = [];
  out.push(`### ${sc.id}: ${sc.title}\n`);
  out.push(`Settings: ${settingsLine(sc)}. Measured ${sc.ranAt.slice(0, 16).replace("T", " ")} UTC.`);
  if (sc.mutations) {
    const m = sc.mutations;
    out.push(
      `Mutations before the second sync: ${m.appendSteps} steps appended to ${m.appended.length} running runs, ` +
        `${m.finished.length} of them finished, ${m.addRuns} runs added.`,
    );
  }
  if (sc.warmupS !== undefined) {
    out.push(`The fake wrote its parquet exports before any tool was timed (${secs(sc.warmupS)}; see Method).`);
  }
  out.push("");
  out.push(table(sc));
  out.push("");
  const notes: string[] = [];
  for (const m of sc.measurements) {
    const ops = opsLine(m);
    if (ops) notes.push(`- ${m.label}${m.role ? ` [${m.role}]` : ""}: requests by operation: ${ops}.`);
    if (m.rate) {
      notes.push(
        `  Rate: ${int(m.rate.acceptedApiRequests)} accepted API requests; ${m.rate.perSecondActive.toFixed(2)} req/s from the first to the last request (${secs(m.rate.activeWindowS)}), ${m.rate.perSecondWall.toFixed(2)} req/s over the whole run.`,
      );
    }
    if (m.status !== "ok" && m.status !== "unavailable" && m.error)
      notes.push(`  Error: \`${m.error.replace(/`/g, "'")}\``);
    if (m.status === "timeout") {
      notes.push(
        `  Stopped at its ${secs(m.timeoutS)} limit${m.progress ? ` after ${m.progress.done} of ${m.progress.total} runs` : ""}; the speed-up shown is a lower bound.` +
          (m.extrapolatedWallS
            ? ` Extrapolated linearly from its progress, the whole run would take about ${secs(m.extrapolatedWallS)}.`
            : ""),
      );
    }
    if (m.detail?.why) notes.push(`  Stand-in because: ${String(m.detail.why)}`);
  }
  const src = (ours: boolean) => [
    ...new Set(
      sc.measurements.filter((m) => m.tool.startsWith("ours") === ours && m.source).map((m) => m.source as string),
    ),
  ];
  const oursSrc = src(true);
  const peerSrc = src(false);
  if (oursSrc.length || peerSrc.length) {
    notes.push(
      `- Built from (our commands and the fake): ${oursSrc.length ? `our rows ${oursSrc.join("; ")}` : ""}${oursSrc.length && peerSrc.length ? "; " : ""}${peerSrc.length ? `the peers' rows ran against the fake of ${peerSrc.join("; ")}` : ""}.`,
    );
  }
  if (notes.length) out.push(notes.join("\n"), "");
  return out.join("\n");
}

function peerLimits(r: Results): string {
  const set = new Set<number>();
  for (const sc of Object.values(r.scenarios)) {
    for (const m of sc?.measurements ?? []) if (m.tool === "sdk" || m.tool === "original") set.add(m.timeoutS);
  }
  return set.size ? [...set].map((t) => secs(t)).join(", ") : secs(r.peerTimeoutS);
}

export function renderMarkdown(r: Results, root: string): string {
  const full = makePlan(false);
  const quick = makePlan(true);
  const analysisPath = join(root, "bench/analysis.md");
  const analysis = existsSync(analysisPath) ? readFileSync(analysisPath, "utf8").trim() : "";
  const met = r.targets.filter((t) => t.met === true).length;
  const notMet = r.targets.filter((t) => t.met === false).length;
  const unknown = r.targets.filter((t) => t.met === null).length;
  const lines: string[] = [];
  lines.push("# Benchmarks (issue #6)");
  lines.push("");
  lines.push(
    `Generated on ${r.generatedAt.slice(0, 10)} (${r.mode} mode) from the measurements of ${(r.commands ?? [r.command]).map((c) => `\`${c}\``).join(", ")} (results merge by scenario and tool; each scenario shows when it was measured). ` +
      `This file is written by \`bench/run.ts\` from \`bench/results/${r.mode === "quick" ? "quick" : "latest"}.json\`; the Analysis section comes from ` +
      "`bench/analysis.md`.",
  );
  lines.push("");
  lines.push(`Targets: ${met} met, ${notMet} not met, ${unknown} not evaluable (see [Targets](#targets)).`);
  lines.push("");
  lines.push("## How to run");
  lines.push("");
  lines.push("```sh");
  lines.push(
    "bash bench/peers/setup.sh          # once: builds the peers' venvs from PyPI (pinned); the bench itself installs nothing",
  );
  lines.push("npm run bench                      # full set, about an hour with the peers' time limits");
  lines.push(
    "npm run bench -- --quick           # scaled-down smoke run, under 2 minutes (writes bench/results/quick.json)",
  );
  lines.push(
    "npm run bench -- --scenario S1,S5 --tools ours,sdk   # a selection; results merge into latest.json by scenario",
  );
  lines.push("npm run bench -- --peer-timeout 10 # minutes per peer and scenario (default 15; quick 10 s)");
  lines.push("npm run bench -- --report-only     # re-render this file from bench/results/latest.json");
  lines.push("```");
  lines.push("");
  lines.push("## Method");
  lines.push("");
  lines.push(
    [
      `- **Server.** \`fake-wandb\` (this repo) in its own process (its bin, built like our commands), on 127.0.0.1, seed ${SEED} for every scenario. Every API and storage response waits ${LATENCY_MS} ms plus ${LATENCY_PER_KB_MS} ms per KB of body (about 20 MB/s on top of the fixed cost); latency is per request, so concurrent requests overlap. S4 adds the fake's fixed-window limit on the API host (GraphQL and /files): beyond N requests in a one-second window it answers 429 with Retry-After and RateLimit-* headers. The harness sends nothing beyond loopback (every URL is checked) and every loop and child process is bounded in count and time.`,
      "- **One server per scenario.** All tools of a scenario run against the same fake process, one after another; its counters are reset before each tool (and the rate-limit window restarted). Tools only read, so each sees the same project. The fake writes a run's parquet export lazily, on the first `parquetHistory` request, with its own DuckDB; so that this server-side work is billed to no tool, the harness asks for every run's export once before the first tool is timed (and again after the S3 mutations). The fake keeps those files in `.tmp/bench-fake-cache/` (gitignored, about 0.9 GB for S2; safe to delete, it only makes the next warm-up fast).",
      "- **Tools**, each a child process in its own process group, with a clean environment (`WANDB_BASE_URL`, `WANDB_API_KEY`, `WANDB_ENTITY`, `WANDB_ERROR_REPORTING=false`, `WANDB_SILENT=true`, `NO_PROXY`, fresh `HOME`, `TMPDIR`, `WANDB_CACHE_DIR`, `WANDB_CONFIG_DIR`, `WANDB_DIR`):",
      `  - **ours-sync**: \`dr-wandb sync ENTITY/PROJECT --output-dir DIR --json\` into a fresh DuckDB archive plus its Parquet export (\`--runs-only\` in S1; S3 is a second sync of the S2 archive). Default concurrency. Our commands run as shipped: ${r.runtime}.`,
      "  - **ours-download**: `wandb-download ENTITY PROJECT DIR --format parquet --json` (`--runs-only` in S1); it fetches `wandb-metadata.json` per run, as the original does. In S1 also with `--no-metadata` (the listing alone), to separate the listing from the per-run metadata files.",
      "  - **ours-sync-compat** (S4 only): the same sync with `--compat`: only the official client's request shapes (1,000-step history windows, one run per request), so hundreds of requests under the rate limit show the pacing; our default shapes need so few requests in S4 that the rate is no longer what bounds the time.",
      "  - **sdk**: `bench/peers/sdk_download.py` with the official client: `api.runs(path, per_page=500)`, then per run `config`, `summary`, `metadata`, `system_metrics` and every row of `scan_history()` (rows counted, not kept).",
      "  - **original**: dr-wandb 0.1.2 from PyPI, its own `wandb-download ENTITY PROJECT DIR` (plus `--log-every 1`, which only changes logging, so that its progress is known if it is stopped), in `.bench-venv/original`.",
      `- **Limits.** Each peer run is stopped at a time limit (in these results: ${peerLimits(r)}; full-mode default ${secs(full.peerTimeoutMs / 1000)}, quick ${secs(quick.peerTimeoutMs / 1000)}); a stopped peer is reported as "> limit" and its speed-up as a lower bound, not as a failure. Our commands get ${secs(r.oursTimeoutS)} (none came near it). Any tool whose process tree passes 12 GB is stopped (status memory-cap) to protect the shared machine.`,
      "- **Measured**: wall time of the child process (start to exit, so interpreter start-up and writing the output count); requests, GraphQL requests, 429 answers and response bytes from the fake's `/_fake/stats`; peak RSS of the tool's whole process tree (every 200 ms the sum of VmRSS over the child and its descendants, e.g. the official client's `wandb-core`; also each process's VmHWM; the larger is reported); history rows and rows per second (rows the tool reports, or for the original the rows in its pickle; for a stopped peer the rows it had read, marked ≈).",
      `- **S1 bound**: a bare client in the harness pages through every run serially with the official client's \`Runs\` query and full RunFragment (config, summaryMetrics, systemMetrics, historyKeys, ...), ${BOUND_PAGE_SIZE} runs per page, order +created_at, parsing each page for its cursor and doing nothing else. It runs inside the harness process, so it pays no process start-up.`,
      "- **S3**: after S2, the harness mutates the fake (steps appended to running runs, some finished, runs added), then runs our sync again on the S2 archive, and, as the denominator, a full sync of the mutated project into a fresh archive. The peers have no incremental mode: running them again is a full download (their S2 cost).",
      "- **S5** (issue #13): S2's shape (exports on, 10% of runs running) at a size the original tool finishes on this machine (in S2 it passes the 12 GB memory cap), so that the ratio against it is measured, not bounded by its time limit: our sync and download, then both peers, against one fake.",
      "- **S4 rate**: accepted API-host requests (not 429) divided by the time from the fake's first to its last counted request (sampled every 250 ms), and also divided by the whole wall time.",
    ].join("\n"),
  );
  lines.push("");
  lines.push("Scenario sizes (full / quick):");
  lines.push("");
  lines.push("| Scenario | Full | Quick |");
  lines.push("|---|---|---|");
  const sz = (s: typeof full.s1) =>
    `${int(s.runs)} runs x ${int(s.steps)} steps x ${s.metrics} metrics, ${s.runningFraction * 100}% running, exports ${s.parquetExports ? "on" : "off"}${s.rateLimit ? `, ${s.rateLimit} req/s` : ""}`;
  lines.push(`| S1 (runs only) | ${sz(full.s1)} | ${sz(quick.s1)} |`);
  lines.push(`| S2 | ${sz(full.s2)} | ${sz(quick.s2)} |`);
  const mu = (m: typeof full.s3) =>
    `${m.appendSteps} steps appended to ${m.appendRuns} running runs, ${m.finishRuns} finished, ${m.addRuns} added`;
  lines.push(`| S3 (after S2) | ${mu(full.s3)} | ${mu(quick.s3)} |`);
  lines.push(`| S4 | ${sz(full.s4)} | ${sz(quick.s4)} |`);
  lines.push(`| S5 (issue #13) | ${sz(full.s5)} | ${sz(quick.s5)} |`);
  lines.push("");
  lines.push("## Machine");
  lines.push("");
  const mach = r.machine;
  lines.push(
    `${mach.nproc} cores (${mach.cpu}), ${mach.memoryGB} GB memory, ${mach.platform}; Node ${mach.node}. ` +
      `Peers: sdk = ${r.peers.sdk}; original = ${r.peers.original}.`,
  );
  lines.push("");
  lines.push("## Results");
  lines.push("");
  lines.push(
    'Ratios are against `ours-sync` of the same scenario: "ours-sync ÷ tool" is our wall time divided by the tool\'s; the speed-up is its inverse. A "<"/">=" marks a bound from a peer stopped at its time limit. Requests are API host + storage host (signed file and parquet URLs).',
  );
  lines.push("");
  for (const id of SCENARIO_IDS) {
    const sc = r.scenarios[id];
    if (sc) lines.push(scenarioSection(sc));
  }
  lines.push("## Targets");
  lines.push("");
  lines.push("| Scenario | Target | Wanted | Measured | Met |");
  lines.push("|---|---|---|---|---|");
  for (const t of r.targets) {
    lines.push(
      `| ${t.scenario} | ${t.name} | ${t.target} | ${t.measured.replace(/\|/g, "/")} | ${t.met === null ? `n/a${t.note ? ` (${t.note.replace(/\|/g, "/").slice(0, 200)})` : ""}` : t.met ? `yes${t.note ? ` (${t.note})` : ""}` : "**no**"} |`,
    );
  }
  lines.push("");
  lines.push(
    `Targets from the issues (#6, raised by #13): S1 >= ${TARGETS.s1SpeedupVsOriginal}x faster than the original and within ${TARGETS.s1BoundFactor}x of serial cursor pagination; S2 >= ${TARGETS.s2SpeedupVsOriginal}x the original and >= ${TARGETS.s2SpeedupVsSdk}x the SDK scan (#6: 3x), at most ${TARGETS.s2MaxCpuUsPerRow} us of CPU per row (#13); S3 <= ${TARGETS.s3MaxRequestFraction * 100}% of a full sync's requests and <= ${TARGETS.s3MaxWallFraction * 100}% of its wall time (#13); S4 >= ${TARGETS.s4MinRateFraction * 100}% of the allowed rate with zero failed runs and zero 429s; S5 (issue #13) >= ${TARGETS.s5SpeedupVsOriginal}x faster than the original, measured (shown against the SDK with S2's SDK target); peak RSS <= ${TARGETS.maxPeakRssMb} MB in every scenario. The 10M-row soak's 400 MB is checked by \`npm run soak\` (docs/reliability.md).`,
  );
  lines.push("");
  if (analysis) {
    lines.push("## Analysis");
    lines.push("");
    lines.push(analysis);
    lines.push("");
  }
  return `${lines.join("\n")}\n`;
}
