"""Run files: run.files(), File.download(), run.metadata; no credentials where they do not belong."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path, PurePosixPath

from helpers import assert_same, supports_kw


def md5_forms(data: bytes) -> set[str]:
    d = hashlib.md5(data).digest()
    return {d.hex(), base64.b64encode(d).decode()}


def _unsafe(name: str) -> bool:
    return name.startswith("/") or ".." in PurePosixPath(name).parts or "\\" in name


def _download(f, root: Path, api) -> bytes | None:
    """File.download() bytes; None when the client refuses an unsafe name (edge profile: '../../escape.txt')."""
    kw = {"root": str(root), "replace": True}
    if supports_kw(f.download, "api"):
        kw["api"] = api
    if _unsafe(f.name) and (f.name.startswith("/") or f.name.startswith("\\")):
        # An absolute name cannot be kept inside the tmp dir by nesting the root (os.path.join drops the root), and
        # older clients do not validate it: never ask a client to write it.
        return None
    if _unsafe(f.name):
        # 0.28+ validates the path (ValueError "Invalid path"); older clients may join it. Keep any write inside
        # the test's tmp dir by nesting the root deep enough.
        deep = root / "a" / "b" / "c" / "d"
        kw["root"] = str(deep)
        try:
            fh = f.download(**kw)
        except Exception as e:  # noqa: BLE001
            assert "Invalid path" in str(e), f"{f.name}: {e!r}"
            return None
        fh.close()
        return (deep / f.name).resolve().read_bytes()
    fh = f.download(**kw)
    fh.close()
    return (root / f.name).read_bytes()


def test_files_list_and_download(fake, api_for, tmp_path):
    api = api_for(fake)
    checked = 0
    refused: list[str] = []
    for t in fake.truth_runs()[:5]:
        run = api.run(f"{fake.path}/{t['name']}")
        files = list(run.files(per_page=2) if supports_kw(run.files, "per_page") else run.files())
        truth = sorted(t["files"], key=lambda x: x["name"])
        got = sorted(({"name": f.name, "size": f.size, "md5": f.md5} for f in files), key=lambda x: x["name"])
        assert_same(got, [{"name": x["name"], "size": x["size"], "md5": x["md5"]} for x in truth], f"run {t['name']}")
        for f in files:
            tf = next(x for x in truth if x["name"] == f.name)
            data = _download(f, tmp_path / t["name"], api)
            if data is None:
                refused.append(f.name)
                continue
            assert len(data) == tf["size"], f"run {t['name']} file {f.name}: size"
            assert tf["md5"] in md5_forms(data), f"run {t['name']} file {f.name}: md5 of downloaded bytes"
            checked += 1
    assert checked > 0, "no files in the first runs"
    assert all(_unsafe(n) for n in refused)
    stats = fake.stats()
    assert stats.get("authLeaks") in ([], 0, None, {}), f"authLeaks: {stats.get('authLeaks')!r}"


def test_run_file_single(fake_default, api_for, tmp_path):
    f = fake_default
    api = api_for(f)
    t = next(t for t in f.truth_runs() if t["files"])
    tf = t["files"][0]
    run = api.run(f"{f.path}/{t['name']}")
    one = run.file(tf["name"])
    assert one.name == tf["name"] and one.size == tf["size"] and one.md5 == tf["md5"]
    assert tf["md5"] in md5_forms(_download(one, tmp_path, api))


def test_run_metadata(fake, api_for, tmp_path):
    """run.metadata is wandb-metadata.json; the client swallows errors (None), so None is a failure here."""
    api = api_for(fake)
    checked = 0
    for t in fake.truth_runs()[:6]:
        tf = next((x for x in t["files"] if x["name"] == "wandb-metadata.json"), None)
        run = api.run(f"{fake.path}/{t['name']}")
        if tf is None:
            assert run.metadata is None, f"run {t['name']}: metadata without wandb-metadata.json"
            continue
        meta = run.metadata
        assert meta is not None, f"run {t['name']}: metadata not readable by the client"
        # the bytes behind it are the truth's (md5), so parse those independently
        data = _download(run.file("wandb-metadata.json"), tmp_path / t["name"], api)
        assert tf["md5"] in md5_forms(data)
        assert_same(meta, json.loads(data), f"run {t['name']}: metadata")
        checked += 1
    assert checked > 0
    assert fake.stats().get("authLeaks") in ([], 0, None, {})
