"""Conformance suite: the official `wandb` Python client reads fake-wandb, and what it reads must equal the
fake's own truth (/_fake/truth/*).

One venv per client version (see docs/conformance.md); run through conformance/run.sh. Each fake configuration
below is one `npx tsx fake-wandb/bin.ts` process, started on first use and terminated at the end of the session.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------------------------
# Client environment (wandb-sdk-as-client.md). Set before `wandb` is imported: wandb-core, the 0.27+ sidecar, is
# started once per process and inherits it (its unix socket lives in $TMPDIR). Fresh directories per session.
# ---------------------------------------------------------------------------------------------------------------
SESSION_DIR = Path(tempfile.mkdtemp(prefix="drwb-conf-"))
for _sub in ("tmp", "cache", "config", "wandb", "home"):
    (SESSION_DIR / _sub).mkdir()
for _k in list(os.environ):
    if _k.startswith("WANDB_") or _k.lower() in ("http_proxy", "https_proxy", "all_proxy"):
        del os.environ[_k]
os.environ.update(
    {
        "TMPDIR": str(SESSION_DIR / "tmp"),
        "WANDB_CACHE_DIR": str(SESSION_DIR / "cache"),
        "WANDB_CONFIG_DIR": str(SESSION_DIR / "config"),
        "WANDB_DIR": str(SESSION_DIR / "wandb"),
        "WANDB_ERROR_REPORTING": "false",
        "WANDB_SILENT": "true",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "NETRC": str(SESSION_DIR / "home" / "netrc"),  # never read the machine's ~/.netrc
    }
)
tempfile.tempdir = None  # let tempfile pick up the new TMPDIR

# A key that passes the client's local check (optional prefix, then >= 40 chars of [A-Za-z0-9_-]).
API_KEY = "conformance_" + "k0" * 20
WRONG_KEY = "conformance_" + "x9" * 20

# The fake projects the suite reads. Small on purpose: the whole suite must stay well under 3 minutes per version.
# Each has its own project name: 0.28+ caches parquet downloads by entity_project_run. --sdk-shapes-only makes
# the fake reject any request shape its list of what the official client sends does not know.
FAKE_CONFIGS: dict[str, list[str]] = {
    # finished runs are exported to parquet; some runs are still running
    "default": [
        "--profile", "default", "--seed", "11", "--runs", "12", "--steps", "240", "--metrics", "5",
        "--running-fraction", "0.25", "--project", "conf-default",
    ],
    # odd names, NaN/Infinity, big integers, sparse steps, nested values, empty runs ...
    "edge": [
        "--profile", "edge", "--seed", "12", "--runs", "12", "--steps", "160", "--metrics", "5",
        "--project", "conf-edge",
    ],
    # no parquet exports at all: scan_history must page through HistoryPage windows
    # mutated by test_mutations.py (its own process, started and stopped by that module)
    "mutable": [
        "--profile", "default", "--seed", "14", "--runs", "5", "--steps", "120", "--metrics", "4",
        "--running-fraction", "0.4", "--project", "conf-mutable",
    ],
    "noexports": [
        "--profile", "default", "--seed", "13", "--runs", "6", "--steps", "230", "--metrics", "4",
        "--parquet-exports", "off", "--project", "conf-noexports",
    ],
}
COMMON_ARGS = ["--sdk-shapes-only"]
START_TIMEOUT_S = 90.0


def _http_get(url: str, timeout: float = 30.0) -> bytes:
    req = urllib.request.Request(url)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=timeout) as resp:
        return resp.read()


def _ndjson(data: bytes) -> list:
    # json.loads reads the bare NaN/Infinity tokens and exact big integers of the truth encoding
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


class Fake:
    """One running fake-wandb process and its truth endpoints."""

    def __init__(self, name: str, args: list[str]):
        self.name = name
        self.args = args
        self.log_path = SESSION_DIR / f"fake-{name}.log"
        self._log = open(self.log_path, "wb")
        # `npx tsx fake-wandb/bin.ts`, but never letting npx fetch anything: the local tsx from `npm ci`
        tsx = ROOT / "node_modules" / ".bin" / "tsx"
        runner = [str(tsx)] if tsx.exists() else ["npx", "--no", "tsx"]
        cmd = [*runner, "fake-wandb/bin.ts", "--port", "0", "--api-key", API_KEY, *COMMON_ARGS, *args]
        cmd += ["--cache-dir", str(SESSION_DIR / f"fake-{name}-cache")]
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,  # its own process group: npx -> node, terminated together
        )
        info = self._read_ready_line()
        self.url: str = info["url"].rstrip("/")
        self.api_key: str = info["apiKey"]
        self.entity: str = info["entity"]
        self.project: str = info["project"]
        self.storage_url: str = info.get("storageUrl", "")
        self.path = f"{self.entity}/{self.project}"
        self._truth_runs: list | None = None
        self._history: dict[str, list] = {}
        self._events: dict[str, list] = {}

    def _read_ready_line(self) -> dict:
        box: dict = {}

        def reader() -> None:
            assert self.proc.stdout is not None
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").strip()
                if line.startswith("{"):
                    try:
                        obj = json.loads(line)
                    except ValueError:
                        continue
                    if "url" in obj:
                        box["info"] = obj
                        break
            # keep draining stdout so the fake never blocks on a full pipe
            for _ in self.proc.stdout:
                pass

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while "info" not in box:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"fake-wandb ({self.name}) exited with {self.proc.returncode} before it was ready:\n"
                    + self.log_tail()
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"fake-wandb ({self.name}) not ready after {START_TIMEOUT_S}s:\n" + self.log_tail())
            time.sleep(0.05)
        return box["info"]

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        self._log.close()
        return self.proc.returncode

    # -- truth ------------------------------------------------------------------------------------------------
    def get(self, path: str, **params: str) -> bytes:
        q = ("?" + urllib.parse.urlencode(params)) if params else ""
        return _http_get(f"{self.url}{path}{q}")

    def truth_runs(self) -> list[dict]:
        if self._truth_runs is None:
            self._truth_runs = _ndjson(self.get("/_fake/truth/runs"))
        return self._truth_runs

    def truth_run(self, name: str) -> dict:
        for r in self.truth_runs():
            if r["name"] == name:
                return r
        raise KeyError(name)

    def truth_history(self, name: str) -> list[dict]:
        if name not in self._history:
            self._history[name] = _ndjson(self.get("/_fake/truth/history", run=name))
        return self._history[name]

    def truth_events(self, name: str) -> list[dict]:
        if name not in self._events:
            self._events[name] = _ndjson(self.get("/_fake/truth/events", run=name))
        return self._events[name]

    def refresh(self) -> None:
        """Forget cached truth (after a mutation)."""
        self._truth_runs = None
        self._history.clear()
        self._events.clear()

    def mutate(self, *ops: dict) -> None:
        req = urllib.request.Request(
            f"{self.url}/_fake/mutate",
            data=json.dumps(list(ops)).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=30) as resp:
            assert json.loads(resp.read()).get("ok") is True
        self.refresh()

    def graphql(self, query: str, variables: dict) -> dict:
        """A GraphQL request of our own (Basic auth with the fake's key), for facts the truth does not carry."""
        import base64

        auth = base64.b64encode(f"api:{self.api_key}".encode()).decode()
        req = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
            method="POST",
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=30) as resp:
            body = json.loads(resp.read())
        assert not body.get("errors"), body
        return body["data"]

    def live_boundary(self, name: str) -> int | None:
        """The first not-yet-exported step of a run that has parquet exports AND live steps, else None."""
        q = (
            "query RunParquetHistory($entity: String!, $project: String!, $runName: String!, $liveKeys: [String!]!) "
            "{ project(name: $project, entityName: $entity) { run(name: $runName) "
            "{ parquetHistory(liveKeys: $liveKeys) { parquetUrls liveData } } } }"
        )
        v = {"entity": self.entity, "project": self.project, "runName": name, "liveKeys": ["_step"]}
        ph = self.graphql(q, v)["project"]["run"]["parquetHistory"]
        if not ph["parquetUrls"] or not ph["liveData"]:
            return None
        return int(min(x["_step"] for x in ph["liveData"]))

    def truth_files(self, name: str) -> list:
        return _ndjson(self.get("/_fake/truth/files", run=name))

    def stats(self) -> dict:
        return json.loads(self.get("/_fake/stats"))


class Fakes:
    def __init__(self) -> None:
        self._fakes: dict[str, Fake] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> Fake:
        with self._lock:
            if name not in self._fakes:
                self._fakes[name] = Fake(name, FAKE_CONFIGS[name])
            return self._fakes[name]

    def stop_all(self) -> dict[str, int | None]:
        for name, f in self._fakes.items():
            try:
                FINAL_STATS[name] = f.stats()
            except Exception as e:  # noqa: BLE001
                FINAL_STATS[name] = {"error": repr(e)}
        return {name: f.stop() for name, f in self._fakes.items()}


# /_fake/stats of every fake at the end of the session: what this client version sent, printed in the summary.
FINAL_STATS: dict[str, dict] = {}


@pytest.fixture(scope="session")
def fakes():
    fs = Fakes()
    yield fs
    codes = fs.stop_all()
    bad = {k: v for k, v in codes.items() if v not in (0, None)}
    if bad:
        # The CLI contract: exit 0 on SIGTERM.
        sys.stderr.write(f"\nconformance: fake-wandb exit codes on SIGTERM: {codes}\n")


@pytest.fixture(params=["default", "edge"])
def fake(request, fakes) -> Fake:
    """The default and the edge profile (both with parquet exports)."""
    return fakes(request.param)


@pytest.fixture
def fake_default(fakes) -> Fake:
    return fakes("default")


@pytest.fixture
def fake_noexports(fakes) -> Fake:
    return fakes("noexports")


def make_api(monkeypatch, f: Fake, api_key: str | None = None):
    """wandb.Api() configured through the environment, as a user would (and as 0.26's File.download re-reads)."""
    monkeypatch.setenv("WANDB_BASE_URL", f.url)
    monkeypatch.setenv("WANDB_API_KEY", api_key or f.api_key)
    monkeypatch.setenv("WANDB_ENTITY", f.entity)
    import wandb

    return wandb.Api(timeout=20)


@pytest.fixture
def api_for(monkeypatch):
    return lambda f, api_key=None: make_api(monkeypatch, f, api_key)


def pytest_report_header(config):
    try:
        import wandb

        v = wandb.__version__
    except Exception as e:  # pragma: no cover
        v = f"(import failed: {e})"
    return [f"wandb {v} on Python {sys.version.split()[0]}; session dir {SESSION_DIR}"]


def pytest_terminal_summary(terminalreporter):
    for name, st in FINAL_STATS.items():
        if "error" in st:
            terminalreporter.write_line(f"fake-wandb {name}: stats unavailable ({st['error']})")
            continue
        ops = ", ".join(f"{k} {v}" for k, v in sorted(st.get("byOperation", {}).items()))
        terminalreporter.write_line(
            f"fake-wandb {name}: {st.get('total', '?')} requests (graphql {st.get('graphql', '?')}: {ops}; "
            f"files {st.get('files', '?')}, storage {st.get('storage', '?')}, parquet {st.get('parquet', '?')}; "
            f"statuses {st.get('byStatus', {})}; authLeaks {len(st.get('authLeaks') or [])})"
        )


def pytest_sessionfinish(session, exitstatus):
    """Remove the session dir (fake logs, parquet caches, the client's dirs) unless something failed or
    CONFORMANCE_KEEP=1; at exit, after wandb-core (which lives in it) is gone."""
    if exitstatus == 0 and os.environ.get("CONFORMANCE_KEEP") != "1":
        atexit.register(shutil.rmtree, SESSION_DIR, True)
    else:
        sys.stderr.write(f"\nconformance: fake-wandb logs and client dirs kept in {SESSION_DIR}\n")
