"""The standard FID feature space: pytorch-fid's FID InceptionV3, pool3 (2048-d) features.

The weights are the TensorFlow FID Inception (2015-12-05) ported by pytorch-fid; torch-fidelity
ships the same file (same sha256). They are read from a local file that the ``fetch`` stage put
there: building the network never downloads anything.

Input ranges at each boundary:
- :func:`inception_features` takes stored images, uint8 ``(N, C, H, W)`` in [0, 255], C = 1 or 3;
- the network receives float ``(B, 3, H, W)`` in [0, 1] (grey repeated to 3 channels), which is
  what pytorch-fid feeds it from image files (``ToTensor``);
- pytorch-fid's InceptionV3 then resizes to 299 x 299 (bilinear, ``align_corners=False``) and
  scales to [-1, 1] itself (``resize_input=True, normalize_input=True``).
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ganaug.io import CheckpointError
from ganaug.runtime import inference_layout

log = logging.getLogger(__name__)

# pytorch_fid.inception.FID_WEIGHTS_URL (a test checks they agree).
FID_INCEPTION_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                     "pt_inception-2015-12-05-6726825d.pth")
# Full sha256 of that file (95,628,359 bytes); its name carries the first 8 hex digits.
FID_INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"

# Written next to every figure computed in this feature space.
FEATURE_SPACE = "fid_inception_v3_pool3"
FEATURE_DIM = 2048
RESIZE = "bilinear to 299x299 (pytorch-fid)"


def load_fid_inception(weights_path: str | Path, device: torch.device | str) -> nn.Module:
    """pytorch-fid's FID InceptionV3 (pool3 block only) with the weights in ``weights_path``.

    Returns an eval-mode module on ``device`` (laid out for inference there:
    :func:`ganaug.runtime.inference_layout`) mapping float ``(B, 3, H, W)`` in [0, 1] to a
    one-element list holding ``(B, 2048, 1, 1)`` features. Raises CheckpointError naming the file
    when it is missing, unreadable, or not a state dict of that network.
    """
    path = Path(weights_path)
    state = _read_state_dict(path)
    from pytorch_fid import inception as pf

    try:
        with _local_weights(pf, state) as asked_for:
            net = pf.InceptionV3([pf.InceptionV3.BLOCK_INDEX_BY_DIM[FEATURE_DIM]],
                                 resize_input=True, normalize_input=True, use_fid_inception=True)
    except RuntimeError as exc:  # load_state_dict: missing/unexpected keys, wrong shapes
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(
            f"{path}: not the weights of pytorch-fid's FID InceptionV3 ({first}); fetch "
            f"{FID_INCEPTION_URL.rsplit('/', 1)[-1]} again"
        ) from None
    if asked_for != [pf.FID_WEIGHTS_URL]:  # a pytorch-fid that loads its weights another way
        raise RuntimeError(f"pytorch-fid asked for weights {asked_for}; expected one call for "
                           f"{pf.FID_WEIGHTS_URL}: this pytorch-fid version is not supported")
    return inference_layout(net.to(device), device).eval()


def _read_state_dict(path: Path) -> Mapping[str, torch.Tensor]:
    """A state dict read with ``weights_only=True`` (no code runs from the file), on the CPU."""
    if not path.is_file():
        raise CheckpointError(f"{path}: FID Inception weights not found (run the fetch stage)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError,
            zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable PyTorch weights file ({first})") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a state dict (name -> tensor), got {type(state).__name__}")
    return state


@contextlib.contextmanager
def _local_weights(module: Any, state: Mapping[str, torch.Tensor]) -> Iterator[list[str]]:
    """Make pytorch-fid's weight loader return ``state`` instead of downloading.

    ``pytorch_fid.inception.fid_inception_v3`` builds the network, then strictly loads
    ``load_state_dict_from_url(FID_WEIGHTS_URL)`` into it: swapping that one name keeps
    pytorch-fid's exact architecture and forward while the bytes come from the local file.
    Yields the list of URLs the loader was asked for. (Swapping a module global is not
    thread-safe: build the network once, before starting any threads.)
    """
    original = module.load_state_dict_from_url
    asked_for: list[str] = []

    def from_file(url: str, *args: Any, **kwargs: Any) -> Mapping[str, torch.Tensor]:
        asked_for.append(url)
        return state

    module.load_state_dict_from_url = from_file
    try:
        yield asked_for
    finally:
        module.load_state_dict_from_url = original


@torch.no_grad()
def inception_features(images: np.ndarray | torch.Tensor, network: nn.Module, batch_size: int,
                       device: torch.device | str) -> np.ndarray:
    """Features ``(N, D)`` float32 (D = 2048 for the FID Inception) of uint8 images, in order.

    ``images``: uint8 ``(N, C, H, W)`` in [0, 255], C = 1 (repeated to 3 channels) or 3; a numpy
    memmap is read one batch at a time. ``network`` maps float ``(B, 3, H, W)`` in [0, 1] to
    ``(B, D)``, ``(B, D, 1, 1)``, or a list/tuple whose first item is one of those (pytorch-fid's
    InceptionV3 returns ``[(B, 2048, 1, 1)]``).
    """
    _check_images(images)
    network.eval()
    out: np.ndarray | None = None
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc="inception", unit="batch", leave=False, disable=None):
        chunk = images[start: start + batch_size]
        x = torch.from_numpy(np.array(chunk)) if isinstance(chunk, np.ndarray) else chunk  # copy
        x = x.to(device).float().div_(255.0)  # (B, C, H, W) in [0, 1]
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)  # grey -> RGB, as PIL's convert("RGB") does
        feats = _as_matrix(network(x), len(x))  # (B, D)
        if out is None:
            out = np.empty((len(images), feats.shape[1]), dtype=np.float32)
        out[start: start + len(feats)] = feats.float().cpu().numpy()
    assert out is not None  # _check_images rejects empty input
    return out


def _check_images(images: np.ndarray | torch.Tensor) -> None:
    dtype_ok = str(images.dtype) in ("uint8", "torch.uint8")
    if images.ndim != 4 or images.shape[1] not in (1, 3) or not dtype_ok or len(images) == 0:
        raise ValueError(
            f"inception_features: expected uint8 (N >= 1, C in {{1, 3}}, H, W) images in "
            f"[0, 255], got {images.dtype} of shape {tuple(images.shape)}"
        )


def _as_matrix(output: Any, batch: int) -> torch.Tensor:
    """``(B, D)`` from a network output ``(B, D)``, ``(B, D, 1, 1)`` or a list holding one."""
    if isinstance(output, (list, tuple)):
        output = output[0]
    if output.ndim == 4 and output.shape[2:] == (1, 1):
        output = output.flatten(1)
    if output.ndim != 2 or len(output) != batch:
        raise ValueError(
            f"inception_features: the network returned shape {tuple(output.shape)} for a batch of "
            f"{batch}; expected ({batch}, D) or ({batch}, D, 1, 1)"
        )
    return output


def inception_report(weights: Path, images: np.ndarray, labels: np.ndarray, subset: np.ndarray,
                     data: Any, cfg: Any, device: torch.device) -> dict[str, Any]:
    """FID/KID overall and per class in the standard FID Inception feature space, with the same
    KID settings as the scorer-space figures (``cfg``: the ``score`` section)."""
    from ganaug.synthetic.scoring import fid_report, kid_settings

    net = load_fid_inception(weights, device)
    x_real, y_real = data.split("train")
    real = inception_features(x_real, net, cfg.batch_size, device)
    fake = inception_features(images[subset], net, cfg.batch_size, device)
    return fid_report(real, y_real, fake, labels[subset], data.classes,
                      feature_space=FEATURE_SPACE, resize=RESIZE, **kid_settings(cfg))
