/** The issue #6 targets and issue #13's (S2 against the SDK and per row, S3's wall time, S5), on a results file. */
import { TARGETS } from "./scenarios.js";
import type { Measurement, Results, ScenarioResult, TargetCheck } from "./types.js";

const OURS = ["ours-sync", "ours-download", "ours-sync-compat"] as const;

function fmtX(x: number): string {
  return x >= 100 ? `${x.toFixed(0)}x` : x >= 10 ? `${x.toFixed(1)}x` : `${x.toFixed(2)}x`;
}

/**
 * peer wall / ours wall. A peer stopped at its time limit gives a lower bound (its limit / ours), marked with ">=".
 */
export function speedup(ours: Measurement, peer: Measurement): { value: number; lowerBound: boolean } | null {
  if (ours.status !== "ok" || ours.wallS === null) return null;
  if (peer.status === "ok" && peer.wallS !== null) return { value: peer.wallS / ours.wallS, lowerBound: false };
  if (peer.status === "timeout") return { value: peer.timeoutS / ours.wallS, lowerBound: true };
  return null;
}

function speedupCheck(sc: ScenarioResult, ours: Measurement, peer: Measurement, min: number): TargetCheck {
  const name = `${ours.tool} >= ${min}x faster than ${peer.label}`;
  const s = speedup(ours, peer);
  if (!s) {
    return {
      scenario: sc.id,
      name,
      target: `>= ${min}x`,
      measured: ours.status !== "ok" ? `ours ${ours.status}` : `peer ${peer.status}`,
      met: null,
      note: ours.status !== "ok" ? ours.error : peer.error,
    };
  }
  const est =
    s.lowerBound && peer.extrapolatedWallS && ours.wallS
      ? ` (extrapolated: about ${fmtX(peer.extrapolatedWallS / ours.wallS)})`
      : "";
  const measured = `${s.lowerBound ? ">= " : ""}${fmtX(s.value)}${est}`;
  if (s.lowerBound && s.value < min) {
    return {
      scenario: sc.id,
      name,
      target: `>= ${min}x`,
      measured,
      met: null,
      note:
        `the peer was stopped at its ${peer.timeoutS} s limit, so only a lower bound is known` +
        (peer.extrapolatedWallS && ours.wallS
          ? `; extrapolated from its progress: about ${fmtX(peer.extrapolatedWallS / ours.wallS)}`
          : ""),
    };
  }
  return { scenario: sc.id, name, target: `>= ${min}x`, measured, met: s.value >= min };
}

function rssChecks(sc: ScenarioResult): TargetCheck[] {
  const out: TargetCheck[] = [];
  for (const m of sc.measurements) {
    if (!OURS.includes(m.tool as (typeof OURS)[number]) || m.peakRssMb === null) continue;
    if (m.role === "S2 sync") continue;
    out.push({
      scenario: sc.id,
      name: `${m.label}: peak RSS <= ${TARGETS.maxPeakRssMb} MB`,
      target: `<= ${TARGETS.maxPeakRssMb} MB`,
      measured: `${m.peakRssMb.toFixed(0)} MB${m.status === "ok" ? "" : ` (${m.status})`}`,
      met: m.status === "ok" ? m.peakRssMb <= TARGETS.maxPeakRssMb : null,
    });
  }
  return out;
}

function completeCheck(sc: ScenarioResult, m: Measurement): TargetCheck {
  const ok =
    m.status === "ok" &&
    (m.failedRuns ?? 0) === 0 &&
    (m.expectedRuns === null || m.runs === m.expectedRuns) &&
    (m.expectedRows === null || m.historyRows === m.expectedRows);
  return {
    scenario: sc.id,
    name: `${m.tool}: zero failed runs (every run and every history row)`,
    target: `exit 0, ${m.expectedRuns} runs, ${m.expectedRows} rows`,
    measured:
      m.status === "ok"
        ? `exit 0, ${m.runs ?? "?"} runs, ${m.historyRows ?? "?"} rows`
        : `${m.status}${m.error ? `: ${m.error}` : ""}`,
    met: ok,
  };
}

export function evaluateTargets(r: Results): TargetCheck[] {
  const out: TargetCheck[] = [];
  const s1 = r.scenarios.S1;
  if (s1) {
    const original = s1.measurements.find((m) => m.tool === "original");
    const listing = s1.measurements.find((m) => m.tool === "ours-download-nometa");
    if (listing?.status === "ok" && listing.wallS !== null && s1.bound) {
      const f = listing.wallS / (s1.bound.wallMs / 1000);
      out.push({
        scenario: "S1",
        name: `ours-download --no-metadata (the listing alone) within ${TARGETS.s1BoundFactor}x of serial cursor pagination`,
        target: `<= ${TARGETS.s1BoundFactor}x`,
        measured: `${fmtX(f)} (${listing.wallS.toFixed(2)} s vs ${(s1.bound.wallMs / 1000).toFixed(2)} s)`,
        met: f <= TARGETS.s1BoundFactor,
        note: "informational: without the per-run metadata files the original also reads",
      });
    }
    for (const id of OURS) {
      const ours = s1.measurements.find((m) => m.tool === id);
      if (!ours) continue;
      if (original) out.push(speedupCheck(s1, ours, original, TARGETS.s1SpeedupVsOriginal));
      if (s1.bound) {
        const name = `${id} within ${TARGETS.s1BoundFactor}x of serial cursor pagination`;
        if (ours.status !== "ok" || ours.wallS === null) {
          out.push({ scenario: "S1", name, target: `<= ${TARGETS.s1BoundFactor}x`, measured: ours.status, met: null });
        } else {
          const f = ours.wallS / (s1.bound.wallMs / 1000);
          out.push({
            scenario: "S1",
            name,
            target: `<= ${TARGETS.s1BoundFactor}x (${((s1.bound.wallMs / 1000) * TARGETS.s1BoundFactor).toFixed(2)} s)`,
            measured: `${fmtX(f)} (${ours.wallS.toFixed(2)} s vs ${(s1.bound.wallMs / 1000).toFixed(2)} s)`,
            met: f <= TARGETS.s1BoundFactor,
          });
        }
      }
    }
    out.push(...rssChecks(s1));
  }
  const s2 = r.scenarios.S2;
  if (s2) {
    const original = s2.measurements.find((m) => m.tool === "original");
    const sdk = s2.measurements.find((m) => m.tool === "sdk");
    for (const id of OURS) {
      const ours = s2.measurements.find((m) => m.tool === id);
      if (!ours) continue;
      if (original) out.push(speedupCheck(s2, ours, original, TARGETS.s2SpeedupVsOriginal));
      if (sdk) out.push(speedupCheck(s2, ours, sdk, TARGETS.s2SpeedupVsSdk));
      out.push(completeCheck(s2, ours));
      const name = `${id}: CPU per history row <= ${TARGETS.s2MaxCpuUsPerRow} us`;
      if (ours.status === "ok" && ours.cpuS && ours.historyRows) {
        const us = (ours.cpuS * 1e6) / ours.historyRows;
        out.push({
          scenario: "S2",
          name,
          target: `<= ${TARGETS.s2MaxCpuUsPerRow} us`,
          measured: `${us.toFixed(1)} us (${ours.cpuS.toFixed(1)} CPU s / ${ours.historyRows} rows)`,
          met: us <= TARGETS.s2MaxCpuUsPerRow,
        });
      } else {
        out.push({
          scenario: "S2",
          name,
          target: `<= ${TARGETS.s2MaxCpuUsPerRow} us`,
          measured: ours.status,
          met: null,
        });
      }
    }
    out.push(...rssChecks(s2));
  }
  const s3 = r.scenarios.S3;
  if (s3) {
    const inc = s3.measurements.find((m) => m.role === "incremental");
    const full = s3.measurements.find((m) => m.role === "full-baseline");
    const name = `second sync's requests <= ${TARGETS.s3MaxRequestFraction * 100}% of a full sync's`;
    if (inc?.status === "ok" && inc.requests && full?.status === "ok" && full.requests) {
      const f = inc.requests.total / full.requests.total;
      out.push({
        scenario: "S3",
        name,
        target: `<= ${TARGETS.s3MaxRequestFraction * 100}%`,
        measured: `${(f * 100).toFixed(2)}% (${inc.requests.total} / ${full.requests.total})`,
        met: f <= TARGETS.s3MaxRequestFraction,
      });
    } else {
      out.push({
        scenario: "S3",
        name,
        target: `<= ${TARGETS.s3MaxRequestFraction * 100}%`,
        measured: `incremental ${inc?.status ?? "not run"}, full ${full?.status ?? "not run"}`,
        met: null,
        note: inc?.error ?? full?.error,
      });
    }
    const wallName = `second sync's wall time <= ${TARGETS.s3MaxWallFraction * 100}% of a full sync's`;
    if (inc?.status === "ok" && inc.wallS && full?.status === "ok" && full.wallS) {
      const f = inc.wallS / full.wallS;
      out.push({
        scenario: "S3",
        name: wallName,
        target: `<= ${TARGETS.s3MaxWallFraction * 100}%`,
        measured: `${(f * 100).toFixed(1)}% (${inc.wallS.toFixed(1)} s / ${full.wallS.toFixed(1)} s)`,
        met: f <= TARGETS.s3MaxWallFraction,
      });
    }
    out.push(...rssChecks(s3));
  }
  const s4 = r.scenarios.S4;
  if (s4) {
    for (const id of OURS) {
      const ours = s4.measurements.find((m) => m.tool === id);
      if (!ours) continue;
      const lim = s4.settings.rateLimit;
      const name = `${id} >= ${TARGETS.s4MinRateFraction * 100}% of the allowed rate`;
      if (ours.status === "ok" && ours.rate) {
        const f = ours.rate.perSecondActive / lim;
        out.push({
          scenario: "S4",
          name,
          target: `>= ${(lim * TARGETS.s4MinRateFraction).toFixed(1)} req/s`,
          measured: `${ours.rate.perSecondActive.toFixed(2)} req/s while requesting (${(f * 100).toFixed(0)}%); ${ours.rate.perSecondWall.toFixed(2)} req/s over the whole wall time`,
          met: f >= TARGETS.s4MinRateFraction,
        });
      } else {
        out.push({
          scenario: "S4",
          name,
          target: `>= ${(lim * TARGETS.s4MinRateFraction).toFixed(1)} req/s`,
          measured: ours.status,
          met: null,
          note: ours.error,
        });
      }
      out.push(completeCheck(s4, ours));
      if (ours.status === "ok" && ours.requests && id !== "ours-sync-compat") {
        out.push({
          scenario: "S4",
          name: `${id}: zero 429 answers`,
          target: "0",
          measured: String(ours.requests.rateLimited),
          met: ours.requests.rateLimited === 0,
        });
      }
    }
    out.push(...rssChecks(s4));
  }
  const s5 = r.scenarios.S5;
  if (s5) {
    const original = s5.measurements.find((m) => m.tool === "original");
    const sdk = s5.measurements.find((m) => m.tool === "sdk");
    for (const id of OURS) {
      const ours = s5.measurements.find((m) => m.tool === id);
      if (!ours) continue;
      if (original) out.push(speedupCheck(s5, ours, original, TARGETS.s5SpeedupVsOriginal));
      // Shown against the SDK too, with S2's SDK target (the issue sets none of its own for S5).
      if (sdk) {
        const c = speedupCheck(s5, ours, sdk, TARGETS.s2SpeedupVsSdk);
        out.push({ ...c, note: [c.note, "S2's SDK target, for comparison"].filter(Boolean).join("; ") });
      }
      out.push(completeCheck(s5, ours));
    }
    out.push(...rssChecks(s5));
  }
  return out;
}
