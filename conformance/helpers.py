"""Value comparison for the conformance suite.

`diff(actual, expected)` returns None when equal, else a short description of the first difference. Equality is
by value, the way the data means it, not the way one JSON encoder happened to write it:
  - NaN equals NaN; +/-Infinity equal themselves;
  - int and float compare by value (Go's encoding/json in wandb-core turns 1.0 into 1; Python keeps 1.0);
  - bool is never a number (True != 1);
  - dicts need the same keys; lists the same length and order.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def diff(actual: Any, expected: Any, path: str = "$", huge_as_str: bool = False) -> str | None:
    """huge_as_str: an integer beyond int64 may come back as its exact decimal digits in a string (parquet)."""
    if huge_as_str and isinstance(actual, str) and _is_num(expected) and isinstance(expected, int):
        if abs(expected) >= 2**63:
            return None if actual == str(expected) else _show(path, actual, expected)
    if _is_num(actual) and _is_num(expected):
        if isinstance(actual, float) and math.isnan(actual):
            return None if isinstance(expected, float) and math.isnan(expected) else _show(path, actual, expected)
        if isinstance(expected, float) and math.isnan(expected):
            return _show(path, actual, expected)
        return None if actual == expected else _show(path, actual, expected)
    if isinstance(actual, bool) or isinstance(expected, bool):
        return None if type(actual) is type(expected) and actual == expected else _show(path, actual, expected)
    if isinstance(actual, Mapping) and isinstance(expected, Mapping):
        ka, ke = set(actual), set(expected)
        if ka != ke:
            return (
                f"{path}: keys differ: missing {sorted(map(str, ke - ka))[:10]}, "
                f"unexpected {sorted(map(str, ka - ke))[:10]}"
            )
        for k in sorted(ka, key=str):
            d = diff(actual[k], expected[k], f"{path}.{k}", huge_as_str)
            if d:
                return d
        return None
    if _is_seq(actual) and _is_seq(expected):
        if len(actual) != len(expected):
            return f"{path}: length {len(actual)} != expected {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            d = diff(a, e, f"{path}[{i}]", huge_as_str)
            if d:
                return d
        return None
    if actual is None or expected is None or type(actual) is not type(expected):
        return None if actual is expected else _show(path, actual, expected)
    return None if actual == expected else _show(path, actual, expected)


def _is_seq(x: Any) -> bool:
    return isinstance(x, Sequence) and not isinstance(x, (str, bytes, bytearray))


def _show(path: str, a: Any, e: Any) -> str:
    ra, re_ = repr(a), repr(e)
    if len(ra) > 200:
        ra = ra[:200] + "..."
    if len(re_) > 200:
        re_ = re_[:200] + "..."
    return f"{path}: got {ra} ({type(a).__name__}), expected {re_} ({type(e).__name__})"


def assert_same(actual: Any, expected: Any, what: str = "") -> None:
    d = diff(actual, expected)
    assert d is None, f"{what}: {d}" if what else d


def plain(x: Any) -> Any:
    """wandb's Summary/Config wrappers and similar dict-likes -> plain dicts and lists."""
    if isinstance(x, Mapping) or (hasattr(x, "keys") and hasattr(x, "__getitem__") and not isinstance(x, str)):
        return {k: plain(x[k]) for k in x.keys()}
    if _is_seq(x):
        return [plain(v) for v in x]
    return x


def step_of(row: Mapping) -> int:
    s = row["_step"]
    assert _is_num(s) and float(s).is_integer(), f"_step {s!r} is not an integral number"
    return int(s)


def rows_by_step(rows: list[Mapping]) -> dict[int, Mapping]:
    out: dict[int, Mapping] = {}
    for r in rows:
        s = step_of(r)
        assert s not in out, f"step {s} appears twice"
        out[s] = r
    return out


def supports_kw(fn: Any, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def wandb_version() -> tuple[int, ...]:
    import wandb

    return tuple(int(p) for p in wandb.__version__.split(".")[:3] if p.isdigit())


def uses_core() -> bool:
    """0.27+: the public API goes through wandb-core (Go); scan_history reads parquet exports from 0.27.1."""
    return wandb_version() >= (0, 27, 0)
