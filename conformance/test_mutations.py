"""A project that changes while the client reads it (/_fake/mutate): what an incremental mirror relies on.

Its own fake process (module scope): appendSteps, finishRun, setTags, setSummary, addRuns, deleteRun, and after
each the client's view must equal the new truth. A new wandb.Api() after every mutation: Api caches the Run of
api.run(path) and the Runs of api.runs(path, filters, order) for its lifetime, so an old one shows the old state.
"""

from __future__ import annotations

import pytest
from conftest import FAKE_CONFIGS, Fake
from test_history import PARQUET_CLIENT, _assert_rows_equal, _scan, _stats_delta
from test_runs import check_run_against_truth


@pytest.fixture(scope="module")
def mfake():
    f = Fake("mutable", FAKE_CONFIGS["mutable"])
    yield f
    f.stop()


def _check_all(api, f: Fake) -> None:
    truth = f.truth_runs()
    runs = list(api.runs(f.path, per_page=2, lazy=False))
    assert sorted(r.id for r in runs) == sorted(t["name"] for t in truth)
    tb = {t["name"]: t for t in truth}
    for r in runs:
        check_run_against_truth(r, tb[r.id])


def test_running_run_grows_then_finishes(mfake, api_for):
    f = mfake
    api = api_for(f)
    t = next(t for t in f.truth_runs() if t["state"] == "running")
    name = t["name"]
    path = f"{f.path}/{name}"
    _assert_rows_equal(_scan(f, api.run(path)), f.truth_history(name), f"{name} before")

    f.mutate({"op": "appendSteps", "run": name, "steps": 37})
    api = api_for(f)
    t2 = f.truth_run(name)
    assert t2["lastStep"] == t["lastStep"] + 37 and t2["heartbeatAt"] > t["heartbeatAt"]
    run = api.run(path)
    check_run_against_truth(run, t2)
    assert run.lastHistoryStep == t2["lastStep"]
    _assert_rows_equal(_scan(f, run, page_size=50), f.truth_history(name), f"{name} after appendSteps")

    before = f.stats()
    f.mutate({"op": "finishRun", "run": name})
    api = api_for(f)
    run = api.run(path)
    check_run_against_truth(run, f.truth_run(name))
    assert run.state == "finished"
    _assert_rows_equal(_scan(f, run, page_size=64), f.truth_history(name), f"{name} after finishRun")
    if PARQUET_CLIENT:  # now exported: the scan reads parquet
        assert _stats_delta(before, f.stats())["<parquet GETs>"] > 0


def test_finished_run_gets_more_steps(mfake, api_for):
    """A finished, exported run that logs again (resumed): exported head from parquet, live tail after it."""
    f = mfake
    api = api_for(f)
    t = next(t for t in f.truth_runs() if t["state"] == "finished" and t["historyLineCount"] > 0)
    name = t["name"]
    f.mutate({"op": "appendSteps", "run": name, "steps": 45})
    run = api.run(f"{f.path}/{name}")
    check_run_against_truth(run, f.truth_run(name))
    for page_size in (1000, 40):
        _assert_rows_equal(_scan(f, run, page_size=page_size), f.truth_history(name), f"{name} page {page_size}")


def test_tags_summary_new_and_deleted_runs(mfake, api_for):
    f = mfake
    a, b = f.truth_runs()[0]["name"], f.truth_runs()[1]["name"]
    f.mutate(
        {"op": "setTags", "run": a, "tags": ["conformance-tag", "ünïcødé"]},
        {"op": "setSummary", "run": b, "summary": {"conformance/score": 0.125, "nested": {"x": [1, 2.5, None]}}},
        {"op": "addRuns", "count": 2},
    )
    api = api_for(f)
    _check_all(api, f)
    tagged = [r.id for r in api.runs(f.path, filters={"tags": {"$in": ["conformance-tag"]}})]
    assert tagged == [a]
    assert api.run(f"{f.path}/{b}").summary["conformance/score"] == 0.125

    newest = f.truth_runs()[-1]["name"]
    f.mutate({"op": "deleteRun", "run": a})
    api = api_for(f)
    _check_all(api, f)
    assert a not in [r.id for r in api.runs(f.path)]
    names = [r.id for r in api.runs(f.path, order="-created_at", per_page=3)]
    assert names[0] == newest
    with pytest.raises(Exception):  # noqa: B017, PT011 - CommError "Could not find run"
        api.run(f"{f.path}/{a}").state  # noqa: B018
