#!/usr/bin/env bash
# Build the Python environments of the benchmark peers (idempotent; packages from PyPI only, every version pinned).
#
#   .bench-venv/original  dr-wandb 0.1.2 (the original tool) on Python >= 3.12   bench/peers/requirements-original.txt
#   .bench-venv/sdk       wandb 0.31.0, only if .conformance-venv/new is absent  conformance/requirements-new.txt
#
# The benchmark itself (npm run bench) never installs anything and sends no traffic beyond loopback; it reports a
# peer whose venv is missing as "not available". BENCH_ORIGINAL_PYTHON picks the interpreter for the original
# (default: the first python3.12/python3.13 found, including pyenv's).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venvs="$root/.bench-venv"

pick_python() {
  local c
  for c in ${BENCH_ORIGINAL_PYTHON:-} python3.12 python3.13 \
    /root/.pyenv/versions/3.12.*/bin/python3.12 /root/.pyenv/versions/3.13.*/bin/python3.13; do
    if command -v "$c" >/dev/null 2>&1 &&
      "$c" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then
      command -v "$c"
      return 0
    fi
  done
  echo "bench/peers/setup.sh: dr-wandb 0.1.2 requires Python >= 3.12 and none was found (set BENCH_ORIGINAL_PYTHON)" >&2
  return 1
}

build() { # name python requirements import-check
  local name="$1" py="$2" req="$3" check="$4"
  local dir="$venvs/$name"
  local want
  want="$( (sha256sum "$req" | cut -d' ' -f1; "$py" -c 'import sys; print(sys.executable, sys.version.split()[0])') | tr '\n' ' ')"
  if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$want" ] && "$dir/bin/python" -c "$check" >/dev/null 2>&1; then
    echo "bench: venv $name up to date"
    return 0
  fi
  echo "bench: building venv $name with $py"
  rm -rf "$dir"
  mkdir -p "$venvs"
  "$py" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --only-binary=:all: -r "$req"
  "$dir/bin/python" -m pip check >/dev/null
  echo "$want" >"$dir/.stamp"
  echo "bench: venv $name ready"
}

build original "$(pick_python)" "$here/requirements-original.txt" 'import dr_wandb, wandb'

if [ -x "$root/.conformance-venv/new/bin/python" ] &&
  "$root/.conformance-venv/new/bin/python" -c 'import wandb' >/dev/null 2>&1; then
  echo "bench: sdk peer uses .conformance-venv/new ($("$root/.conformance-venv/new/bin/python" -c 'import wandb; print("wandb", wandb.__version__)'))"
else
  py=""
  for c in python3.13 python3.12 python3.11 python3.10 python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
      py="$(command -v "$c")"
      break
    fi
  done
  [ -n "$py" ] || { echo "bench/peers/setup.sh: no Python >= 3.10 for the sdk peer" >&2; exit 1; }
  build sdk "$py" "$root/conformance/requirements-new.txt" 'import wandb'
fi
