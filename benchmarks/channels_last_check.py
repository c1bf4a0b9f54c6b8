"""Does channels-last training compute the same gradients as the default layout on this CPU?

    python benchmarks/channels_last_check.py [--threads 1 2] [--timeout 20]

oneDNN, which runs PyTorch's CPU convolutions, has layout-specific kernels, and some of them
are wrong on some CPUs: on AVX2 machines (oneDNN 3.12 in torch 2.14.1), the weight gradient of
a channels-last 1x1 stride-2 convolution with fewer input channels than the kernel's block (8),
or a transposed one with fewer output channels, is wrong with 2+ threads, hangs, or crashes
with one (uxlfoundation/oneDNN#6035). This script runs one training step of every convolution
shape the project's networks use (plus small channel counts), in both layouts, with 1 and 2
threads, and compares the outputs and the input and weight gradients. The cases run in a child
process; a crash or hang is caught, and counted only when the case crashes again first thing
in a fresh child (a kernel that corrupts the heap often crashes a later case). It prints one
line per case that is not right: WRONG (relative error above 1e-4), CRASH (the signal), HANG. The last lines say which of the bad cases the
project's guard (``ganaug.runtime.channels_last_unsafe``) keeps in the default layout; the
project trains in channels-last only where the guard allows, so every bad case must be covered.
"""

from __future__ import annotations

import argparse
import itertools
import json
import queue
import subprocess
import sys
import threading

CIN = (1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32)
COUT = (1, 3, 8, 16)
# (op, kernel, stride, padding): the project's convolutions (3x3 s1, 4x4 s2 down and up, 7x7 s2
# stems, 1x1 s1 and s2 shortcuts) and their neighbours.
OPS = [("conv", 1, 1, 0), ("conv", 1, 2, 0), ("conv", 3, 1, 1), ("conv", 3, 2, 1),
       ("conv", 4, 2, 1), ("conv", 7, 2, 3), ("convT", 4, 2, 1), ("convT", 3, 1, 1),
       ("convT", 1, 2, 0)]


def cases(threads: list[int]) -> list[dict]:
    return [{"op": op, "k": k, "s": s, "p": p, "cin": cin, "cout": cout, "threads": t}
            for t, (op, k, s, p), cin, cout in itertools.product(threads, OPS, CIN, COUT)]


def child(start: int, threads: list[int]) -> None:
    import torch

    todo = cases(threads)
    for i in range(start, len(todo)):
        c = todo[i]
        print(json.dumps({"start": i}), flush=True)
        torch.set_num_threads(c["threads"])
        cls = torch.nn.Conv2d if c["op"] == "conv" else torch.nn.ConvTranspose2d
        extra = {"output_padding": 1} if c["op"] == "convT" and c["k"] == 1 and c["s"] == 2 else {}
        grads = []
        for layout in (torch.contiguous_format, torch.channels_last):
            torch.manual_seed(0)  # the same weights and input in both layouts
            m = cls(c["cin"], c["cout"], c["k"], c["s"], c["p"], bias=False, **extra)
            torch.manual_seed(1)
            x = torch.randn(16, c["cin"], 16, 16).contiguous(memory_format=layout)
            x.requires_grad_(True)
            m = m.to(memory_format=layout)
            out = m(x)
            out.square().mean().backward()
            grads.append([out.detach().contiguous(), x.grad.contiguous(),
                          m.weight.grad.contiguous()])
        err = max(float((b - a).abs().max() / a.abs().max().clamp_min(1e-12))
                  for a, b in zip(*grads, strict=True))
        print(json.dumps({"done": i, "err": err}), flush=True)


def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put("")  # end of output


def name(c: dict) -> str:
    return (f"{c['op']:<5} {c['k']}x{c['k']} stride {c['s']}, {c['cin']:>2} -> {c['cout']:>2} "
            f"channels, {c['threads']} thread{'s' * (c['threads'] > 1)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--timeout", type=float, default=20.0, help="seconds before a case is a HANG")
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        child(args.child, args.threads)
        return
    import torch

    from ganaug.runtime import channels_last_unsafe

    todo = cases(args.threads)
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "  # noqa: T201
          f"{len(todo)} cases", flush=True)
    bad: list[tuple[dict, str]] = []
    nxt = 0
    while nxt < len(todo):
        cmd = [sys.executable, __file__, "--child", str(nxt), "--threads", *map(str, args.threads)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        lines: queue.Queue[str] = queue.Queue()  # a thread reads, so no line waits in a buffer
        threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
        current, verdict = nxt, None
        while True:
            try:
                line = lines.get(timeout=args.timeout)
            except queue.Empty:
                proc.kill()
                verdict = "HANG"
                break
            if not line:
                code = proc.wait()
                verdict = None if code == 0 else f"CRASH (signal {-code})" if code < 0 else f"exit {code}"
                break
            msg = json.loads(line)
            if "start" in msg:
                current = msg["start"]
            elif msg["err"] > 1e-4 and todo[msg["done"]] not in [c for c, _ in bad]:
                bad.append((todo[msg["done"]], f"WRONG (relative error {msg['err']:.1e})"))
                print(f"  {name(todo[msg['done']])}: {bad[-1][1]}", flush=True)  # noqa: T201
        proc.wait()
        if verdict is None:
            break
        if current != nxt:  # not the fresh child's first case: an earlier case may have
            nxt = current  # corrupted the heap; run this one again first in a fresh child
            continue
        bad.append((todo[current], verdict))
        print(f"  {name(todo[current])}: {verdict}", flush=True)  # noqa: T201
        nxt = current + 1
    covered = [c for c, _ in bad
               if channels_last_unsafe(c["op"], c["k"], c["s"], c["cin"], c["cout"])]
    print(f"{len(bad)} of {len(todo)} cases not right in channels-last on this CPU; the project's "  # noqa: T201
          f"guard keeps {len(covered)} of them in the default layout")
    if len(covered) < len(bad):
        print("NOT COVERED:")  # noqa: T201
        for c, verdict in bad:
            if c not in covered:
                print(f"  {name(c)}: {verdict}")  # noqa: T201
        sys.exit(1)


if __name__ == "__main__":
    main()
