#!/usr/bin/env bash
# The replicated default study against the 3-seed default it replaced, side by side on this
# machine: fresh clones of BASE (default 25d2647, the last 3-seed default: one real subset, one
# GAN, 3 classifier seeds) and of HEAD, each run with `python -m ganaug.parallel -j JOBS`,
# nothing cached. Prints both wall times, the ratio (issue 22's goal: at most 1.5x), and the
# replicated study's decided share on the source test set and its primary verdict.
#   bash benchmarks/time_replicates.sh [DEST] [JOBS] [BASE]
# Run it in the project's environment; each clone uses its own src/ (PYTHONPATH).
set -euo pipefail
src=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
dest=${1:-$(mktemp -d)}
jobs=${2:-2}
base=${3:-25d2647}
python -c "import ganaug, distributed, dvc" || { echo "activate the project's environment first"; exit 1; }
git clone -q "$src" "$dest/base" && git -C "$dest/base" checkout -q "$base"
git clone -q "$src" "$dest/replicated"
echo "base $(git -C "$dest/base" rev-parse --short HEAD), replicated $(git -C "$dest/replicated" rev-parse --short HEAD), $(nproc) cores, in $dest"
load() { echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"; }
declare -A took
for name in base replicated; do
  cd "$dest/$name"
  echo "$name: before: $(load)"
  SECONDS=0
  PYTHONPATH=$PWD/src python -m ganaug.parallel -j "$jobs" >parallel.log 2>&1
  took[$name]=$SECONDS
  echo "$name: python -m ganaug.parallel -j $jobs: ${took[$name]} s; after: $(load)"
  grep " ran on workers" parallel.log | sed 's/^.*INFO /  /' || true
done
echo "replicated / base: $(python -c "print(round(${took[replicated]} / max(${took[base]}, 1), 2))")x (goal: at most 1.5x)"
cd "$dest/replicated"
python - <<'PY'
import json

h = json.load(open("metrics/headline.json"))
s = json.load(open("metrics/summary.json"))
src = s["source"]
c = s["verdicts"]["counts"][src]
n = sum(v["comparisons"] for v in c.values())
decided = sum(v["helps"] + v["hurts"] + v["equivalent"] for v in c.values())
p = h.get("primary") or {}
print(f"replicates {h.get('replicates')} varying {s['vary']['varied']}; source test set {src}: "
      f"{decided} of {n} comparisons decided ({decided / max(n, 1):.0%}; goal: at least 75%); "
      f"primary {p.get('comparison')}: {p.get('verdict')}, gain {p.get('gain')} "
      f"[{p.get('ci_low')}, {p.get('ci_high')}], P(improved) {p.get('p_improved')}")
PY
