"""Writes W&B runs in offline mode with the official `wandb` client, and the expected archive content beside them.

    python write_offline_runs.py OUT_DIR

Run it with the conformance virtualenv's Python (`bash conformance/setup.sh new`, wandb 0.31.0). It sets
WANDB_MODE=offline and WANDB_DIR=OUT_DIR itself, so nothing leaves the machine. It writes OUT_DIR/wandb/offline-run-*/
(one folder per run segment) and OUT_DIR/expected.wjson ("W&B JSON": JSON plus NaN/Infinity tokens, so not
named .json): for each run id what `dr-wandb import` must store (config,
the summary keys the script set, state, and every history row with its exact values). JSON here uses Python's
NaN/Infinity tokens and exact integers, which dr-wandb's W&B JSON reader reads exactly.

The fixtures in test/import/fixtures/ were made by this script; src/import/*.live.test.ts runs it again.
"""

import json
import math
import os
import signal
import subprocess
import sys
import time

OUT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "offline-runs")
ENTITY = "imp-entity"
PROJECT = "imp-project"


def setup_env():
    for k in list(os.environ):
        if k.startswith("WANDB_"):
            del os.environ[k]
    os.environ.update(
        {
            "WANDB_MODE": "offline",
            "WANDB_DIR": OUT,
            "WANDB_SILENT": "true",
            "WANDB_ERROR_REPORTING": "false",
            "WANDB_DISABLE_CODE": "true",
            "WANDB_DISABLE_GIT": "true",
            "WANDB_CONSOLE": "wrap",
        }
    )


def basic(wandb, expected):
    """init / log / config.update / summary / console output / explicit step= / commit=False / finish."""
    run = wandb.init(
        entity=ENTITY,
        project=PROJECT,
        id="basic001",
        name="basic run",
        group="grp",
        job_type="train",
        tags=["a", "b"],
        notes="some notes",
        config={"lr": 0.01, "layers": [64, 32], "opt": {"name": "adam", "beta": 0.9}, "dotted.key": 1},
    )
    rows = []
    for i in range(5):
        m = {"loss": 1.0 / (i + 1), "acc": i / 10}
        run.log(m)
        rows.append({"step": i, "metrics": m})
    print("epoch done", flush=True)
    run.log({"part_a": 1}, commit=False)
    run.log({"part_b": 2})
    rows.append({"step": 5, "metrics": {"part_a": 1, "part_b": 2}})
    run.log({"jump": 7}, step=10)
    run.log({"jump": 8}, step=12)
    rows.append({"step": 10, "metrics": {"jump": 7}})
    rows.append({"step": 12, "metrics": {"jump": 8}})
    run.config.update({"batch": 128, "opt": {"name": "adamw", "beta": 0.9}}, allow_val_change=True)
    run.summary["best_loss"] = 0.2
    run.summary["note"] = "kept"
    print("training finished", flush=True)
    run.finish()
    expected["basic001"] = {
        "entity": ENTITY,
        "project": PROJECT,
        "run_name": "basic run",
        "group": "grp",
        "job_type": "train",
        "tags": ["a", "b"],
        "notes": "some notes",
        "state": "finished",
        "config": {
            "lr": 0.01,
            "layers": [64, 32],
            "opt": {"name": "adamw", "beta": 0.9},
            "dotted.key": 1,
            "batch": 128,
        },
        "summary": {"best_loss": 0.2, "note": "kept", "jump": 8, "loss": 0.2, "acc": 0.4, "_step": 12},
        "output_contains": ["epoch done", "training finished"],
        "history": rows,
    }


def values(wandb, expected):
    """NaN, ±Infinity, 2^60, unicode and dotted keys, nested dicts, a histogram, a table, 1,000 keys in one row."""
    run = wandb.init(entity=ENTITY, project=PROJECT, id="values01", config={"ünï": "cödé", "big": 2**60})
    rows = []
    specials = {
        "nan": float("nan"),
        "inf": float("inf"),
        "ninf": float("-inf"),
        "big": 2**60,
        "neg_big": -(2**60) - 1,
        "λ/精度": 0.5,
        "a.b.c": 3,
        "nested": {"x": {"y": 1, "z": [1, 2, 3]}, "s": "text"},
        "flag": True,
        "none": None,
    }
    run.log(specials)
    rows.append({"step": 0, "metrics": specials})
    run.log({"hist": wandb.Histogram(np_histogram=([1, 2, 1], [0.0, 1.0, 2.0, 3.0]))})
    rows.append({"step": 1, "metrics": {"hist": {"_type": "histogram", "values": [1, 2, 1], "bins": [0.0, 1.0, 2.0, 3.0]}}})
    run.log({"tbl": wandb.Table(columns=["a", "b"], data=[[1, "x"], [2, "y"]])})
    rows.append({"step": 2, "metrics": {"tbl": {"_type": "table-file", "nrows": 2, "ncols": 2}}, "partial": ["tbl"]})
    wide = {f"k{i:04d}": i * 0.5 for i in range(1000)}
    run.log(wide)
    rows.append({"step": 3, "metrics": wide})
    run.finish()
    expected["values01"] = {
        "entity": ENTITY,
        "project": PROJECT,
        "state": "finished",
        "config": {"ünï": "cödé", "big": 2**60},
        "summary": {"nan": float("nan"), "big": 2**60, "λ/精度": 0.5, "a.b.c": 3, "k0999": 499.5},
        "history": rows,
    }


def failed(wandb, expected):
    run = wandb.init(entity=ENTITY, project=PROJECT, id="failed01")
    run.log({"v": 1})
    run.finish(exit_code=3)
    expected["failed01"] = {
        "entity": ENTITY,
        "project": PROJECT,
        "state": "failed",
        "exit_code": 3,
        "config": {},
        "summary": {"v": 1},
        "history": [{"step": 0, "metrics": {"v": 1}}],
    }


def resumed(wandb, expected):
    """The same run id twice: the second segment resumes with explicit steps after the first's."""
    run = wandb.init(entity=ENTITY, project=PROJECT, id="resume01", config={"phase": 1})
    rows = []
    for i in range(3):
        run.log({"r": i}, step=i)
        rows.append({"step": i, "metrics": {"r": i}})
    run.finish()
    time.sleep(1.1)  # a new folder name (offline-run-<time>-<id>)
    run = wandb.init(entity=ENTITY, project=PROJECT, id="resume01", resume="allow", config={"phase2": 2})
    for i in range(3, 6):
        run.log({"r": i}, step=i)
        rows.append({"step": i, "metrics": {"r": i}})
    run.summary["done"] = True
    run.finish()
    expected["resume01"] = {
        "entity": ENTITY,
        "project": PROJECT,
        "state": "finished",
        "config": {"phase": 1, "phase2": 2},
        "summary": {"done": True, "r": 5},
        "history": rows,
    }


KILLED_CHILD = r"""
import sys, time, wandb
run = wandb.init(entity=sys.argv[1], project=sys.argv[2], id="killed01", config={"k": 1})
i = 0
while True:
    run.log({"x": i * 2, "y": i / 4, "pad": "p" * 40})
    print(i, flush=True)
    i += 1
"""


def descendants(pid):
    """Process ids below `pid` (from /proc), so the run's wandb-core can be killed with it."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def killed(expected):
    """A run SIGKILLed mid-way together with its wandb-core (a machine or job killed): the log ends mid-record.

    (Killing only the Python process is not enough: wandb-core then finishes the log with an exit record.)"""
    p = subprocess.Popen(
        [sys.executable, "-c", KILLED_CHILD, ENTITY, PROJECT],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    logged = 0
    for line in p.stdout:
        logged = int(line) + 1
        if logged >= 400:
            break
    # wandb-core first: killed after the script, it could still notice and finish the log with an exit record
    for pid in [*reversed(descendants(p.pid)), p.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    p.wait()
    expected["killed01"] = {
        "entity": ENTITY,
        "project": PROJECT,
        "state": "crashed",
        "config": {"k": 1},
        "killed": {"logged_at_least": logged, "row": "x = 2 * step, y = step / 4, pad = 'p' * 40"},
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    setup_env()
    expected = {}
    # first, before this process starts a wandb-core service that the child would share (and outlive the kill)
    killed(expected)
    import wandb

    basic(wandb, expected)
    values(wandb, expected)
    failed(wandb, expected)
    resumed(wandb, expected)
    with open(os.path.join(OUT, "expected.wjson"), "w", encoding="utf-8") as f:
        json.dump({"wandb_version": wandb.__version__, "runs": expected}, f, ensure_ascii=False, indent=1)
    assert math.isnan(expected["values01"]["history"][0]["metrics"]["nan"])


if __name__ == "__main__":
    main()
