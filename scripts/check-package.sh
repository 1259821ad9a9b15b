#!/usr/bin/env bash
# Installs dr-wandb as a user would (npm pack, then npm install -g from the tarball into a throwaway prefix, without
# dev dependencies) and runs the installed commands against the installed fake W&B server.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
fake_pid=""
cleanup() {
  if [ -n "$fake_pid" ]; then kill "$fake_pid" 2>/dev/null || true; wait "$fake_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
tarball=$(npm pack --silent --pack-destination "$work" | tail -n 1)
npm install -g --silent --no-audit --no-fund --prefix "$work/prefix" "$work/$tarball" >/dev/null
bin="$work/prefix/bin"
for c in dr-wandb wandb-download fake-wandb; do [ -x "$bin/$c" ] || { echo "missing command $c"; exit 1; }; done
if [ -e "$work/prefix/lib/node_modules/dr-wandb/node_modules/tsx" ]; then echo "a dev dependency was installed"; exit 1; fi
"$bin/wandb-download" --help | grep -q "OUTPUT_DIR"
"$bin/fake-wandb" --runs 4 --steps 50 > "$work/fake.json" &
fake_pid=$!
for _ in $(seq 1 50); do [ -s "$work/fake.json" ] && break; sleep 0.2; done
url=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).url)' "$work/fake.json")
key=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).apiKey)' "$work/fake.json")
WANDB_BASE_URL="$url" WANDB_API_KEY="$key" "$bin/wandb-download" fake-entity fake-project "$work/out" -q --format pkl
python3 -c "import pickle,sys; r=pickle.load(open(sys.argv[1],'rb')); h=pickle.load(open(sys.argv[2],'rb')); assert len(r)==4 and len(h)==4 and len(h[0])==50" \
  "$work/out/fake-entity_fake-project_runs.pkl" "$work/out/fake-entity_fake-project_histories.pkl"
WANDB_BASE_URL="$url" WANDB_API_KEY="$key" "$bin/dr-wandb" sync fake-entity/fake-project --output-dir "$work/archive" -q
"$bin/dr-wandb" query --output-dir "$work/archive" --format csv "SELECT count(*) AS n FROM history" | grep -qx "200"
echo "package check: 1 passed, 0 failed"
