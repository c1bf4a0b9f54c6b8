#!/usr/bin/env bash
# The generator comparison of issue 9 on low-data FER2013 (100 real images per class), 2 CPU cores:
# the same study (benchmarks/fer2013_cpu.yaml) with each GAN family, one after another. GAN steps:
# sngan 300 took 15 minutes and wgan_gp 1050 19 on 2 quiet cores, stargan 600 about 21 at
# one thread on shared cores; dcgan's 1150 took 6 (its budget came from a 12-step timing at one
# thread that per-step overhead inflated; generator_table.py prints each GAN's minutes). Each study:
# random and combined selection at 1x, synthetic-only at 1x, 2 seeds, the real-only learning
# curve at 25/50/200 per class, classifiers for 20 epochs. The studies share one DVC cache
# (DEST/cache), so the scorer and the real-only runs train once and later studies restore them
# from the run-cache. Then prints the table (benchmarks/generator_table.py).
#   bash benchmarks/fer2013_generators.sh DEST [FAMILY ...]     (default: all four)
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:?usage: fer2013_generators.sh DEST [FAMILY ...]}
shift
[ $# -gt 0 ] || set -- dcgan wgan_gp sngan stargan
FAMILIES=("$@")
FER=${FER:-../shared/data/fer2013.npz}
mkdir -p "$DEST"
GRID=(--set 'study.strategies=[random, combined]' --set 'study.ratios=[1]'
      --set 'study.seeds=[0, 1]' --set study.synthetic_only_ratio=1
      --set 'study.real_sizes=[25, 50, 200]' --set classifier.epochs=20 --set classifier.patience=20)
declare -A GAN
# fer2013_cpu.yaml's GAN is wgan_gp: the others drop its section (gan.wgan_gp) and take their own
# knobs' defaults (z_dim 64, as that file's).
GAN[dcgan]="--set gan.arch=dcgan --set ~gan.wgan_gp --set gan.steps=1150 --set gan.n_critic=1 --set gan.lr_g=0.0002
  --set gan.lr_d=0.0002 --set gan.beta1=0.5 --set gan.beta2=0.999 --set gan.checkpoint_every=230"
GAN[wgan_gp]="--set gan.arch=wgan_gp --set gan.steps=1050 --set gan.checkpoint_every=210"
# n_critic 5: with 1 or 2 the discriminator stalled on this data (benchmarks/README.md).
GAN[sngan]="--set gan.arch=sngan --set ~gan.wgan_gp --set gan.steps=300 --set gan.n_critic=5 --set gan.lr_g=0.0002
  --set gan.lr_d=0.0002 --set gan.beta1=0.0 --set gan.beta2=0.9
  --set gan.diffaugment=[color,translation,cutout] --set gan.lecam_weight=0.1
  --set gan.ema_decay=0.999 --set gan.checkpoint_every=100"
GAN[stargan]="--set gan.arch=stargan --set ~gan.wgan_gp --set gan.steps=600 --set gan.n_critic=3
  --set gan.stargan.res_blocks=2
  --set gan.lr_g=0.0001 --set gan.lr_d=0.0001 --set gan.beta1=0.5 --set gan.beta2=0.999
  --set gan.ema_decay=0.999 --set gan.checkpoint_every=150"
done_studies=()
for name in "${FAMILIES[@]}"; do
  [ -n "${GAN[$name]:-}" ] || { echo "unknown family $name (dcgan wgan_gp sngan stargan)"; exit 2; }
  if [ -e "$DEST/$name/timing.json" ]; then
    echo "$name: done already"
  else
    rm -rf "${DEST:?}/$name"
    # shellcheck disable=SC2086  # GAN[...] holds several words on purpose
    python benchmarks/run_study.py benchmarks/fer2013_cpu.yaml "$DEST/$name" --cache "$DEST/cache" \
      --link "data/raw/fer2013.npz=$FER" "${GRID[@]}" ${GAN[$name]} > "$DEST/$name.log" 2>&1
    echo "$name: $(cat "$DEST/$name/timing.json")"
  fi
  done_studies+=("$DEST/$name")
done
python benchmarks/generator_table.py "${done_studies[@]}"
