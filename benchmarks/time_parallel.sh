#!/usr/bin/env bash
# The default study (params.yaml) from two fresh clones of this repo: sequential `dvc repro` in
# one, `python -m ganaug.parallel -j JOBS` in the other. Prints both wall times, the machine's
# load around each, and whether the two runs' dvc.lock entries and metrics files agree.
#   bash benchmarks/time_parallel.sh [DEST] [JOBS]
# Run it in the project's environment (the README's `pip install -e .`): `python` there runs
# the stages. Each clone uses its own src/ (PYTHONPATH), so no install is timed.
set -euo pipefail
src=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
dest=${1:-$(mktemp -d)}
jobs=${2:-2}
python -c "import ganaug, distributed, dvc" || { echo "activate the project's environment first"; exit 1; }
for name in sequential parallel; do git clone -q "$src" "$dest/$name"; done
echo "commit $(git -C "$dest/parallel" rev-parse --short HEAD), $(nproc) cores, in $dest"
load() { echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"; }

cd "$dest/sequential"
echo "before: $(load)"
SECONDS=0
PYTHONPATH=$PWD/src python -m dvc repro >repro.log 2>&1
seq=$SECONDS
echo "sequential dvc repro: ${seq} s, $(grep -c "Running stage" repro.log) stages; after: $(load)"

cd "$dest/parallel"
SECONDS=0
PYTHONPATH=$PWD/src python -m ganaug.parallel -j "$jobs" >parallel.log 2>&1
par=$SECONDS
echo "python -m ganaug.parallel -j $jobs: ${par} s; after: $(load)"
echo "dvc repro / parallel: $(python -c "print(round($seq / max($par, 1), 2))")x (goal: at most 2x)"
grep " ran on workers" parallel.log | sed 's/^.*INFO /  /'

cd "$dest"
python - <<'EOF'
"""Do the two runs agree? dvc.lock parsed (the order of entries differs), metrics byte for byte."""
from pathlib import Path

import yaml

seq, par = Path("sequential"), Path("parallel")
lock_seq, lock_par = (yaml.safe_load((p / "dvc.lock").read_text())["stages"] for p in (seq, par))
differ = sorted(k for k in lock_seq.keys() | lock_par.keys() if lock_seq.get(k) != lock_par.get(k))
print(f"dvc.lock: {len(lock_par)} entries, {len(differ)} differ {differ[:5]}")
metrics = sorted(p.relative_to(seq) for p in (seq / "metrics").rglob("*.json"))
changed = [str(p) for p in metrics if (seq / p).read_bytes() != (par / p).read_bytes()]
print(f"metrics: {len(metrics)} files, {len(changed)} differ {changed[:5]}")
EOF
