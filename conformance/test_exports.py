"""run.download_history_exports() (wandb 0.28+, wandb-core): the parquet exports themselves, HEAD for sizes."""

from __future__ import annotations

import pytest


def _need_exports_api(run) -> None:
    if not hasattr(run, "download_history_exports"):
        pytest.skip("this wandb has no download_history_exports")


def test_download_history_exports(fake, api_for, tmp_path):
    from wandb.apis.public.runhistory import IncompleteRunHistoryError

    api = api_for(fake)
    checked = {"complete": 0, "live": 0}
    for t in fake.truth_runs():
        run = api.run(f"{fake.path}/{t['name']}")
        _need_exports_api(run)
        d = tmp_path / t["name"]
        try:
            res = run.download_history_exports(d, require_complete_history=True)
        except IncompleteRunHistoryError:
            # not fully exported: running runs (no export yet) or a run exported only up to some step
            assert t["state"] == "running" or t["historyLineCount"] > 0, t["name"]
            res = run.download_history_exports(d, require_complete_history=False)
            assert res.contains_live_data, t["name"]
            checked["live"] += 1
        else:
            assert not res.contains_live_data, t["name"]
            checked["complete"] += 1
        assert not res.errors, f"run {t['name']}: {res.errors}"
        for p in res.paths:
            data = p.read_bytes()
            assert len(data) > 12 and data[:4] == b"PAR1" and data[-4:] == b"PAR1", f"{p}: not a parquet file"
        if t["state"] == "running":
            assert res.paths == [] and res.contains_live_data, f"running run {t['name']} has no export"
        elif t["historyLineCount"] > 0 and not res.contains_live_data:
            assert res.paths, f"finished run {t['name']}: no export files"
    assert checked["complete"] > 0 and checked["live"] > 0, checked
