"""Device choice, determinism and logging: the few things every stage sets up the same way."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import TYPE_CHECKING, Any

from ganaug.errors import EnvironmentProblem, ParamsError

if TYPE_CHECKING:  # torch is imported inside the functions: stages without models skip its import
    import torch
    from torch import nn

log = logging.getLogger(__name__)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` are
    taken as asked, when this machine has them.

    The ``GANAUG_DEVICE`` environment variable overrides the params value (handy for forcing the
    CPU on a GPU machine without changing params, which would rerun stages). A name that is not a
    device is a :class:`ParamsError`; a device this machine lacks is an
    :class:`EnvironmentProblem` that says so.
    """
    import torch

    from ganaug.params import check_device

    env = os.environ.get("GANAUG_DEVICE")
    where = "GANAUG_DEVICE" if env is not None else "params.yaml: device"
    name = env if env is not None else name
    try:
        check_device(name)
    except ValueError as exc:
        raise ParamsError(f"{where}: {exc}") from None
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise EnvironmentProblem(f"{where}: {name!r} asked for, but CUDA is not available "
                                     f"here; use auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise EnvironmentProblem(f"{where}: {name!r} asked for, but this machine has "
                                     f"{torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not _mps_available():
        raise EnvironmentProblem(f"{where}: 'mps' asked for, but Apple's MPS is not available "
                                 f"here; use auto or cpu")
    return device


_thread_limits: Any = None  # threadpoolctl's limits, kept for the life of the process


def set_threads(value: Any) -> int | None:
    """Fix the stage's intra-op threads from ``params.yaml: threads``: torch's and those of
    numpy's BLAS and any other OpenMP pool (threadpoolctl), whatever ``OMP_NUM_THREADS`` says.

    A float reduction split over more threads adds in another order, so the thread count is
    part of a result's bits: with it fixed by params, ``dvc repro``, the parallel runner with
    any ``-j`` and a bigger machine record the same ``dvc.lock`` on the same CPU. ``auto``
    leaves the environment's choice (every core: fastest for big models, machine-dependent).
    A count above the usable cores is an error: it would be slow, and asking for exact
    reproduction on a smaller machine than the one that made the results cannot give them.
    """
    global _thread_limits
    from ganaug.params import check_threads

    try:
        threads = check_threads(value)
    except ValueError as exc:
        raise ParamsError(f"params.yaml: {exc}") from None
    if threads is None:
        return None
    cores = usable_cores()
    if threads > cores:
        raise ParamsError(f"params.yaml: threads: {threads} is more than this machine's {cores} "
                          f"usable core(s); use at most {cores}, or auto (results then depend on "
                          f"the core count)")
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    _thread_limits = threadpool_limits(limits=threads)
    return threads


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _mps_available() -> bool:
    import torch

    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def deterministic() -> bool:
    """Whether deterministic kernels are asked for: yes, unless ``GANAUG_DETERMINISTIC=0``."""
    return os.environ.get("GANAUG_DETERMINISTIC", "1") not in ("0", "false", "no")


def set_determinism(seed: int) -> None:
    """Seed torch's global generator and, by default, ask for deterministic kernels.

    Bit-identical results are promised on the CPU; CUDA kernels without a deterministic version
    only warn. ``GANAUG_DETERMINISTIC=0`` trades that for speed on a GPU: cuDNN then benchmarks
    its convolution algorithms (``cudnn.benchmark``) and non-deterministic kernels are allowed.
    """
    import torch

    torch.manual_seed(seed)
    strict = deterministic()
    torch.use_deterministic_algorithms(strict, warn_only=True)
    torch.backends.cudnn.benchmark = not strict
    if strict:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def setup_logging() -> None:
    """Log lines with a time stamp at ``GANAUG_LOG`` (default INFO; DEBUG, WARNING, ERROR)."""
    level = os.environ.get("GANAUG_LOG", "INFO")
    valid = isinstance(logging.getLevelName(level.upper()), int)
    logging.basicConfig(
        level=level.upper() if valid else "INFO",
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    if not valid:
        raise EnvironmentProblem(f"GANAUG_LOG: {level!r} is not a log level; use DEBUG, INFO, "
                                 f"WARNING or ERROR")


# oneDNN, which runs PyTorch's CPU convolutions, gets the weight gradient of a channels-last
# 1x1 convolution with stride > 1 wrong when the channels it reduces over are fewer than its
# kernel's block: wrong values with several threads, a hang or a crash with one
# (uxlfoundation/oneDNN#6035). Seen with torch 2.14.1 on an AVX2 CPU (block 8) for
# convolutions with fewer than 8 input channels and transposed ones with fewer than 8 output
# channels (benchmarks/channels_last_check.py, which checks every convolution shape the project
# uses on a machine); AVX-512 kernels use a block of 16, hence the margin. Such layers run in
# the default layout on the CPU (:func:`guard_cpu_convolutions`).
ONEDNN_BLOCK = 16


def channels_last_unsafe(op: str, kernel: int, stride: int, in_channels: int,
                         out_channels: int) -> bool:
    """Whether oneDNN may compute this convolution's gradients wrongly in channels-last on the
    CPU: ``op`` ``conv`` or ``convT`` (transposed), the largest kernel size and stride, the
    channels per group."""
    reduced = in_channels if op == "conv" else out_channels
    return kernel == 1 and stride > 1 and reduced < ONEDNN_BLOCK


def _contiguous_input(module: nn.Module, args: tuple) -> tuple:
    return tuple(a.contiguous() if getattr(a, "dim", lambda: 0)() == 4 else a for a in args)


def guard_cpu_convolutions(model: nn.Module) -> list[str]:
    """Keep the convolutions of ``model`` that :func:`channels_last_unsafe` names in the default
    layout, weights and input (an input can arrive channels-last from the layer before, or from
    a permute), whatever layout the rest of the model runs in; returns their names. For CPU
    runs; idempotent."""
    import torch
    from torch import nn

    guarded = []
    for name, m in model.named_modules():
        if not isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            continue
        op = "conv" if isinstance(m, nn.Conv2d) else "convT"
        if channels_last_unsafe(op, max(m.kernel_size), max(m.stride), m.in_channels // m.groups,
                                m.out_channels // m.groups):
            m.to(memory_format=torch.contiguous_format)
            if not getattr(m, "_ganaug_contiguous_input", False):
                m.register_forward_pre_hook(_contiguous_input)
                m._ganaug_contiguous_input = True
            guarded.append(name or type(m).__name__)
    return guarded


def inference_layout(model: nn.Module, device: torch.device | str) -> nn.Module:
    """``model`` (in place, and returned) in the memory layout it runs inference fastest in on
    ``device``: channels-last on CUDA and the CPU, the default layout elsewhere (MPS).

    Measured on 2 CPU cores at 48x48 (benchmarks/README.md, "Inference in the channels-last
    layout"): scorers 1.55-1.7x, generators 1.45-2.0x, discriminators 1.2x, the FID Inception
    1.8x more images/s; the generate stage's work 1.6x, the score stage's 1.26x. The outputs
    equal the default layout's up to float rounding, and CPU runs stay deterministic run to run.
    For a model that is only run, never saved: a checkpoint is written from the default layout
    (:meth:`Accel.release`). On the CPU, :meth:`Accel.prepare`'s guard applies."""
    import torch

    device = torch.device(device)
    return Accel(device, amp=False, channels_last=device.type in ("cuda", "cpu"),
                 compile_model=False).prepare(model)


class Accel:
    """The device habits of one run: bf16 autocast (CUDA only, where supported), channels-last
    tensors (CUDA and the CPU, where oneDNN's channels-last convolutions train small CNNs
    1.1-1.4x faster and are as deterministic; not MPS), torch.compile (by option). CPU runs stay
    bit-deterministic: the same params give the same weights run after run."""

    def __init__(self, device: torch.device, amp: bool, channels_last: bool,
                 compile_model: bool) -> None:
        self.device = device
        self.amp = amp
        self.channels_last = channels_last
        self.compile_model = compile_model

    @classmethod
    def for_device(cls, device: torch.device, cfg: Any) -> Accel:
        """What ``cfg`` asks for (``amp``, ``channels_last``, ``compile``; a missing key is off)
        and ``device`` supports."""
        import torch

        cuda = device.type == "cuda"
        amp = bool(getattr(cfg, "amp", False) and cuda and torch.cuda.is_bf16_supported())
        layout = bool(getattr(cfg, "channels_last", False) and device.type in ("cuda", "cpu"))
        return cls(device, amp, layout, bool(getattr(cfg, "compile", False)))

    def prepare(self, model: nn.Module) -> nn.Module:
        """``model`` in this run's layout; on the CPU, the convolutions oneDNN gets wrong in
        channels-last stay in the default layout (:func:`guard_cpu_convolutions`)."""
        import torch

        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if self.device.type == "cpu":
            guarded = guard_cpu_convolutions(model)
            if guarded and self.channels_last:
                log.info("channels-last on the CPU, except %s: oneDNN's gradients of those "
                         "layers are wrong in channels-last (uxlfoundation/oneDNN#6035)",
                         ", ".join(guarded))
        return model

    @staticmethod
    def release(model: nn.Module) -> nn.Module:
        """Back to the default (contiguous) layout: the weights a run saves are laid out the
        same whatever habits trained them."""
        import torch

        return model.to(memory_format=torch.contiguous_format)

    def compiled(self, model: nn.Module) -> nn.Module:
        import torch

        return torch.compile(model) if self.compile_model else model

    def images(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def autocast(self) -> contextlib.AbstractContextManager:
        import torch

        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
