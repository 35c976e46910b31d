"""Result types of an engine comparison (numpy only; no torch, no Qt)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inference.compare_metrics import difference_rgb

__all__ = [
    "Thresholds",
    "LabelMetrics",
    "PairResult",
    "EngineTiming",
    "ComparisonResult",
    "json_clean",
]


@dataclass
class Thresholds:
    """Pass/fail thresholds (shown to the user and written into ``compare.json``)."""

    dice_fp32: float = 0.999
    dice_int8: float = 0.99
    max_flip_fraction: float | None = None

    def dice_for(self, engine: str) -> float:
        return self.dice_int8 if "int8" in engine.lower() else self.dice_fp32

    def to_dict(self) -> dict[str, Any]:
        return {
            "dice_fp32": self.dice_fp32,
            "dice_int8": self.dice_int8,
            "max_flip_fraction": self.max_flip_fraction,
        }


@dataclass
class LabelMetrics:
    value: int
    name: str
    dice: float
    iou: float
    voxels_a: int
    voxels_b: int
    volume_a_ml: float
    volume_b_ml: float
    volume_diff_ml: float  # B − A
    volume_diff_pct: float | None  # (B − A) / A · 100, None when A is empty
    hd95_mm: float  # 0 when both empty, inf when one is
    hd_max_mm: float = 0.0  # the classic (100th percentile) Hausdorff distance


@dataclass
class PairResult:
    """Agreement of engine ``b`` with reference engine ``a`` (per slice, model grid)."""

    a: str
    b: str
    labels: list[LabelMetrics]
    flips: int
    voxels: int
    slice_dice: np.ndarray  # [z] foreground Dice per slice
    slice_flips: np.ndarray  # [z] voxels whose label differs
    slice_label_dice: np.ndarray  # [z, K]
    logits_max_abs: float | None = None
    logits_mean_abs: float | None = None
    threshold: float = 0.999
    passed: bool = True
    reasons: list[str] = field(default_factory=list)

    @property
    def flip_fraction(self) -> float:
        return self.flips / self.voxels if self.voxels else 0.0

    @property
    def min_dice(self) -> float:
        return min((m.dice for m in self.labels), default=1.0)

    @property
    def worst_slice(self) -> int:
        """Slice with the most flipped voxels (ties: lowest slice Dice, then lowest index)."""
        order = np.lexsort((np.arange(len(self.slice_flips)), self.slice_dice, -self.slice_flips))
        return int(order[0])

    def to_dict(self, per_slice: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "a": self.a,
            "b": self.b,
            "passed": self.passed,
            "threshold_dice": self.threshold,
            "reasons": list(self.reasons),
            "min_dice": self.min_dice,
            "labels": [m.__dict__.copy() for m in self.labels],
            "logits_max_abs": self.logits_max_abs,
            "logits_mean_abs": self.logits_mean_abs,
            "flips": self.flips,
            "flip_fraction": self.flip_fraction,
            "voxels": self.voxels,
            "worst_slice": self.worst_slice,
            "worst_slice_flips": int(self.slice_flips[self.worst_slice]),
            "worst_slice_dice": float(self.slice_dice[self.worst_slice]),
        }
        if per_slice:
            d["per_slice"] = {
                "dice": self.slice_dice.tolist(),
                "flips": self.slice_flips.tolist(),
                "label_dice": {
                    m.name: self.slice_label_dice[:, m.value].tolist() for m in self.labels
                },
            }
        return json_clean(d)


@dataclass
class EngineTiming:
    name: str
    total_s: float
    slices: int
    batch_ms: list[float]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def per_slice_ms(self) -> float:
        return 1000.0 * self.total_s / self.slices if self.slices else 0.0

    def to_dict(self) -> dict[str, Any]:
        return json_clean(
            {
                "engine": self.name,
                "total_s": self.total_s,
                "slices": self.slices,
                "per_slice_ms": self.per_slice_ms,
                "median_batch_ms": float(np.median(self.batch_ms)) if self.batch_ms else None,
                "info": self.info,
            }
        )


@dataclass
class ComparisonResult:
    """Everything a comparison produced; ``to_dict()`` is what ``compare.json`` holds.

    ``labels[name]`` uint8 ``[z, y, x]`` and ``image`` uint8 ``[z, y, x]`` (centre input channel,
    0…255 over the model's value range) are on the model grid, spacing ``spacing`` (mm).
    ``to_original_z(z)`` maps a model-grid slice to the slice index of the source volume.
    """

    engines: list[str]
    pairs: list[PairResult]
    timings: dict[str, EngineTiming]
    thresholds: Thresholds
    label_names: dict[int, str]
    spacing: tuple[float, float, float]
    labels: dict[str, np.ndarray]
    image: np.ndarray
    geometry: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    z_flipped: bool = False
    _orient: Any = field(default=None, repr=False)
    _geom: Any = field(default=None, repr=False)
    postprocess: dict[str, Any] | None = (
        None  # per engine: what post-processing changed (None: raw)
    )

    @property
    def reference(self) -> str:
        return self.engines[0]

    @property
    def passed(self) -> bool:
        return all(p.passed for p in self.pairs)

    @property
    def worst(self) -> tuple[PairResult, int]:
        """The pair with most flips (failing pairs first) and its worst slice."""
        pair = max(self.pairs, key=lambda p: (not p.passed, p.flips))
        return pair, pair.worst_slice

    def to_original_z(self, z: int) -> int:
        n = self.image.shape[0]
        return n - 1 - int(z) if self.z_flipped else int(z)

    def labels_on_volume(
        self, engine: str, shape: tuple[int, int, int] | None = None
    ) -> np.ndarray:
        """Engine ``engine``'s label map on the source volume's grid ``[z, y, x]`` (uint8).

        Each model-grid slice is resized back with nearest neighbour and written through the
        canonical orientation view, so it lines up with ``volume.voxels``. Only for comparisons
        that started from a volume (not from a prepared input array).
        """
        if self._orient is None or self._geom is None:
            raise ValueError("labels_on_volume needs a comparison that started from a volume")
        import cv2

        shape = shape or tuple(self.geometry["volume_shape"])
        out = np.zeros(shape, dtype=np.uint8)
        canon = self._orient.view(out)
        ny, nx = self._geom.in_shape
        for z, lab in enumerate(self.labels[engine]):
            canon[z] = cv2.resize(lab, (nx, ny), interpolation=cv2.INTER_NEAREST)
        return out

    def pair(self, a: str, b: str) -> PairResult:
        for p in self.pairs:
            if (p.a, p.b) == (a, b):
                return p
        raise KeyError(f"no comparison {a} vs {b}; have {[(p.a, p.b) for p in self.pairs]}")

    def difference_rgb(
        self,
        z: int,
        a: str | None = None,
        b: str | None = None,
        *,
        alpha: float = 1.0,
        backdrop: bool = True,
    ) -> np.ndarray:
        """RGB ``[y, x, 3]`` uint8 difference map of model-grid slice ``z``."""
        a = a or self.reference
        b = b or self.worst[0].b
        return difference_rgb(
            self.labels[a][z], self.labels[b][z], self.image[z] if backdrop else None, alpha=alpha
        )

    def to_dict(self, per_slice: bool = True) -> dict[str, Any]:
        pair, z = self.worst
        return json_clean(
            {
                "passed": self.passed,
                "engines": list(self.engines),
                "reference": self.reference,
                "thresholds": self.thresholds.to_dict(),
                "labels": {str(k): v for k, v in self.label_names.items()},
                "grid": {
                    "shape": list(self.image.shape),
                    "spacing_mm": list(self.spacing),
                    "description": "model grid: canonical LPS-axial slices at the model's "
                    "in-plane spacing",
                    "z_flipped": self.z_flipped,
                    "original_slice": [self.to_original_z(i) for i in range(self.image.shape[0])],
                    **self.geometry,
                },
                "worst": {
                    "a": pair.a,
                    "b": pair.b,
                    "slice": z,
                    "original_slice": self.to_original_z(z),
                    "flips": int(pair.slice_flips[z]),
                },
                "pairs": [p.to_dict(per_slice) for p in self.pairs],
                "timing": {n: t.to_dict() for n, t in self.timings.items()},
                "masks": "post-processed" if self.postprocess is not None else "raw argmax",
                "postprocess": self.postprocess,
                "warnings": list(self.warnings),
            }
        )


def json_clean(obj: Any) -> Any:
    """Replace non-finite floats by None and numpy scalars by Python ones (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
