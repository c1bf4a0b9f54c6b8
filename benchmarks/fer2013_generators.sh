#!/usr/bin/env bash
# The generator comparison of issue 9 on low-data FER2013 (100 real images per class), 2 CPU cores:
# the same study (benchmarks/fer2013_cpu.yaml) with each GAN family, given the same GAN training
# time (about 15 minutes each on 2 cores). The first three run a small grid (random and confidence
# at 1x, synthetic-only at 1x, 3 seeds); the last (stargan) the whole benchmark grid with the
# real-only learning curve. Then prints the table (benchmarks/generator_table.py).
#   bash benchmarks/fer2013_generators.sh /tmp/fer-generators
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:?usage: fer2013_generators.sh DEST}
FER=${FER:-../shared/data/fer2013.npz}
mkdir -p "$DEST"
SMALL=(--set 'study.strategies=[random, confidence]' --set 'study.ratios=[1]'
       --set study.synthetic_only_ratio=1 --set 'study.real_sizes=[]')
run() {
  local name=$1; shift
  [ -e "$DEST/$name/timing.json" ] && { echo "$name: done already"; return; }
  rm -rf "${DEST:?}/$name"
  python benchmarks/run_study.py benchmarks/fer2013_cpu.yaml "$DEST/$name" \
    --link "data/raw/fer2013.npz=$FER" "$@" > "$DEST/$name.log" 2>&1
  echo "$name: $(cat "$DEST/$name/timing.json")"
}
run dcgan "${SMALL[@]}" --set gan.arch=dcgan --set gan.steps=1800 --set gan.n_critic=1 \
  --set gan.lr_g=0.0002 --set gan.lr_d=0.0002 --set gan.beta1=0.5 --set gan.beta2=0.999 \
  --set gan.checkpoint_every=300
run wgan_gp "${SMALL[@]}" --set gan.arch=wgan_gp --set gan.steps=650
# n_critic 5: with 1 or 2 the discriminator stalled on this data (benchmarks/README.md).
run sngan "${SMALL[@]}" --set gan.arch=sngan --set gan.steps=400 --set gan.n_critic=5 \
  --set gan.lr_g=0.0002 --set gan.lr_d=0.0002 --set gan.beta1=0.0 --set gan.beta2=0.9 \
  --set 'gan.diffaugment=[color, translation, cutout]' --set gan.lecam_weight=0.1 \
  --set gan.ema_decay=0.999 --set gan.checkpoint_every=100
run stargan --set gan.arch=stargan --set gan.steps=1000 --set gan.n_critic=3 \
  --set gan.res_blocks=2 --set gan.lr_g=0.0001 --set gan.lr_d=0.0001 --set gan.beta1=0.5 \
  --set gan.beta2=0.999 --set gan.ema_decay=0.999 --set gan.checkpoint_every=250
python benchmarks/generator_table.py "$DEST"/dcgan "$DEST"/wgan_gp "$DEST"/sngan "$DEST"/stargan
