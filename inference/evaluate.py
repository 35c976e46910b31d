"""Accuracy on held-out synthetic slices, and re-validation of an installed model package.

No torch at module level (only :func:`validate_package` imports it, when the package has a
PyTorch twin). An *engine* is a callable ``float32 [N, C, H, W] → float32 logits [N, K, H, W]``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from inference.jobs import CancelCheck, Progress, check_cancel, report
from inference.package import ModelPackage, PackageError
from inference.train_data import DataConfig, PhantomSlices, load_generator, normalize_window

__all__ = ["eval_generator", "heldout_slices", "ort_engine", "synthetic_dice", "validate_package", "HELDOUT_SEED"]

log = logging.getLogger(__name__)

Engine = Callable[[np.ndarray], np.ndarray]
HELDOUT_SEED = 777_001  # never used for training (training seeds are < 100 000)
PHANTOM_GENERATOR = "inference.phantom:generate_slice"
# training-only wrappers of the phantom (other randomisation ranges): calibration, held-out
# evaluation and the generator version always use the plain phantom
_PHANTOM_WRAPPERS = {"inference.train_data:phantom_slice"}


def eval_generator(generator: str) -> str:
    """The generator for calibration/held-out slices of a model trained with ``generator``."""
    return PHANTOM_GENERATOR if generator in _PHANTOM_WRAPPERS else generator


def ort_engine(path: Any, threads: int = 2) -> Engine:
    """A plain ONNX Runtime engine callable for ``path``."""
    from inference.quantize import ort_session

    sess = ort_session(path, threads)
    return lambda x: sess.run(["logits"], {"image": np.ascontiguousarray(x, np.float32)})[0]


def heldout_slices(
    n: int, seed: int, *, spacing_mm: float, center: float, width: float, canvas: int = 320,
    generator: str = "inference.phantom:generate_slice", gen_kwargs: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` generated slices at the model spacing: (x float32 [n, 1, canvas, canvas] in [0, 1], labels uint8)."""
    if canvas % 16:
        raise ValueError(f"canvas must be divisible by 16, got {canvas}")
    cfg = DataConfig(generator=generator, gen_kwargs=dict(gen_kwargs or {}), spacing_mm=spacing_mm,
                     canvas=canvas, crop=canvas, window_center=center, window_width=width, augment=False)
    ds = PhantomSlices(cfg, seed, load_generator(generator))
    hus, labs = zip(*(ds.make_sample(i) for i in range(n)), strict=True)
    return normalize_window(np.stack(hus), center, width)[:, None], np.stack(labs)


def synthetic_dice(
    engine: Engine, x: np.ndarray, y: np.ndarray, *, labels: tuple[int, ...] = (1, 2, 3), batch: int = 4,
    progress: Progress | None = None, cancel: CancelCheck | None = None,
) -> dict[str, Any]:
    """Dice per label pooled over all slices, plus the per-slice median; lungs = labels 1 ∪ 2."""
    inter = dict.fromkeys(labels, 0)
    tot = dict.fromkeys(labels, 0)
    lung_i = lung_t = 0
    per_slice: dict[int, list[float]] = {k: [] for k in labels}
    for i in range(0, len(x), batch):
        check_cancel(cancel)
        pred = engine(x[i : i + batch]).argmax(1)
        ref = y[i : i + batch]
        for k in labels:
            a, b = pred == k, ref == k
            ik, tk = (a & b).sum((1, 2)), a.sum((1, 2)) + b.sum((1, 2))
            inter[k] += int(ik.sum())
            tot[k] += int(tk.sum())
            per_slice[k].extend((2 * ik[tk > 0] / tk[tk > 0]).tolist())
        la, lb = (pred == 1) | (pred == 2), (ref == 1) | (ref == 2)
        lung_i += int((la & lb).sum())
        lung_t += int(la.sum() + lb.sum())
        report(progress, min(len(x), i + batch), len(x), "held-out slices")
    return {
        "dice": {str(k): (2 * inter[k] / tot[k] if tot[k] else None) for k in labels},
        "dice_lungs": 2 * lung_i / lung_t if lung_t else None,
        "median_slice_dice": {str(k): (float(np.median(v)) if v else None) for k, v in per_slice.items()},
        "slices": int(len(x)),
    }


def _torch_model(pkg: ModelPackage) -> Any:
    import torch

    from inference.networks import build_network

    spec = pkg.torch_spec
    model = build_network(str(spec["architecture"]), dict(spec.get("args", {})))
    state = torch.load(str(pkg.file("torch")), map_location="cpu", weights_only=True)
    model.load_state_dict(state.get("state_dict", state))
    return model.eval()


def validate_package(
    pkg: ModelPackage, *, n: int = 24, seed: int = HELDOUT_SEED + 1, generator: str | None = None,
    progress: Progress | None = None, cancel: CancelCheck | None = None,
) -> dict[str, Any]:
    """Re-check a package: SHA-256 of every file, ONNX vs PyTorch parity, INT8 vs FP32 Dice,
    and Dice on ``n`` freshly generated held-out slices against ``validation.acceptance``.

    Returns ``{"ok": bool, "checks": {...}, "failures": [...]}``; raises :class:`PackageError`
    when a file's hash does not match (nothing else is run on a corrupted package).
    """
    pkg.verify()
    checks: dict[str, Any] = {"hashes": "ok"}
    failures: list[str] = []
    spec = pkg.input
    if spec.inplane_policy != "spacing" or spec.spacing_mm is None or spec.channels != 1:
        raise PackageError(f"{pkg.root}: validate supports 1-channel spacing-policy packages only")
    val = dict(pkg.raw.get("validation", {}))
    gen = generator or eval_generator(pkg.raw.get("training", {}).get("data", {}).get("generator", PHANTOM_GENERATOR))
    check_cancel(cancel)
    x, y = heldout_slices(n, seed, spacing_mm=spec.spacing_mm, center=spec.window_center,
                          width=spec.window_width, generator=gen)
    report(progress, 1, 4, "held-out slices generated")
    if pkg.has_torch:
        from inference.export import ParityError, verify_onnx

        try:
            par = verify_onnx(_torch_model(pkg), pkg.file("onnx"), images=x[:8])
            checks["onnx_vs_torch"] = {k: par[k] for k in ("max_abs_logit_diff", "mean_abs_logit_diff", "min_dice")}
        except ParityError as exc:
            failures.append(str(exc))
    report(progress, 2, 4, "parity")
    fp32 = ort_engine(pkg.file("onnx"))
    res = synthetic_dice(fp32, x, y, cancel=cancel)
    checks["heldout_fp32"] = res
    acc = val.get("acceptance", {}).get("min_dice", {"1": 0.9, "2": 0.9})
    for k, thr in acc.items():
        got = res["dice"].get(str(k))
        if got is not None and not math.isnan(got) and got < float(thr):
            failures.append(f"held-out Dice of label {k} ({pkg.label_name(int(k))}) {got:.4f} < {thr}")
    report(progress, 3, 4, "held-out accuracy")
    if pkg.has_int8:
        from inference.quantize import INT8Error, verify_int8

        try:
            checks["int8_vs_fp32"] = verify_int8(pkg.file("onnx"), pkg.file("onnx_int8"), x)
        except INT8Error as exc:
            failures.append(str(exc))
    report(progress, 4, 4, "done")
    return {"ok": not failures, "package": pkg.name, "version": pkg.version, "seed": seed, "checks": checks,
            "failures": failures, "provisional": bool(val.get("provisional", False))}
