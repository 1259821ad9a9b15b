"""One run: Api().run(path), its config, summary, system metrics, lastHistoryStep; not-found and auth errors."""

from __future__ import annotations

import pytest
from conftest import WRONG_KEY
from test_runs import check_run_against_truth


def test_run_every_run(fake, api_for):
    api = api_for(fake)
    for t in fake.truth_runs():
        run = api.run(f"{fake.path}/{t['name']}")
        check_run_against_truth(run, t)
        assert run.lastHistoryStep == t["lastStep"], f"run {t['name']}: lastHistoryStep (historyKeys.lastStep)"


def test_run_path_forms(fake_default, api_for):
    f = fake_default
    api = api_for(f)
    t = f.truth_runs()[0]
    for path in (f"{f.path}/runs/{t['name']}", f"{f.path}/{t['name']}"):
        assert api.run(path).id == t["name"], path
    # no entity in the path: WANDB_ENTITY (set) is used, no GetDefaultEntity round trip needed
    assert api.run(f"{f.project}/{t['name']}").storage_id == t["storageId"]


def test_run_not_found(fake_default, api_for):
    f = fake_default
    api = api_for(f)
    with pytest.raises(Exception) as e:
        api.run(f"{f.path}/no-such-run-xyz").state  # noqa: B018
    assert "no-such-run-xyz" in str(e.value) or "not found" in str(e.value).lower() or "Could not find" in str(e.value)


def test_wrong_key_is_an_auth_error(fake_default, api_for):
    import wandb
    from wandb.errors import AuthenticationError, CommError

    api_for(fake_default)  # WANDB_BASE_URL etc. for this fake
    with pytest.raises((AuthenticationError, CommError)) as e:
        # explicit api_key: 0.26 keeps the first key it verified for a host as the session's credentials and
        # would not re-read a changed WANDB_API_KEY. Both versions check the key when Api() is built.
        api = wandb.Api(api_key=WRONG_KEY, timeout=20)
        api.runs(fake_default.path, per_page=2)[0]  # noqa: B018
    # the real server's 401 surfaces as an AuthenticationError (or a CommError whose cause is the 401)
    text = f"{type(e.value).__name__}: {e.value} {e.value.__cause__!r}"
    assert isinstance(e.value, AuthenticationError) or "401" in text or "auth" in text.lower(), text
    assert wandb.__version__  # the import worked


def test_no_auth_leaks_so_far(fakes):
    """The fake counts requests that carried credentials where the real server must not see them."""
    for name in ("default", "edge"):
        stats = fakes(name).stats()
        leaks = stats.get("authLeaks")
        assert leaks in ([], 0, None, {}), f"{name}: authLeaks {leaks!r}"


def test_run_sweep(fake, api_for):
    """run.sweep (GetSweep; 0.26 loads it with every run that has a sweepName, 0.31 on first access)."""
    api = api_for(fake)
    in_sweeps = [t for t in fake.truth_runs() if t.get("sweepName")]
    if not in_sweeps:
        pytest.skip("no run in a sweep in this profile")
    for t in in_sweeps[:3]:
        run = api.run(f"{fake.path}/{t['name']}")
        assert run.sweep_name == t["sweepName"]
        sweep = run.sweep
        assert sweep is not None, f"run {t['name']}: sweep {t['sweepName']} not found"
        assert sweep.id == t["sweepName"], f"run {t['name']}: sweep id {sweep.id!r}"


def test_viewer_projects_default_entity(fake_default, api_for, monkeypatch):
    """api.viewer, api.default_entity (no WANDB_ENTITY: GetDefaultEntity/GetViewer), api.projects(entity)."""
    f = fake_default
    api_for(f)
    monkeypatch.delenv("WANDB_ENTITY")
    import wandb

    api = wandb.Api(timeout=20)
    assert api.default_entity == f.entity
    assert api.viewer.entity == f.entity
    assert f.project in [p.name for p in api.projects(f.entity)]
    # a path without the entity now resolves through the default entity
    t = f.truth_runs()[0]
    assert api.run(f"{f.project}/{t['name']}").storage_id == t["storageId"]
