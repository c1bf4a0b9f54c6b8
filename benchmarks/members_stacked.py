"""How much faster a run's classifier members would train stacked into one model than one after
another: the lever issue 22 names for the default study's wall time (``classifier.members``).

    python benchmarks/members_stacked.py [--members 4] [--steps 200] [--threads 1]

For each classifier setting (the default's small_cnn on 8x8 digits, the FER presets' vgg_small on
48x48 faces) it times training steps of ``members`` models: one after another (what
``stages/train.py`` does today), and all at once with ``torch.func`` (``stack_module_state`` +
``vmap`` of the per-member gradient over stacked parameters and each member's own batch; one
Adam over the stacked tensors is the members' own Adams, since Adam works element by element).
Random data; the same batch size and steps for both. Prints images/s per member-step and the
ratio. Nothing of the project's training loop changes; this measures the lever only.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap

from ganaug.models.classifiers import CLASSIFIERS

SETTINGS = [("small_cnn", 8, 1, 10, 32), ("vgg_small", 48, 1, 7, 16)]


def sequential(models, xs, ys, steps: int) -> float:
    opts = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in models]
    loss = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for m, opt, x, y in zip(models, opts, xs, ys, strict=True):
        m.train()
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss(m(x), y).backward()
            opt.step()
    return time.perf_counter() - start


def stacked(models, xs, ys, steps: int) -> float:
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    base.train()
    leaves = list(params.values())
    opt = torch.optim.Adam(leaves, lr=1e-3)
    x, y = torch.stack(xs), torch.stack(ys)

    def member_loss(p, b, xb, yb):
        return nn.functional.cross_entropy(functional_call(base, (p, b), (xb,)), yb)

    step_grad = vmap(grad(member_loss), randomness="different")
    start = time.perf_counter()
    for _ in range(steps):
        grads = step_grad(params, buffers, x, y)
        for name, leaf in params.items():
            leaf.grad = grads[name]
        opt.step()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"{args.members} members, {args.steps} steps of batch {args.batch}, "
          f"{args.threads} thread(s), torch {torch.__version__}")
    for arch, size, channels, classes, width in SETTINGS:
        steps = args.steps if size <= 8 else max(args.steps // 10, 10)
        models = [CLASSIFIERS.get(arch)(in_channels=channels, num_classes=classes,
                                        image_size=size, width=width)
                  for _ in range(args.members)]
        xs = [torch.randn(args.batch, channels, size, size) for _ in models]
        ys = [torch.randint(0, classes, (args.batch,)) for _ in models]
        sequential([copy.deepcopy(m) for m in models], xs, ys, 3)  # warm-up
        stacked([copy.deepcopy(m) for m in models], xs, ys, 3)
        t_seq = sequential([copy.deepcopy(m) for m in models], xs, ys, steps)
        t_stk = stacked([copy.deepcopy(m) for m in models], xs, ys, steps)
        images = args.members * steps * args.batch
        print(f"{arch} {size}x{size} width {width}: one after another {images / t_seq:,.0f} "
              f"images/s, stacked {images / t_stk:,.0f} images/s: {t_seq / t_stk:.2f}x")


if __name__ == "__main__":
    main()
