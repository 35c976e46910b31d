"""PyTorch vs ONNX vs INT8: run engines on the same model input and compare them clinically.

No Qt, never imports ``viewer``, no torch at import time (the torch engine imports it when
built). The metric definitions are in :mod:`inference.compare_metrics`.

:func:`compare_engines` prepares the network input once per batch of slices (exactly as the
pipeline does: :mod:`inference.preprocess_input`), feeds the *same* array to every engine, and
keeps each engine's label map (argmax of the logits, padding cropped) on the model grid: the
canonical (LPS-axial) slices resampled to the model's in-plane spacing, ``spacing = (sz, sy, sx)``
mm of that grid. Metrics are computed there, where the networks' outputs are exact (no
resampling of either side). The first engine is the reference A; every other engine B is
compared with it. Engine timings are measured in the same run, after one untimed warm-up call
per engine on the first batch.

The verdict per pair: every foreground label's Dice ≥ the threshold for that engine (INT8 engines
— any name containing ``int8`` — use ``Thresholds.dice_int8``, others ``dice_fp32``) and, when
set, the fraction of voxels whose label flips ≤ ``max_flip_fraction``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from inference.compare_metrics import confusion_per_slice, dice_iou, hausdorff_mm, per_slice_summary
from inference.compare_result import (
    ComparisonResult,
    EngineTiming,
    LabelMetrics,
    PairResult,
    Thresholds,
)
from inference.jobs import CancelCheck, Progress, check_cancel, report
from inference.package import ModelPackage, PackageError

__all__ = [
    "Thresholds",
    "LabelMetrics",
    "PairResult",
    "EngineTiming",
    "ComparisonResult",
    "compare_labels",
    "compare_engines",
    "build_engine",
    "DEFAULT_ENGINES",
]

log = logging.getLogger(__name__)

Engine = Callable[[np.ndarray], np.ndarray]
DEFAULT_ENGINES = ("torch", "onnx", "onnx-int8")
_CONF_CHUNK = 16  # slices per confusion-matrix chunk (bounds temporary memory)


# ------------------------------------------------------------------------------------ metrics
def compare_labels(
    a: np.ndarray,
    b: np.ndarray,
    spacing: tuple[float, float, float],
    label_names: dict[int, str],
    *,
    names: tuple[str, str] = ("A", "B"),
    threshold: float = 0.999,
    max_flip_fraction: float | None = None,
) -> PairResult:
    """Compare two label maps ``[z, y, x]`` on the same grid (``spacing`` mm) with a verdict.

    ``label_names`` maps label values (0 = background, skipped in the per-label metrics and the
    verdict) to names; ``K = max(value) + 1`` classes.
    """
    k = max(label_names) + 1
    voxel_ml = float(np.prod(spacing)) / 1000.0
    nz = a.shape[0]
    conf_z = (
        np.concatenate(
            [
                confusion_per_slice(a[s : s + _CONF_CHUNK], b[s : s + _CONF_CHUNK], k)
                for s in range(0, nz, _CONF_CHUNK)
            ]
        )
        if nz
        else np.zeros((0, k, k), np.int64)
    )
    conf = conf_z.sum(axis=0)
    dice, iou = dice_iou(conf)
    per = per_slice_summary(conf_z)
    metrics: list[LabelMetrics] = []
    for value in sorted(v for v in label_names if v > 0):
        na, nb = int(conf[value].sum()), int(conf[:, value].sum())
        va, vb = na * voxel_ml, nb * voxel_ml
        hd, hdmax = (
            hausdorff_mm(a == value, b == value, spacing)
            if (na or nb) and dice[value] < 1.0
            else (0.0, 0.0)
        )
        metrics.append(
            LabelMetrics(
                value,
                label_names[value],
                float(dice[value]),
                float(iou[value]),
                na,
                nb,
                va,
                vb,
                vb - va,
                (vb - va) / va * 100.0 if na else None,
                hd,
                hdmax,
            )
        )
    flips = int(conf.sum() - np.trace(conf))
    pair = PairResult(
        names[0],
        names[1],
        metrics,
        flips,
        int(conf.sum()),
        per["dice"],
        per["flips"],
        per["label_dice"],
        threshold=threshold,
    )
    pair.reasons = [
        f"{m.name}: Dice {m.dice:.5f} < {threshold}" for m in metrics if m.dice < threshold
    ]
    if max_flip_fraction is not None and pair.flip_fraction > max_flip_fraction:
        pair.reasons.append(f"flip fraction {pair.flip_fraction:.2e} > {max_flip_fraction}")
    pair.passed = not pair.reasons
    return pair


# ------------------------------------------------------------------------------------ engines
def build_engine(package: ModelPackage, kind: str, *, threads: int | None = None) -> Engine:
    """Engine ``kind`` of ``package``: ``torch``, ``onnx``, ``onnx-int8``, optionally ``:provider``
    (``onnx:cuda``, ``onnx-int8:cpu``), from the pipeline's engine cache (SHA-256 verified)."""
    from inference.pipeline import make_engine

    base, _, provider = kind.partition(":")
    if base not in ("torch", "onnx", "onnx-int8"):
        raise PackageError(
            f"unknown engine {kind!r}; use torch, onnx or onnx-int8 (optionally ':provider')"
        )
    if provider and base == "torch":
        raise PackageError(f"engine {kind!r}: the torch engine runs on the CPU only; use 'torch'")
    return make_engine(package, base, provider=provider or None, threads=threads)


def _available(package: ModelPackage, kind: str) -> bool:
    base = kind.partition(":")[0]
    return {
        "torch": package.has_torch,
        "onnx": "onnx" in package.files,
        "onnx-int8": package.has_int8,
    }.get(base, True)


def _to_u8(x: np.ndarray, normalize: str) -> np.ndarray:
    lo, hi = (-1.0, 1.0) if normalize == "-1..1" else (0.0, 1.0)
    if normalize == "none":
        lo, hi = float(x.min()), float(x.max()) or 1.0
    return np.rint(np.clip((x - lo) / (hi - lo), 0.0, 1.0) * 255.0).astype(np.uint8)


def compare_engines(
    volume_like: Any,
    package: ModelPackage,
    engines: Sequence[str | tuple[str, Engine]] = DEFAULT_ENGINES,
    *,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    thresholds: Thresholds | None = None,
    batch_size: int = 1,
    spacing: tuple[float, float, float] | None = None,
    threads: int | None = None,
    postprocess: bool = False,
) -> ComparisonResult:
    """Run ``engines`` on the same model input of ``volume_like`` and compare each with the first.

    Parameters
    ----------
    volume_like : a Volume-like (``voxels [z, y, x]`` HU, ``spacing`` (sz, sy, sx) mm,
        ``direction``), prepared per ``package.input``; or an already prepared network input
        ``float32 [z, C, H, W]``, which then needs ``spacing`` (mm of that grid).
    package : the model package (labels, input spec, files).
    engines : kinds (``"torch"``, ``"onnx"``, ``"onnx-int8"``, ``"onnx:cuda"`` …) built from the
        package — kinds whose file the package lacks are skipped with a warning — or
        ``(name, callable)`` pairs. At least two are needed; the first is the reference.
    progress, cancel : job protocol (per batch); raises ``Cancelled``.
    thresholds : verdict thresholds (defaults: Dice ≥ 0.999 FP32, ≥ 0.99 INT8).
    batch_size : slices per engine call.
    postprocess : compare the masks after the package's post-processing
        (:func:`inference.postprocess.postprocess_labels`, ``model.json`` settings, applied to
        every engine's mask on the model grid) instead of the raw argmax masks. Logit
        differences are always those of the raw outputs.
    """
    from inference.preprocess_input import orientation_of, prepare_slices, slice_geometry

    thresholds = thresholds or Thresholds()
    spec = package.input
    warnings: list[str] = []
    built: list[tuple[str, Engine]] = []
    for e in engines:
        if isinstance(e, str):
            if not _available(package, e):
                warnings.append(
                    f"engine {e!r} skipped: model package '{package.name}' has no file for it"
                )
                continue
            built.append((e, build_engine(package, e, threads=threads)))
        else:
            built.append((str(e[0]), e[1]))
    if len(built) < 2:
        raise PackageError(
            f"comparison needs at least two engines, got {[n for n, _ in built]} "
            f"(model package '{package.name}' files: {sorted(package.files)})"
        )
    names = [n for n, _ in built]
    if len(set(names)) != len(names):
        raise ValueError(f"engine names must be unique, got {names}")

    geometry: dict[str, Any] = {}
    z_flipped = False
    orient = geom = None
    if isinstance(volume_like, np.ndarray):
        if volume_like.ndim != 4 or spacing is None:
            raise ValueError(
                "a prepared input must be float32 [z, C, H, W] with spacing; got "
                f"{volume_like.shape}"
            )
        nz = volume_like.shape[0]
        grid_spacing = tuple(float(s) for s in spacing)

        def batch(zs: list[int]) -> np.ndarray:
            return np.ascontiguousarray(volume_like[zs], dtype=np.float32)

        def crop(y: np.ndarray) -> np.ndarray:
            return y
    else:
        vox = np.asarray(volume_like.voxels)
        if vox.ndim != 3:
            raise PackageError(f"comparison needs a grey [z, y, x] volume, got shape {vox.shape}")
        orient = orientation_of(volume_like.direction)
        canon = orient.view(vox)
        cs = orient.spacing(tuple(volume_like.spacing))
        geom = slice_geometry(canon.shape[1:], cs[1:], spec)
        nz = canon.shape[0]
        grid_spacing = (float(cs[0]), *geom.out_spacing)
        geometry = {
            "slice_geometry": geom.to_dict(),
            "orientation": {
                "perm": list(orient.perm),
                "flip": list(orient.flip),
                "plane": orient.plane,
            },
            "volume_shape": list(vox.shape),
        }
        z_flipped = orient.perm[0] == 0 and orient.flip[0]

        def batch(zs: list[int]) -> np.ndarray:
            return prepare_slices(canon, zs, geom, spec)

        crop = geom.crop

    k = package.num_classes
    labels: dict[str, np.ndarray] = {}
    image: np.ndarray | None = None
    timings = {n: EngineTiming(n, 0.0, 0, []) for n in names}
    for n, eng in built:
        info = getattr(eng, "describe", None)
        timings[n].info = info() if callable(info) else {}
    lmax = dict.fromkeys(names[1:], 0.0)
    lsum = dict.fromkeys(names[1:], 0.0)
    count = 0
    bs = max(1, int(batch_size))
    for start in range(0, nz, bs):
        check_cancel(cancel)
        zs = list(range(start, min(start + bs, nz)))
        x = batch(zs)
        centre = _to_u8(crop(x[:, x.shape[1] // 2]), spec.normalize)
        if image is None:
            image = np.empty((nz, *centre.shape[1:]), dtype=np.uint8)
        image[zs[0] : zs[-1] + 1] = centre
        ref: np.ndarray | None = None
        for n, eng in built:
            check_cancel(cancel)
            if start == 0:
                eng(x)  # untimed warm-up (session allocation, first-call overheads)
            t0 = time.perf_counter()
            y = eng(x)
            dt = time.perf_counter() - t0
            if y.ndim != 4 or y.shape[0] != len(zs) or y.shape[1] != k:
                raise PackageError(
                    f"engine {n!r} returned shape {y.shape}; expected [{len(zs)}, {k}, H, W] "
                    f"({k} labels in model.json)"
                )
            timings[n].total_s += dt
            timings[n].slices += len(zs)
            timings[n].batch_ms.append(dt * 1000.0)
            y = crop(y)
            if n not in labels:
                labels[n] = np.empty((nz, *y.shape[2:]), dtype=np.uint8)
            labels[n][zs[0] : zs[-1] + 1] = np.argmax(y, axis=1)
            if ref is None:
                ref = y
            else:
                d = np.abs(y - ref)
                lmax[n] = max(lmax[n], float(d.max()))
                lsum[n] += float(d.sum(dtype=np.float64))
        count += int(np.prod(ref.shape)) if ref is not None else 0
        report(progress, zs[-1] + 1, nz, f"compared slice {zs[-1] + 1}/{nz}")

    pp_records: dict[str, Any] = {}
    if postprocess:
        from inference.postprocess import postprocess_labels, resolve_settings

        settings = resolve_settings(package.postprocess, None)
        for n in names:
            labels[n], record = postprocess_labels(labels[n], grid_spacing, settings, cancel=cancel)
            pp_records[n] = record
    label_names = {lab.value: lab.name for lab in package.labels}
    pairs = []
    for n in names[1:]:
        check_cancel(cancel)
        p = compare_labels(
            labels[names[0]],
            labels[n],
            grid_spacing,
            label_names,
            names=(names[0], n),
            threshold=thresholds.dice_for(n),
            max_flip_fraction=thresholds.max_flip_fraction,
        )
        p.logits_max_abs = lmax[n]
        p.logits_mean_abs = lsum[n] / count if count else 0.0
        pairs.append(p)
        log.info(
            "compare %s vs %s: min Dice %.5f, flips %d, %s",
            names[0],
            n,
            p.min_dice,
            p.flips,
            "pass" if p.passed else "FAIL",
        )
    assert image is not None
    return ComparisonResult(
        names,
        pairs,
        timings,
        thresholds,
        label_names,
        grid_spacing,
        labels,
        image,
        geometry,
        warnings,
        z_flipped,
        orient,
        geom,
        postprocess=pp_records if postprocess else None,
    )
