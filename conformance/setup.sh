#!/usr/bin/env bash
# Build the Python environments of the conformance suite (idempotent).
#
#   .conformance-venv/new  wandb 0.31.0 (wandb-core, the Go sidecar)   conformance/requirements-new.txt
#   .conformance-venv/old  wandb 0.26.1 (pure Python, requests)        conformance/requirements-old.txt
#
# Packages come from PyPI only, every version pinned. A venv is rebuilt from scratch when its requirements
# file or the Python interpreter changed; otherwise this script does nothing. Usage: setup.sh [new|old ...]
# CONFORMANCE_PYTHON picks the interpreter (default: the first of python3.11 (the pins were frozen on 3.11),
# python3.12, python3.13, python3.10, python3 that is >= 3.10 and has venv/ensurepip).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venvs="$root/.conformance-venv"
variants=("$@")
[ ${#variants[@]} -eq 0 ] && variants=(new old)

pick_python() {
  local c
  for c in ${CONFORMANCE_PYTHON:-} python3.11 python3.12 python3.13 python3.10 python3; do
    # (a pyenv shim of an inactive version fails here and is skipped); print the real executable
    if command -v "$c" >/dev/null 2>&1 &&
      "$c" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 10) else 1)' >/dev/null 2>&1; then
      "$c" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
  echo "conformance/setup.sh: no Python >= 3.10 with venv/ensurepip found (set CONFORMANCE_PYTHON)" >&2
  return 1
}

py="$(pick_python)"
pyver="$("$py" -c 'import sys; print(sys.version.split()[0])')"

for v in "${variants[@]}"; do
  req="$here/requirements-$v.txt"
  [ -f "$req" ] || { echo "conformance/setup.sh: unknown variant '$v' (no $req)" >&2; exit 2; }
  dir="$venvs/$v"
  want="$( (sha256sum "$req" | cut -d' ' -f1; echo "$py $pyver") | tr '\n' ' ')"
  if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$want" ] &&
    "$dir/bin/python" -c 'import wandb, pytest' >/dev/null 2>&1; then
    echo "conformance: venv $v up to date ($("$dir/bin/python" -c 'import wandb; print("wandb", wandb.__version__)'))"
    continue
  fi
  echo "conformance: building venv $v with $py ($pyver) from $(basename "$req")"
  rm -rf "$dir"
  mkdir -p "$venvs"
  "$py" -m venv "$dir"
  # Wheels only: nothing here needs compiling, and a source build would hide a platform change.
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --only-binary=:all: -r "$req"
  "$dir/bin/python" -m pip check >/dev/null
  echo "$want" >"$dir/.stamp"
  echo "conformance: venv $v ready ($("$dir/bin/python" -c 'import wandb; print("wandb", wandb.__version__)'))"
done
