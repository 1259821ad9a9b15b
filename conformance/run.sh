#!/usr/bin/env bash
# Conformance: the official wandb Python client, in each pinned version, reads fake-wandb and must see exactly
# the fake's truth. Builds the venvs (setup.sh), runs pytest once per version, prints each summary line and exits
# non-zero if anything failed. `npm run conformance` calls this. Needs `npm ci` (tsx) and PyPI for the first setup.
#
#   conformance/run.sh              both versions (new = wandb 0.31.0 via wandb-core, old = wandb 0.26.1)
#   conformance/run.sh new -k scan  one version, extra pytest arguments after it
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

variants=(new old)
if [ $# -gt 0 ] && [ -f "$here/requirements-$1.txt" ]; then
  variants=("$1")
  shift
fi

if [ ! -x node_modules/.bin/tsx ]; then
  echo "conformance: node_modules/.bin/tsx is missing: run 'npm ci' first" >&2
  exit 2
fi

bash "$here/setup.sh" "${variants[@]}" || {
  echo "conformance: setup.sh failed" >&2
  exit 2
}

logdir="$(mktemp -d "${TMPDIR:-/tmp}/drwb-conformance.XXXXXX")"
status=0
total_passed=0
total_failed=0
summaries=()
for v in "${variants[@]}"; do
  py="$root/.conformance-venv/$v/bin/python"
  ver="$("$py" -c 'import wandb; print(wandb.__version__)')"
  echo "== conformance: wandb $ver ($v) =="
  log="$logdir/pytest-$v.log"
  # A hard stop far above the ~3 minute budget, so a hung client cannot eat CI's time.
  timeout --signal=TERM --kill-after=30 900 \
    "$py" -m pytest "$here" -q -rfEs -p no:cacheprovider --color=no "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  line="$(grep -E '^(=+ )?[0-9]+ (passed|failed|errors?|skipped).* in [0-9.]+s|no tests ran' "$log" | tail -n 1 | sed -E 's/^=+ //; s/ =+$//')"
  [ -n "$line" ] || line="no pytest summary (exit $rc)"
  summaries+=("wandb $ver ($v): $line")
  p="$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' || true)"
  f="$(grep -oE '[0-9]+ (failed|errors?)' <<<"$line" | awk '{s += $1} END {print s + 0}')"
  total_passed=$((total_passed + ${p:-0}))
  total_failed=$((total_failed + ${f:-0}))
  if [ "$rc" -ne 0 ]; then
    status=1
    [ "${f:-0}" -gt 0 ] || total_failed=$((total_failed + 1)) # a crash or timeout counts as a failure
  fi
done

echo
echo "== conformance summary =="
for s in "${summaries[@]}"; do echo "$s"; done
echo "conformance: ${total_passed} passed, ${total_failed} failed"
rm -rf "$logdir"
exit "$status"
