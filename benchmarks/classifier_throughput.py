"""Training throughput of the classifiers (images/s), on synthetic inputs.

One training step = forward, cross-entropy, backward, AdamW step, as in ``ganaug.training``.
Defaults: 48x48 greyscale, 7 classes (FER2013), width 32, batches of 64, CPU, 2 threads.

    python benchmarks/classifier_throughput.py
    python benchmarks/classifier_throughput.py --archs resnet18 vgg16 --width 64 --device cuda
"""

from __future__ import annotations

import argparse
import time

import torch

from ganaug.models import CLASSIFIERS

DEFAULT_ARCHS = ("small_cnn", "vgg_small", "resnet18_small")


def measure(arch: str, args: argparse.Namespace, device: torch.device) -> tuple[float, int]:
    """Training images per second of ``arch`` and its parameter count."""
    torch.manual_seed(0)
    model = CLASSIFIERS.get(arch)(in_channels=args.channels, num_classes=args.classes,
                                  image_size=args.size, width=args.width).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.rand(args.batch, args.channels, args.size, args.size, device=device) * 2 - 1
    y = torch.randint(0, args.classes, (args.batch,), device=device)

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.batches):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return args.batches * args.batch / seconds, sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", nargs="+", default=list(DEFAULT_ARCHS), choices=list(CLASSIFIERS))
    p.add_argument("--size", type=int, default=48)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--classes", type=int, default=7)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--batches", type=int, default=5, help="timed batches")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"# {args.channels}x{args.size}x{args.size}, {args.classes} classes, width {args.width}, "
          f"batch {args.batch}, {args.batches} timed batches, device {device}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{'arch':<16}{'params':>12}{'train img/s':>14}")
    for arch in args.archs:
        rate, params = measure(arch, args, device)
        print(f"{arch:<16}{params:>12,}{rate:>14.1f}")


if __name__ == "__main__":
    main()
