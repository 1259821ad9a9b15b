"""Listing runs: Api().runs(path, filters, order, per_page, lazy) against the fake's truth."""

from __future__ import annotations

import re
import statistics

import pytest
from helpers import assert_same, plain

# Scalar wire fields of the RunFragment and the truth key they must equal.
SCALAR_FIELDS = {
    "name": "name",
    "id": "storageId",
    "displayName": "displayName",
    "state": "state",
    "group": "group",
    "jobType": "jobType",
    "sweepName": "sweepName",
    "commit": "commit",
    "createdAt": "createdAt",
    "heartbeatAt": "heartbeatAt",
    "description": "description",
    "notes": "notes",
    "historyLineCount": "historyLineCount",
}


def check_run_against_truth(run, t: dict, full: bool = True) -> None:
    """One wandb.apis.public.Run against its truth record."""
    who = f"run {t['name']}"
    assert run.id == t["name"], who
    assert run.storage_id == t["storageId"], who
    assert run.state == t["state"], who
    assert list(run.tags or []) == list(t["tags"] or []), f"{who}: tags"
    attrs = run._attrs
    for wire, key in SCALAR_FIELDS.items():
        if key in t:
            assert_same(attrs.get(wire), t[key], f"{who}: {wire}")
    user = attrs.get("user") or {}
    assert_same({"name": user.get("name"), "username": user.get("username")}, dict(t["user"]), f"{who}: user")
    if full:
        assert_same(plain(run.config), t["config"], f"{who}: config")
        assert_same(plain(run.summary), t["summary"], f"{who}: summary")
        assert_same(plain(run.system_metrics), t["systemMetrics"], f"{who}: systemMetrics")


def by_created(truth: list[dict], reverse: bool = False) -> list[dict]:
    return sorted(truth, key=lambda t: t["createdAt"], reverse=reverse)


def assert_order(names: list[str], expected: list[dict], truth_by_name: dict, reverse: bool = False) -> None:
    """Names equal the expected runs, in createdAt order (runs sharing a createdAt may come in any order)."""
    assert sorted(names) == sorted(t["name"] for t in expected)
    created = [truth_by_name[n]["createdAt"] for n in names]
    assert created == sorted(created, reverse=reverse), "runs are not in createdAt order"


@pytest.mark.parametrize("per_page", [5, 50])
def test_runs_all_full(fake, api_for, per_page):
    api = api_for(fake)
    truth = fake.truth_runs()
    tb = {t["name"]: t for t in truth}
    runs = api.runs(fake.path, per_page=per_page, lazy=False)
    assert len(runs) == len(truth)  # runCount
    listed = list(runs)
    assert_order([r.id for r in listed], truth, tb)
    for r in listed:
        check_run_against_truth(r, tb[r.id])


def test_runs_lazy_then_full(fake, api_for):
    """Default lazy listing (LightweightRunFragment), then reading config loads the full run (Run query)."""
    api = api_for(fake)
    truth = fake.truth_runs()
    tb = {t["name"]: t for t in truth}
    listed = list(api.runs(fake.path, per_page=4))
    assert sorted(r.id for r in listed) == sorted(tb)
    for r in listed[:4]:
        check_run_against_truth(r, tb[r.id], full=True)


def test_runs_order_desc(fake, api_for):
    api = api_for(fake)
    truth = fake.truth_runs()
    tb = {t["name"]: t for t in truth}
    names = [r.id for r in api.runs(fake.path, order="-created_at", per_page=5)]
    assert_order(names, truth, tb, reverse=True)


# -- filters ----------------------------------------------------------------------------------------------------


def _numeric_config_key(truth: list[dict]) -> str | None:
    """A config key holding a plain number in at least 3 runs ('lr' preferred)."""
    counts: dict[str, int] = {}
    for t in truth:
        for k, v in (t["config"] or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v:
                counts[k] = counts.get(k, 0) + 1
    good = [k for k, c in counts.items() if c >= 3 and "." not in k and not k.startswith("_")]
    if "lr" in good:
        return "lr"
    return sorted(good)[0] if good else None


def _numeric_summary_key(truth: list[dict]) -> str | None:
    """A top-level summary key holding a plain finite number in most runs."""
    counts: dict[str, int] = {}
    for t in truth:
        for k, v in (t["summary"] or {}).items():
            if _num(v) and abs(v) != float("inf") and not k.startswith("_") and "." not in k and "/" not in k:
                counts[k] = counts.get(k, 0) + 1
    good = sorted((k for k, c in counts.items() if c >= max(3, len(truth) // 2)), key=lambda k: (-counts[k], k))
    return good[0] if good else None


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def filter_cases(truth: list[dict]) -> list[tuple[str, dict, list[dict]]]:
    """(label, W&B filter, expected truth runs), built from the truth itself."""
    cases: list[tuple[str, dict, list[dict]]] = []
    cases.append(("state", {"state": "finished"}, [t for t in truth if t["state"] == "finished"]))
    cases.append(("state-ne", {"state": {"$ne": "finished"}}, [t for t in truth if t["state"] != "finished"]))
    k = _numeric_config_key(truth)
    if k:
        vals = sorted(t["config"][k] for t in truth if _num(t["config"].get(k)))
        mid = statistics.median(vals)
        gt = [t for t in truth if _num(t["config"].get(k)) and t["config"][k] > mid]
        cases.append((f"config.{k}.value>$gt", {f"config.{k}.value": {"$gt": mid}}, gt))
        cases.append(
            (
                f"$and(state,config.{k})",
                {"$and": [{"state": "finished"}, {f"config.{k}.value": {"$lte": mid}}]},
                [t for t in truth if t["state"] == "finished" and _num(t["config"].get(k)) and t["config"][k] <= mid],
            )
        )
    tags: dict[str, int] = {}
    for t in truth:
        for tag in t["tags"] or []:
            tags[tag] = tags.get(tag, 0) + 1
    if tags:
        tag = max(sorted(tags), key=lambda x: tags[x])
        cases.append(("tags-$in", {"tags": {"$in": [tag]}}, [t for t in truth if tag in (t["tags"] or [])]))
    sk = _numeric_summary_key(truth)
    if sk:
        vals = sorted(t["summary"][sk] for t in truth if _num(t["summary"].get(sk)))
        mid = statistics.median(vals)
        cases.append(
            (
                f"summary_metrics.{sk}>$gt",
                {f"summary_metrics.{sk}": {"$gt": mid}},
                [t for t in truth if _num(t["summary"].get(sk)) and t["summary"][sk] > mid],
            )
        )
    dn = sorted(t["displayName"] for t in truth if t.get("displayName"))
    if dn:
        prefix = re.escape(dn[len(dn) // 2][:2])
        cases.append(
            (
                "display_name-$regex",
                {"display_name": {"$regex": f"^{prefix}"}},
                [t for t in truth if t.get("displayName") and re.match(f"^{prefix}", t["displayName"])],
            )
        )
    names = [t["name"] for t in truth[:3]]
    cases.append(("name-$in", {"name": {"$in": names}}, [t for t in truth if t["name"] in names]))
    cases.append(
        (
            "$or",
            {"$or": [{"name": truth[0]["name"]}, {"state": "running"}]},
            [t for t in truth if t["name"] == truth[0]["name"] or t["state"] == "running"],
        )
    )
    return cases


FILTER_LABELS = ["state", "state-ne", "config", "$and", "summary", "display_name-$regex", "tags-$in", "name-$in", "$or"]


@pytest.mark.parametrize("label", FILTER_LABELS)
def test_runs_filters(fake, api_for, label):
    api = api_for(fake)
    truth = fake.truth_runs()
    tb = {t["name"]: t for t in truth}
    cases = [c for c in filter_cases(truth) if _label_matches(c[0], label)]
    if not cases:
        pytest.skip(f"no truth data for a {label} filter in this profile")
    for name, flt, expected in cases:
        runs = api.runs(fake.path, filters=flt, per_page=3, lazy=False)
        assert len(runs) == len(expected), f"{name}: runCount for {flt}"
        listed = list(runs)
        assert_order([r.id for r in listed], expected, tb)
        for r in listed:
            check_run_against_truth(r, tb[r.id])


def _label_matches(case_label: str, label: str) -> bool:
    if label == "config":
        return case_label.startswith("config.")
    if label == "$and":
        return case_label.startswith("$and")
    if label == "summary":
        return case_label.startswith("summary_metrics.")
    return case_label == label


def test_filters_are_not_trivial(fakes):
    """The filter cases above must select something and leave something out in the default profile."""
    truth = fakes("default").truth_runs()
    informative = [c for c in filter_cases(truth) if 0 < len(c[2]) < len(truth)]
    assert len(informative) >= 4, [(c[0], len(c[2])) for c in filter_cases(truth)]


def test_runs_invalid_filter_column_fails(fake_default, api_for):
    """An unknown top-level column is HTTP 400 on the real server (wandb#1230); the client raises, no retries."""
    api = api_for(fake_default)
    with pytest.raises(Exception) as e:  # noqa: PT011 - CommError in 0.26/0.31, wrapping the 400
        list(api.runs(fake_default.path, filters={"summary.epoch": 9}, per_page=2))
    assert "400" in f"{e.value} {e.value.__cause__!r}" or "invalid" in str(e.value).lower(), repr(e.value)
