"""History: sampled history(), the full scan_history() on the parquet and the window paths, system events."""

from __future__ import annotations

import math

import pytest
from helpers import assert_same, diff, rows_by_step, step_of, supports_kw, uses_core


# What the parquet path of 0.27.1+ (wandb-core reading the exports) does to rows, and the suite accepts there:
#  - every row has every column of the export: a key the row never logged comes back as None. Truth has no
#    logged nulls, so on that path None and "absent" are the same thing (a real logged null would be lost too);
#  - an integer beyond int64 comes back as a string of its exact digits (no parquet integer type holds it; the
#    fake exports such a column as VARCHAR).
# wandb 0.26's scan_history never reads parquet, so it is compared strictly (its beta_scan_history does: see below).
PARQUET_CLIENT = uses_core()


def _client_view(row: dict, parquet: bool) -> dict:
    if not parquet:
        return row
    return {k: v for k, v in row.items() if v is not None}


def _scan(fake, run, method: str = "scan_history", **kw):
    """scan_history (or 0.26's beta_scan_history, the wandb-core parquet reader of its day) as a list."""
    fn = getattr(run, method)
    parquet = PARQUET_CLIENT or method == "beta_scan_history"
    # 0.28+ caches parquet downloads by entity_project_run in WANDB_CACHE_DIR; two fakes may share names
    if supports_kw(fn, "use_cache"):
        kw.setdefault("use_cache", False)
    rows = [_client_view(r, parquet) for r in fn(**kw)]
    if parquet:
        boundary = fake.live_boundary(run.id)
        if boundary is not None:
            rows = _drop_window_duplicates(rows, boundary)
    return rows


def _drop_window_duplicates(rows: list[dict], boundary: int) -> list[dict]:
    """wandb-core's reader (0.27.1+), for a run whose exports end before its last step: a scan window that
    reaches the first live step is fetched with HistoryPage from the window's *start*, and the parquet rows of
    that window are added too, so the exported steps of that one window come back twice (sorted, side by
    side). The server cannot answer differently: 0.26 sends the same HistoryPage and needs every row of the
    range. Only for a run with exports and live steps, and only below its first live step (`boundary`): drop a
    row when it repeats the previous row's step with identical values; anything else stays and fails."""
    out: list[dict] = []
    for r in rows:
        if out and "_step" in r and "_step" in out[-1] and step_of(r) == step_of(out[-1]) < boundary:
            a, b = out[-1], r
            if diff(a, b, huge_as_str=True) is None or diff(b, a, huge_as_str=True) is None:
                if any(isinstance(v, str) for v in a.values()):
                    out[-1] = b  # keep the live (JSON) row over the parquet one where they differ in form
                continue
        out.append(r)
    return out


def _assert_rows_equal(rows: list[dict], truth: list[dict], who: str, parquet: bool = PARQUET_CLIENT) -> None:
    assert len(rows) == len(truth), f"{who}: {len(rows)} rows, truth has {len(truth)}" + (
        _first_step_gap(rows, truth)
    )
    for i, (r, t) in enumerate(zip(rows, truth)):
        d = diff(r, t, huge_as_str=parquet)
        assert d is None, f"{who}: row {i} (truth _step {t.get('_step')}): {d}"


def _first_step_gap(rows: list[dict], truth: list[dict]) -> str:
    got = [step_of(r) for r in rows]
    want = [step_of(t) for t in truth]
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return f"; first difference at index {i}: step {a} vs truth {b}"
    return f"; steps got {got[:5]}..{got[-3:]} truth {want[:5]}..{want[-3:]}"


def _runs_with_history(f, states=None):
    return [t for t in f.truth_runs() if (states is None or t["state"] in states)]


# -- scan_history: every row, exactly ---------------------------------------------------------------------------


def _stats_delta(before: dict, after: dict) -> dict:
    ops_b, ops_a = before.get("byOperation", {}), after.get("byOperation", {})
    out = {k: ops_a.get(k, 0) - ops_b.get(k, 0) for k in ops_a}
    out["<parquet GETs>"] = after.get("parquet", 0) - before.get("parquet", 0)
    return out


@pytest.mark.parametrize("page_size", [1000, 37])
def test_scan_history_full(fake, api_for, page_size):
    """All runs: finished runs with parquet exports (0.27.1+ reads parquet), running runs (live windows)."""
    api = api_for(fake)
    before = fake.stats()
    for t in fake.truth_runs():
        run = api.run(f"{fake.path}/{t['name']}")
        rows = _scan(fake, run, page_size=page_size)
        _assert_rows_equal(rows, fake.truth_history(t["name"]), f"run {t['name']} ({t['state']})")
    # the paths this test is meant to cover were really taken
    d = _stats_delta(before, fake.stats())
    assert d.get("HistoryPage", 0) > 0, d  # running runs (and 0.26: every run) page through live windows
    if PARQUET_CLIENT:
        assert d.get("RunParquetHistory", 0) > 0 and d["<parquet GETs>"] > 0, d
    else:
        assert d.get("RunParquetHistory", 0) == 0 and d["<parquet GETs>"] == 0, d


@pytest.mark.parametrize("page_size", [1000, 37])
def test_beta_scan_history(fake, api_for, page_size):
    """0.26.1 also ships wandb-core's parquet reader as beta_scan_history (what 0.27.1 made scan_history): every
    row equals truth, with the parquet-path allowances. On 0.27.1+ it is scan_history itself (tested above)."""
    if uses_core():
        pytest.skip("beta_scan_history is scan_history on this version")
    api = api_for(fake)
    before = fake.stats()
    for t in fake.truth_runs():
        run = api.run(f"{fake.path}/{t['name']}")
        if not hasattr(run, "beta_scan_history"):
            pytest.skip("no beta_scan_history")
        rows = _scan(fake, run, "beta_scan_history", page_size=page_size)
        truth = _until_first_empty_window(fake.truth_history(t["name"]), page_size, t["lastStep"] + 1)
        _assert_rows_equal(rows, truth, f"run {t['name']} ({t['state']})", parquet=True)
    d = _stats_delta(before, fake.stats())
    assert d.get("RunParquetHistory", 0) > 0 and d["<parquet GETs>"] > 0, d


def _until_first_empty_window(truth: list[dict], page_size: int, stop: int) -> list[dict]:
    """0.26.1's BetaHistoryScan ends at the first window [off, off+page_size) without rows (a client bug, fixed
    in 0.27.x: wandb#12067/#12073): a run whose steps start at 1000 scans as empty with page_size 1000."""
    steps = [step_of(r) for r in truth]
    off = 0
    while off < stop:
        if not any(off <= s < off + page_size for s in steps):
            return [r for r in truth if step_of(r) < off]
        off += page_size
    return truth


def test_scan_history_window_path(fake_noexports, api_for):
    """--parquet-exports off: parquetHistory is empty and every row comes through HistoryPage windows."""
    f = fake_noexports
    api = api_for(f)
    before = f.stats()
    for t in f.truth_runs():
        run = api.run(f"{f.path}/{t['name']}")
        for page_size in (1000, 50):
            rows = _scan(f, run, page_size=page_size)
            _assert_rows_equal(rows, f.truth_history(t["name"]), f"run {t['name']} page_size={page_size}")
    d = _stats_delta(before, f.stats())
    assert d.get("HistoryPage", 0) > 0 and d["<parquet GETs>"] == 0, d


def test_scan_history_step_range(fake_default, api_for):
    f = fake_default
    api = api_for(f)
    t = max(f.truth_runs(), key=lambda t: t["historyLineCount"])
    truth = f.truth_history(t["name"])
    assert len(truth) > 20
    lo, hi = step_of(truth[5]), step_of(truth[-6])
    run = api.run(f"{f.path}/{t['name']}")
    rows = _scan(f, run, min_step=lo, max_step=hi, page_size=16)
    _assert_rows_equal(rows, [r for r in truth if lo <= step_of(r) < hi], f"run {t['name']} [{lo},{hi})")


def _metric_keys(truth_rows: list[dict]) -> list[str]:
    seen: dict[str, int] = {}
    for r in truth_rows:
        for k in r:
            if not k.startswith("_"):
                seen[k] = seen.get(k, 0) + 1
    return sorted(seen, key=lambda k: (-seen[k], k))


@pytest.mark.parametrize("page_size", [1000, 40])
@pytest.mark.parametrize("nkeys", [1, 2])
def test_scan_history_keys(fake, api_for, page_size, nkeys):
    """scan_history(keys=[...]): only rows that have every key, projected to the keys (and _step)."""
    api = api_for(fake)
    checked = 0
    for t in fake.truth_runs():
        truth = fake.truth_history(t["name"])
        metric_keys = _metric_keys(truth)
        if len(metric_keys) < nkeys:
            continue
        # the sparsest key (fewer rows have it), and with two keys the densest as well
        keys = [metric_keys[-1]] if nkeys == 1 else [metric_keys[-1], metric_keys[0]]
        run = api.run(f"{fake.path}/{t['name']}")
        rows = _scan(fake, run, keys=list(keys), page_size=page_size)
        if PARQUET_CLIENT:
            # the parquet reader returns every row in range, a key None where the row lacks it
            rows = [r for r in rows if all(k in r for k in keys)]
        expected = [r for r in truth if all(k in r for k in keys)]
        who = f"run {t['name']} ({t['state']}) keys={keys} page_size={page_size}"
        for i, r in enumerate(rows):
            assert set(keys) <= set(r) <= {*keys, "_step"}, f"{who}: row {i} has keys {sorted(r)}"
        if not uses_core() and t["lastStep"] + 1 > page_size:
            _assert_old_sampled_windows(rows, expected, keys, page_size, who)
        else:
            assert len(rows) == len(expected), f"{who}: {len(rows)} rows, truth has {len(expected)}"
            for i, (r, e) in enumerate(zip(rows, expected)):
                d = diff({x: r[x] for x in r}, {x: e[x] for x in r}, huge_as_str=PARQUET_CLIENT)
                assert d is None, f"{who}: row {i}: {d}"
        checked += 1
        if checked >= 4:
            break
    assert checked > 0


def _assert_old_sampled_windows(
    rows: list[dict], expected: list[dict], keys: list[str], page_size: int, who: str
) -> None:
    """wandb 0.26's keyed scan sends SampledHistoryPage with spec maxStep = the window's exclusive end and
    samples = page_size, but sampledHistory's maxStep is inclusive (wandb-core sends maxStep-1 for that reason).
    So a row at a window's end step comes back in two windows, and a window holding page_size+1 rows is
    down-sampled to page_size (one row lost). That is the client, not the server: check only what must still
    hold: every row is a truth row, duplicates sit on window boundaries, at most one row lost per window."""
    tb = rows_by_step(expected)
    seen: dict[int, int] = {}
    last = -1
    for i, r in enumerate(rows):
        s = step_of(r)
        assert s in tb, f"{who}: row {i} step {s} is not a truth row having {keys}"
        assert_same({k: r[k] for k in keys}, {k: tb[s][k] for k in keys}, f"{who}: row {i}")
        assert s >= last, f"{who}: steps go back at row {i}"
        last = s
        seen[s] = seen.get(s, 0) + 1
    for s, n in seen.items():
        assert n == 1 or (n == 2 and s % page_size == 0), f"{who}: step {s} returned {n} times"
    windows = (max(tb) // page_size + 1) if tb else 0
    missing = [s for s in tb if s not in seen]
    assert len(missing) <= windows, f"{who}: {len(missing)} rows missing ({missing[:10]}), {windows} windows"


# -- history(): sampled -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("samples", [500, 40])
def test_history_sampled(fake, api_for, samples):
    api = api_for(fake)
    for t in fake.truth_runs()[:6]:
        run = api.run(f"{fake.path}/{t['name']}")
        rows = run.history(samples=samples, pandas=False)
        truth = fake.truth_history(t["name"])
        who = f"run {t['name']} samples={samples}"
        if not truth:
            assert rows == [] or len(rows) == 0, who
            continue
        # W&B samples randomly and roughly: 500 once gave 524 rows (wandb#5014), which fits Bernoulli sampling
        # (the fake's way): mean `samples`, spread about sqrt(samples). All rows when there are fewer.
        assert 1 <= len(rows) <= len(truth), f"{who}: {len(rows)} rows of {len(truth)}"
        assert len(rows) <= samples + math.ceil(5 * math.sqrt(samples)) + 2, f"{who}: {len(rows)} rows"
        if len(truth) <= samples // 2:
            assert len(rows) == len(truth), f"{who}: fewer rows than samples must give all rows"
        tb = rows_by_step(truth)
        for i, r in enumerate(rows):
            s = step_of(r)
            assert s in tb, f"{who}: row {i} has _step {s}, not in truth"
            assert_same(r, tb[s], f"{who}: row {i}")


def test_history_sampled_keys(fake, api_for):
    """history(keys=[k]) -> sampledHistory: rows have the key, values equal truth."""
    api = api_for(fake)
    for t in fake.truth_runs()[:4]:
        truth = fake.truth_history(t["name"])
        keys = _metric_keys(truth)
        if not keys:
            continue
        k = keys[0]
        run = api.run(f"{fake.path}/{t['name']}")
        rows = run.history(keys=[k], samples=50, pandas=False)
        tb = rows_by_step(truth)
        who = f"run {t['name']} keys=[{k}]"
        having = [r for r in truth if k in r]
        assert 1 <= len(rows) <= len(having), f"{who}: {len(rows)} rows, {len(having)} have the key"
        for i, r in enumerate(rows):
            assert set(r) <= {k, "_step"}, f"{who}: row {i} has keys {sorted(r)}"
            s = step_of(r)
            assert k in tb[s], f"{who}: row {i} step {s} lacks {k} in truth"
            assert_same(r[k], tb[s][k], f"{who}: row {i}")


def test_history_system_stream(fake, api_for):
    """history(stream="system") -> events(samples): every row is one of the truth events."""
    api = api_for(fake)
    for t in fake.truth_runs()[:6]:
        run = api.run(f"{fake.path}/{t['name']}")
        rows = run.history(stream="system", pandas=False)
        truth = fake.truth_events(t["name"])
        who = f"run {t['name']} system events"
        assert len(rows) <= len(truth), f"{who}: {len(rows)} rows, truth has {len(truth)}"
        if truth:
            assert rows, f"{who}: none returned, truth has {len(truth)}"
        unmatched = [r for r in rows if not any(diff(r, e) is None for e in truth)]
        assert not unmatched, f"{who}: rows not in truth, e.g. {unmatched[0]!r:.300}"
        if len(truth) <= 500:  # fewer events than samples: all of them, in order
            assert_same(rows, truth, who)


def test_wire_variant_is_the_expected_one():
    """Guard: each venv really exercises its transport (0.27+: wandb-core)."""
    import wandb

    if uses_core():
        import importlib.util

        assert importlib.util.find_spec("wandb.apis.public.service_api") is not None, wandb.__version__
    else:
        assert wandb.__version__.startswith("0.26."), wandb.__version__
