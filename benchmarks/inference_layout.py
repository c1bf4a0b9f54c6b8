"""Inference in the default memory layout vs channels-last: images/s of each network the
generate and score stages run, and of the two stages' own functions, on this machine.

    python benchmarks/inference_layout.py [--images 3000] [--size 48] [--inception]

The networks are the FER2013 preset's (vgg_small width 32 scorer, WGAN-GP width 32 and z 128),
plus small_cnn and the DCGAN/SNGAN families, with random weights (the cost does not depend on
what they learnt). Each row times the same work twice in one process, default layout first, then
after :func:`ganaug.runtime.inference_layout` (what the checkpoint loaders now do on the CPU and
CUDA), best of 3 runs each, and prints the largest difference between the two outputs. The last
rows time ``make_pool`` and ``run_score`` (the generate and score stages' work) end to end.
``--inception`` adds pytorch-fid's FID InceptionV3 (He-initialised random weights, 299x299
after resizing; about 5-10 images/s on 2 CPU cores: slow).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganaug.runtime import Accel, inference_layout


def best_rate(fn: Callable[[], object], n: int, reps: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(reps):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return n / best, out


def max_diff(a: object, b: object) -> float:
    if isinstance(a, tuple | list):
        return max(max_diff(x, y) for x, y in zip(a, b, strict=True))
    return float((torch.as_tensor(np.asarray(a)).double() - torch.as_tensor(np.asarray(b)).double())
                 .abs().max())


def compare(name: str, models: list[nn.Module], fn: Callable[[], object], n: int) -> None:
    for m in models:
        Accel.release(m)
    default, out0 = best_rate(fn, n)
    for m in models:
        inference_layout(m, "cpu")
    cl, out1 = best_rate(fn, n)
    for m in models:
        Accel.release(m)
    print(f"| {name} | {default:,.0f} | {cl:,.0f} | {cl / default:.2f}x | "  # noqa: T201
          f"{max_diff(out0, out1):.1e} |", flush=True)


def random_inception() -> nn.Module:
    """pytorch-fid's FID InceptionV3 without its download: He-initialised weights."""
    import torchvision
    from pytorch_fid import inception as pf

    real_load = torchvision.models.Inception3.load_state_dict
    pf_load = pf.load_state_dict_from_url
    pf.load_state_dict_from_url = lambda *a, **k: {}
    torchvision.models.Inception3.load_state_dict = lambda self, *a, **k: None
    try:
        net = pf.InceptionV3([3], resize_input=True, normalize_input=True).eval()
    finally:
        pf.load_state_dict_from_url = pf_load
        torchvision.models.Inception3.load_state_dict = real_load
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in net.modules():  # He init: activations O(1), no denormals (which are slow)
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g)
                               * (2 / m.weight[0].numel()) ** 0.5)
    return net


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=3000)
    p.add_argument("--size", type=int, default=48)
    p.add_argument("--inception", action="store_true")
    args = p.parse_args()
    from ganaug.configs.score import ScoreConfig
    from ganaug.data import Prepared
    from ganaug.gan import family_for, gan_config
    from ganaug.gan.family import LoadedGan
    from ganaug.inference import batched
    from ganaug.metrics.inception import inception_features
    from ganaug.models import CLASSIFIERS
    from ganaug.synthetic import scoring
    from ganaug.synthetic.pool import load_pool, load_sources, make_pool

    torch.manual_seed(0)
    k, n, size = 7, args.images, args.size
    cpu = torch.device("cpu")
    x = np.random.default_rng(0).integers(0, 256, (n, 1, size, size), dtype=np.uint8)
    y = np.arange(n) % k
    print(f"{n} images {size}x{size}, {torch.get_num_threads()} threads, torch "  # noqa: T201
          f"{torch.__version__}\n")
    print("| network, work | default layout (images/s) | channels-last | ratio | max output "  # noqa: T201
          "difference |\n|---|---|---|---|---|")
    with torch.no_grad():
        for arch, width in (("small_cnn", 32), ("vgg_small", 32)):
            net = CLASSIFIERS.get(arch)(in_channels=1, num_classes=k, image_size=size,
                                        width=width).eval()
            compare(f"scorer {arch} w{width}: features", [net],
                    lambda net=net: batched(net.features, x, 1024, cpu), n)
        for arch in ("wgan_gp", "dcgan", "sngan"):
            family = family_for(gan_config({"arch": arch, "width": 32, arch: {"z_dim": 128}}), k,
                                (1, size, size))
            nets = family.build().eval()
            disc = nets.discriminator

            def scores(disc=disc, family=family):
                return batched(lambda xb, yb: torch.stack(
                    [family.disc_scores(disc, xb, yb)[s].float() for s in family.score_names], 1),
                    x, 1024, cpu, y)

            compare(f"{arch} w32 discriminator: realism scores", [disc], scores, n)
            z = torch.randn(n, 128, generator=torch.Generator().manual_seed(0))
            labels = torch.as_tensor(y)

            def images(gen=nets.generator, z=z, labels=labels):
                return torch.cat([gen(z[i: i + 512], labels[i: i + 512])
                                  for i in range(0, n, 512)])

            compare(f"{arch} w32 generator: images", [nets.generator], images, n)
        if args.inception:
            net = random_inception()
            m = min(n, 200)
            compare("FID InceptionV3 (299x299): features", [net],
                    lambda: inception_features(x[:m], net, 50, cpu), m)

    # The stages' own work end to end: make_pool (generate) and run_score (score).
    data = Prepared(splits={s: (x[:700], y[:700]) for s in ("train", "val", "test")},
                    classes=[str(c) for c in range(k)], meta={})
    family = family_for(gan_config({"arch": "wgan_gp", "width": 32, "wgan_gp": {"z_dim": 128}}), k,
                        (1, size, size))
    nets = family.build().eval()
    gan = LoadedGan(family, nets.generator, nets.discriminator, {})
    scorer = CLASSIFIERS.get("vgg_small")(in_channels=1, num_classes=k, image_size=size,
                                          width=32).eval()
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(100))

        def generate():
            out = Path(tmp) / f"pool{next(counter)}"
            make_pool(gan, data, n // k, 1024, 0, cpu, out, {})
            return load_pool(out)[0][:]

        compare("make_pool (the generate stage), WGAN-GP", [nets.generator], generate, n // k * k)
        pool = Path(tmp) / "pool0"
        images, labels, _ = load_pool(pool)

        def score():
            result = scoring.run_score(images, labels, load_sources(pool, len(labels)), scorer,
                                       gan, data, ScoreConfig(batch_size=1024), cpu)
            return result.scores.table[["confidence", *family.score_names]].to_numpy()

        compare("run_score (the score stage), vgg_small + WGAN-GP", [scorer, nets.discriminator],
                score, len(labels))


if __name__ == "__main__":
    main()
