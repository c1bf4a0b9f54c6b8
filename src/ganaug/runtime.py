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


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` are
    taken as asked, when this machine has them.

    The ``GANAUG_DEVICE`` environment variable overrides the params value (handy for forcing the
    CPU on a GPU machine without changing params, which would rerun stages). A name that is not a
    device is a :class:`ParamsError`; a device this machine lacks is an
    :class:`EnvironmentProblem` that says so.
    """
    import torch

    from ganaug.config import check_device

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
        import torch

        return model.to(memory_format=torch.channels_last) if self.channels_last else model

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
