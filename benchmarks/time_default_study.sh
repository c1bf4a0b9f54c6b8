#!/usr/bin/env bash
# Times the README's first command on a fresh clone of this repo: the install, the default study's
# `dvc repro`, and a second `dvc repro` (which must run nothing).
#   bash benchmarks/time_default_study.sh [DEST]
set -euo pipefail
src=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
dest=${1:-$(mktemp -d)/ganaug}
git clone -q "$src" "$dest"
cd "$dest"
echo "commit $(git rev-parse --short HEAD), $(nproc) cores, in $dest"
SECONDS=0
python3 -m venv .venv && . .venv/bin/activate && pip install -q -e . >/dev/null
echo "install: ${SECONDS} s"
SECONDS=0
dvc repro >repro.log 2>&1
echo "dvc repro: ${SECONDS} s, $(grep -c "Running stage" repro.log) stages"
SECONDS=0
dvc repro >repro2.log 2>&1
echo "second dvc repro: ${SECONDS} s, $(grep -c "Running stage" repro2.log || true) stages"
