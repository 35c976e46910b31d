"""torch → ONNX export with verification against PyTorch (torch-only module, imported lazily).

The graph has one input ``image`` float32 ``[N, C, H, W]`` (window-normalised CT, H and W
divisible by the model's ``divisible_by``) and one output ``logits`` float32 ``[N, K, H, W]``,
with N, H and W dynamic. Exported with the dynamo exporter at its native opset 18, weights
inside the one ``.onnx`` file (``external_data=False``); BatchNorm is folded into the convolutions.
:func:`verify_onnx` runs ONNX Runtime and PyTorch on several sizes and batch sizes and raises
:class:`ParityError` when they disagree.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from inference.quantize import ort_session

__all__ = ["ParityError", "export_onnx", "verify_onnx", "parity_inputs", "ort_session", "DEFAULT_SIZES"]

log = logging.getLogger(__name__)

OPSET = 18
DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((160, 160), (256, 256), (320, 320), (192, 288))
DEFAULT_BATCHES: tuple[int, ...] = (1, 3)


class ParityError(RuntimeError):
    """ONNX Runtime and PyTorch (or INT8 and FP32) disagree beyond the tolerance."""


def export_onnx(
    model: torch.nn.Module, path: str | os.PathLike[str], *, in_channels: int = 1, opset: int = OPSET,
    example_size: int = 256,
) -> Path:
    """Export ``model`` (eval mode) to ``path`` and run ``onnx.checker`` on the result.

    Parameters
    ----------
    model : torch.nn.Module
        Maps float32 ``[N, in_channels, H, W]`` to logits ``[N, K, H, W]``.
    path : path-like
        Output ``.onnx`` file (one file, weights included).
    opset : int
        ONNX opset (18 is the exporter's native one).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    x = torch.zeros(1, in_channels, example_size, example_size)
    dim = torch.export.Dim
    dyn = {"x": {0: dim("batch", min=1, max=1024), 2: dim.DYNAMIC, 3: dim.DYNAMIC}}
    torch.onnx.export(
        model, (x,), str(path), dynamo=True, external_data=False, opset_version=opset,
        input_names=["image"], output_names=["logits"], dynamic_shapes=dyn, verbose=False,
    )
    m = onnx.load(str(path))
    for vi in [*m.graph.input, *m.graph.output]:  # readable names for the dynamic axes
        dims = vi.type.tensor_type.shape.dim
        for i, name in ((0, "N"), (2, "H"), (3, "W")):
            dims[i].ClearField("dim_value")
            dims[i].dim_param = name
    m.producer_name = "clinical-viewer inference.export"
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, str(path))
    leftover = Path(str(path) + ".data")
    if leftover.exists():
        raise RuntimeError(f"exporter wrote external data {leftover}; expected one self-contained file")
    log.info("exported %s (%.1f MB, opset %d)", path, path.stat().st_size / 1e6, opset)
    return path


def parity_inputs(h: int, w: int, n: int, c: int, seed: int, images: np.ndarray | None = None) -> np.ndarray:
    """Inputs in [0, 1] for parity checks: crops/resizes of ``images`` ([M, C, h, w]) when given,
    else smooth random fields (blurred noise with a body-like bright ellipse)."""
    import cv2

    rng = np.random.default_rng(seed)
    out = np.empty((n, c, h, w), np.float32)
    for i in range(n):
        if images is not None and len(images):
            src = images[int(rng.integers(len(images)))]
            out[i] = np.stack([cv2.resize(ch, (w, h), interpolation=cv2.INTER_LINEAR) for ch in src])
        else:
            base = cv2.GaussianBlur(rng.random((h, w), dtype=np.float32), (0, 0), 3)
            yy, xx = np.mgrid[0:h, 0:w]
            body = (((yy - h / 2) / (0.35 * h)) ** 2 + ((xx - w / 2) / (0.45 * w)) ** 2) < 1
            img = np.where(body, 0.6 + 0.2 * base, 0.02 * base).astype(np.float32)
            out[i] = img[None].repeat(c, 0)
    return out


def _dice_argmax(a: np.ndarray, b: np.ndarray, k: int) -> dict[int, float]:
    pa, pb = a.argmax(1), b.argmax(1)
    out = {}
    for lab in range(1, k):
        x, y = pa == lab, pb == lab
        s = int(x.sum()) + int(y.sum())
        out[lab] = 1.0 if s == 0 else 2.0 * int((x & y).sum()) / s
    return out


def verify_onnx(
    model: torch.nn.Module,
    onnx_path: str | os.PathLike[str],
    *,
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    batches: Sequence[int] = DEFAULT_BATCHES,
    images: np.ndarray | None = None,
    max_abs_tol: float = 1e-3,
    min_dice: float = 0.999,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare ONNX Runtime with PyTorch on each (size, batch); raise :class:`ParityError` on mismatch.

    Returns ``{"cases": [...], "max_abs_logit_diff", "mean_abs_logit_diff", "min_dice": {label: d},
    "pixel_agreement"}``; each case records size, batch, max/mean abs difference and per-label Dice.
    """
    model = model.eval().cpu()
    sess = ort_session(onnx_path)
    c = int(sess.get_inputs()[0].shape[1]) if isinstance(sess.get_inputs()[0].shape[1], int) else 1
    cases, worst_max, sum_mean, agree, total = [], 0.0, 0.0, 0, 0
    min_d: dict[int, float] = {}
    for i, ((h, w), n) in enumerate((s, b) for s in sizes for b in batches):
        x = parity_inputs(h, w, n, c, seed + i, images)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        got = sess.run(["logits"], {"image": x})[0]
        if got.shape != ref.shape:
            raise ParityError(f"{onnx_path}: ONNX output shape {got.shape} != torch {ref.shape} for input {x.shape}")
        diff = np.abs(got - ref)
        d = _dice_argmax(got, ref, ref.shape[1])
        agree += int((got.argmax(1) == ref.argmax(1)).sum())
        total += got.shape[0] * h * w
        cases.append({"size": [h, w], "batch": n, "max_abs": float(diff.max()), "mean_abs": float(diff.mean()),
                      "dice": {str(k): v for k, v in d.items()}})
        worst_max = max(worst_max, float(diff.max()))
        sum_mean += float(diff.mean())
        for k, v in d.items():
            min_d[k] = min(min_d.get(k, 1.0), v)
    res = {"cases": cases, "max_abs_logit_diff": worst_max, "mean_abs_logit_diff": sum_mean / max(1, len(cases)),
           "min_dice": {str(k): v for k, v in min_d.items()}, "pixel_agreement": agree / max(1, total),
           "tolerance": {"max_abs": max_abs_tol, "min_dice": min_dice}}
    bad = [k for k, v in min_d.items() if v < min_dice]
    if worst_max > max_abs_tol or bad:
        raise ParityError(
            f"{onnx_path}: ONNX Runtime disagrees with PyTorch: max |Δlogit| {worst_max:.2e} (tolerance "
            f"{max_abs_tol:.0e}), labels below Dice {min_dice}: {bad}. Re-export; do not ship this file."
        )
    log.info("ONNX parity ok: max |Δ| %.2e, mean |Δ| %.2e, %d cases", worst_max, res["mean_abs_logit_diff"], len(cases))
    return res
