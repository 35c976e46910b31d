"""Static INT8 quantisation (QDQ) of an exported model, with calibration and verification.

Settings chosen by measurement on the 2-core target (``bench/bench_engines.py``,
``../shared/PERF_NOTES.md``): static QDQ, **unsigned 8-bit activations, signed 8-bit per-channel
weights**, MinMax calibration over representative window-normalised phantom slices. Dynamic
quantisation is not offered: it is slower than FP32 for convolutions on this CPU.

Pitfalls handled here: ``quant_pre_process`` cannot infer symbolic shapes of a model with dynamic
H/W (``skip_symbolic_shape=True``) and writes temporary files into the current directory, so it
runs inside a temporary working directory; the calibration reader yields copies so ORT cannot
alias the caller's arrays.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["INT8_MIN_DICE", "ort_session", "SliceCalibrationReader", "quantize_int8", "verify_int8", "INT8Error"]

log = logging.getLogger(__name__)

INT8_MIN_DICE: dict[str, float] = {"1": 0.99, "2": 0.99, "3": 0.98}


class INT8Error(RuntimeError):
    """The INT8 model disagrees with the FP32 model beyond the tolerance."""


def ort_session(path: str | os.PathLike[str], threads: int = 2) -> Any:
    """An ONNX Runtime CPU session (ORT_ENABLE_ALL, no spinning)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _reader_base() -> type:
    from onnxruntime.quantization import CalibrationDataReader

    return CalibrationDataReader


class SliceCalibrationReader(_reader_base()):  # type: ignore[misc]
    """Feeds ``images`` (float32 ``[M, C, H, W]``, window-normalised) in batches of ``batch``."""

    def __init__(self, images: np.ndarray, input_name: str = "image", batch: int = 1) -> None:
        if images.ndim != 4 or images.dtype != np.float32:
            raise ValueError(f"calibration images must be float32 [M, C, H, W], got {images.dtype} {images.shape}")
        self.images, self.name, self.batch = images, input_name, max(1, int(batch))
        self._it: Iterator[dict[str, np.ndarray]] | None = None
        self.rewind()

    def rewind(self) -> None:
        self._it = ({self.name: self.images[i : i + self.batch].copy()}
                    for i in range(0, len(self.images), self.batch))

    def get_next(self) -> dict[str, np.ndarray] | None:
        assert self._it is not None
        return next(self._it, None)


@contextlib.contextmanager
def _in_dir(path: str) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def quantize_int8(
    fp32_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    calibration: np.ndarray,
    *,
    activations: str = "u8",
    weights: str = "s8",
    per_channel: bool = True,
    preprocess: bool = True,
    keep_head_fp32: bool = True,
) -> Path:
    """Write a static INT8 QDQ model calibrated on ``calibration`` (float32 ``[M, C, H, W]``).

    Parameters
    ----------
    activations, weights : {"u8", "s8"}
        Integer types of activations and weights (u8/s8 is the fast combination here).
    per_channel : bool
        Per-output-channel weight scales (more accurate, same speed).
    preprocess : bool
        Run ``quant_pre_process`` (ORT graph optimisation) first.
    keep_head_fp32 : bool
        Leave the node that produces the output logits (the 1x1 head, ~0.1 % of the FLOPs) in
        FP32: quantising the logits themselves costs argmax margin on small structures (lesions).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    types = {"u8": QuantType.QUInt8, "s8": QuantType.QInt8}
    if activations not in types or weights not in types:
        raise ValueError(f"activations/weights must be 'u8' or 's8', got {activations!r}/{weights!r}")
    fp32_path, out_path = Path(fp32_path).resolve(), Path(out_path).resolve()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cv-quant-") as tmp, _in_dir(tmp):
        src = fp32_path
        if preprocess:
            src = Path(tmp) / "pre.onnx"
            quant_pre_process(str(fp32_path), str(src), skip_symbolic_shape=True)
        exclude: list[str] = []
        if keep_head_fp32:
            import onnx

            g = onnx.load(str(src)).graph
            outs = {o.name for o in g.output}
            exclude = [n.name for n in g.node if outs.intersection(n.output)]
        quantize_static(
            str(src), str(out_path), SliceCalibrationReader(calibration),
            quant_format=QuantFormat.QDQ, activation_type=types[activations], weight_type=types[weights],
            per_channel=per_channel, calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=exclude,
        )
    import onnx

    onnx.checker.check_model(str(out_path))
    log.info("INT8 (%s act / %s weights, per-channel %s) written to %s (%.1f MB), %d calibration slices",
             activations, weights, per_channel, out_path, out_path.stat().st_size / 1e6, len(calibration))
    return out_path


def verify_int8(
    fp32_path: str | os.PathLike[str],
    int8_path: str | os.PathLike[str],
    images: np.ndarray,
    *,
    labels: Sequence[int] = (1, 2, 3),
    min_dice: float | dict[str, float] | None = None,
    batch: int = 4,
) -> dict[str, Any]:
    """Per-label Dice of INT8 vs FP32 argmax masks on ``images``; raise :class:`INT8Error` below ``min_dice``.

    ``min_dice`` is one number for every label or ``{"label": threshold}``; the default
    (:data:`INT8_MIN_DICE`) asks 0.99 for the lungs and 0.98 for lesions: a lesion is a few hundred
    pixels, so moving a handful of boundary pixels between near-tied logits costs ~1 % Dice
    (measured 0.989–0.992 on held-out phantom sets for the shipped model, with the lungs at 0.999).

    A label absent from both masks is skipped (reported as null). Also returns the pixel agreement
    and the mean absolute logit difference.
    """
    s32, s8 = ort_session(fp32_path), ort_session(int8_path)
    inter = {k: 0 for k in labels}
    tot = {k: 0 for k in labels}
    agree = n = 0
    mad = 0.0
    for i in range(0, len(images), batch):
        x = images[i : i + batch]
        a = s32.run(["logits"], {"image": x})[0]
        b = s8.run(["logits"], {"image": x})[0]
        mad += float(np.abs(a - b).sum())
        pa, pb = a.argmax(1), b.argmax(1)
        agree += int((pa == pb).sum())
        n += pa.size
        for k in labels:
            ma, mb = pa == k, pb == k
            inter[k] += int((ma & mb).sum())
            tot[k] += int(ma.sum()) + int(mb.sum())
    dice = {str(k): (2.0 * inter[k] / tot[k] if tot[k] else None) for k in labels}
    res = {"dice": dice, "pixel_agreement": agree / max(1, n), "mean_abs_logit_diff": mad / max(1, n * 4),
           "slices": int(len(images))}
    thr = dict(INT8_MIN_DICE) if min_dice is None else (
        {str(k): float(min_dice) for k in labels} if isinstance(min_dice, int | float) else
        {str(k): float(v) for k, v in min_dice.items()})
    res["min_dice"] = thr
    bad = {k: v for k, v in dice.items() if v is not None and v < thr.get(k, 0.99)}
    if bad:
        raise INT8Error(f"{int8_path}: INT8 vs FP32 Dice below the thresholds {thr} for labels {bad}; "
                        "re-calibrate with more representative slices or keep FP32")
    return res
