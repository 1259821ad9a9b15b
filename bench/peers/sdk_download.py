"""Benchmark peer: the official `wandb` client doing what dr_wandb 0.1.2's `wandb-download` does, minus the pickle.

    python sdk_download.py ENTITY PROJECT [--runs-only] [--runs-per-page 500]

For the whole project: `api.runs(path, per_page=500)` (SDK defaults otherwise, as the original calls it), then for
each run, in order: config, summary, metadata (wandb-metadata.json: a files query plus a GET), system_metrics, and,
unless --runs-only, every row of `scan_history()` (SDK defaults: all keys, page_size 1000). Rows are counted, not
kept. A run whose reads raise is counted as failed and the script goes on.

Environment (set by bench/run.ts): WANDB_BASE_URL, WANDB_API_KEY, WANDB_ENTITY, WANDB_ERROR_REPORTING=false,
WANDB_SILENT=true, NO_PROXY, and fresh TMPDIR / WANDB_CACHE_DIR / WANDB_CONFIG_DIR / WANDB_DIR.

Progress goes to stderr as `progress <runs done> <total> <rows>` lines (the harness reads the last one when it has
to stop the script at its time limit); the final summary is one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("entity")
    p.add_argument("project")
    p.add_argument("--runs-only", action="store_true")
    p.add_argument("--runs-per-page", type=int, default=500)
    a = p.parse_args()

    t0 = time.monotonic()
    import wandb  # noqa: PLC0415 (import time is part of the measured run, as for the original tool)

    api = wandb.Api()
    runs = list(api.runs(f"{a.entity}/{a.project}", per_page=a.runs_per_page))
    total = len(runs)
    print(f"progress 0 {total} 0", file=sys.stderr, flush=True)
    t_list = time.monotonic() - t0

    rows = 0
    failed: list[dict[str, str]] = []
    for i, run in enumerate(runs, start=1):
        try:
            _ = dict(run.config)
            _ = dict(run.summary._json_dict) if run.summary is not None else {}
            _ = run.metadata or {}
            _ = run.system_metrics or {}
            if not a.runs_only:
                for _row in run.scan_history():
                    rows += 1
        except Exception as e:  # noqa: BLE001 (a failed run is counted and reported, not fatal)
            failed.append({"run": run.id, "error": f"{type(e).__name__}: {e}"[:300]})
        print(f"progress {i} {total} {rows}", file=sys.stderr, flush=True)

    print(
        json.dumps(
            {
                "tool": "sdk",
                "wandb": wandb.__version__,
                "python": sys.version.split()[0],
                "runs": total,
                "runsOk": total - len(failed),
                "failedRuns": len(failed),
                "failures": failed[:20],
                "historyRows": rows,
                "listSeconds": round(t_list, 3),
                "seconds": round(time.monotonic() - t0, 3),
            }
        ),
        flush=True,
    )
    return 0 if not failed else 3


if __name__ == "__main__":
    sys.exit(main())
