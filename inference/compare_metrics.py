"""Agreement metrics between two label maps (numpy + scipy only; no torch, no Qt).

Label maps are integer arrays ``[z, y, x]`` (a single slice may be passed as ``[1, y, x]``)
holding label values ``0 … K-1`` (0 = background). ``spacing`` is ``(sz, sy, sx)`` in mm, in
array-axis order, so anisotropic voxels are measured correctly.

Definitions (A = reference engine, B = the engine compared with it):

* Dice ``2|A∩B| / (|A|+|B|)`` and IoU ``|A∩B| / |A∪B|`` per label; both are 1.0 when the label
  is absent from both maps (the engines agree) and 0.0 when it is in only one.
* Volume in mL = voxel count × ``sz·sy·sx`` / 1000; difference ``B − A`` in mL and in % of A
  (``None`` when A is empty).
* HD95: the 95th percentile of the pooled symmetric surface distances in mm: distances from
  every boundary voxel of A to the nearest boundary voxel of B, and from B to A (as MedPy's
  ``hd95``). Boundary voxels are mask voxels with a background 6-neighbour (face connectivity);
  distances come from ``scipy.ndimage.distance_transform_edt(..., sampling=spacing)`` on the
  bounding box of ``A ∪ B`` (exact Euclidean distances between voxel centres). 0.0 when both
  are empty, ``inf`` when only one is.
* Per slice: a confusion matrix ``[z, K, K]`` (rows A, columns B), from which come the flip count
  (voxels whose label differs) and the foreground Dice of the slice,
  ``Σ_l 2|A_l∩B_l| / Σ_l (|A_l|+|B_l|)`` over labels ``l ≥ 1`` (1.0 for a slice empty in both).
* Difference classes per voxel: 0 agree, 1 only A (A labelled, B background), 2 only B,
  3 label swapped (both labelled, different labels).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

__all__ = [
    "AGREE",
    "ONLY_A",
    "ONLY_B",
    "SWAPPED",
    "DIFF_COLORS",
    "DIFF_NAMES",
    "confusion_per_slice",
    "dice_iou",
    "surface_distances",
    "hd95_mm",
    "hausdorff_mm",
    "per_slice_summary",
    "difference_classes",
    "difference_rgb",
]

AGREE, ONLY_A, ONLY_B, SWAPPED = 0, 1, 2, 3
DIFF_NAMES = {AGREE: "agree", ONLY_A: "only A", ONLY_B: "only B", SWAPPED: "label swapped"}
#: RGB colours of the difference classes (agree is not painted).
DIFF_COLORS: dict[int, tuple[int, int, int]] = {
    ONLY_A: (255, 140, 0),  # orange
    ONLY_B: (0, 160, 255),  # azure
    SWAPPED: (230, 0, 230),  # magenta
}


def _as_labels(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(
            f"{name}: expected an integer label map [z, y, x], got {a.dtype} {a.shape}"
        )
    return a


def confusion_per_slice(a: np.ndarray, b: np.ndarray, num_classes: int) -> np.ndarray:
    """Confusion matrices per slice, ``int64 [z, K, K]`` with ``[z, i, j]`` = #voxels A=i, B=j.

    Labels outside ``0 … K-1`` raise ``ValueError``.
    """
    a = _as_labels(a, "A")
    b = _as_labels(b, "B")
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in shape: {a.shape} vs {b.shape}")
    k = int(num_classes)
    for m, n in ((a, "A"), (b, "B")):
        if m.size and (int(m.min()) < 0 or int(m.max()) >= k):
            raise ValueError(
                f"label map {n} has values outside 0..{k - 1} (min {m.min()}, max {m.max()})"
            )
    nz = a.shape[0]
    code = a.reshape(nz, -1).astype(np.int64) * k + b.reshape(nz, -1)
    code += (np.arange(nz, dtype=np.int64) * (k * k))[:, None]
    return np.bincount(code.ravel(), minlength=nz * k * k).reshape(nz, k, k)


def dice_iou(conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-label Dice and IoU from a confusion matrix ``[K, K]`` (or ``[..., K, K]``).

    Labels absent from both maps get 1.0 (agreement).
    """
    conf = np.asarray(conf, dtype=np.float64)
    inter = np.diagonal(conf, axis1=-2, axis2=-1)
    na = conf.sum(axis=-1)
    nb = conf.sum(axis=-2)
    denom = na + nb
    union = denom - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(denom > 0, 2.0 * inter / np.where(denom > 0, denom, 1.0), 1.0)
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 1.0)
    return dice, iou


def _boundary(mask: np.ndarray) -> np.ndarray:
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def surface_distances(
    a: np.ndarray, b: np.ndarray, spacing: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Directed surface distances in mm: (A boundary → B boundary, B boundary → A boundary).

    ``a`` and ``b`` are boolean masks of the same shape, both non-empty; ``spacing`` one value
    (mm) per axis. Computed on the bounding box of ``a | b`` (plus a one-voxel margin).
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape or len(spacing) != a.ndim:
        raise ValueError(f"masks {a.shape} / {b.shape} and spacing {spacing} do not match")
    if not a.any() or not b.any():
        raise ValueError("surface_distances needs two non-empty masks")
    idx = np.nonzero(a | b)
    box = tuple(slice(max(int(i.min()) - 1, 0), int(i.max()) + 2) for i in idx)
    a, b = a[box], b[box]
    ba, bb = _boundary(a), _boundary(b)
    sampling = tuple(float(s) for s in spacing)
    d_to_b = ndimage.distance_transform_edt(~bb, sampling=sampling)
    d_to_a = ndimage.distance_transform_edt(~ba, sampling=sampling)
    return d_to_b[ba], d_to_a[bb]


def hausdorff_mm(
    a: np.ndarray,
    b: np.ndarray,
    spacing: tuple[float, ...],
    percentiles: tuple[float, ...] = (95.0, 100.0),
) -> tuple[float, ...]:
    """Pooled symmetric Hausdorff distances (mm) at ``percentiles`` (100 = the classic maximum).

    All 0.0 when both masks are empty, all ``math.inf`` when exactly one is.
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    ea, eb = not a.any(), not b.any()
    if ea and eb:
        return tuple(0.0 for _ in percentiles)
    if ea or eb:
        return tuple(math.inf for _ in percentiles)
    dab, dba = surface_distances(a, b, spacing)
    d = np.concatenate([dab, dba])
    return tuple(float(v) for v in np.percentile(d, percentiles))


def hd95_mm(
    a: np.ndarray, b: np.ndarray, spacing: tuple[float, ...], percentile: float = 95.0
) -> float:
    """Pooled symmetric ``percentile`` Hausdorff distance (mm) between boolean masks.

    0.0 when both masks are empty, ``math.inf`` when exactly one is.
    """
    return hausdorff_mm(a, b, spacing, (percentile,))[0]


def per_slice_summary(conf_z: np.ndarray) -> dict[str, np.ndarray]:
    """Per slice from ``[z, K, K]`` confusions: ``flips``, ``dice`` (foreground), ``label_dice``."""
    conf_z = np.asarray(conf_z, dtype=np.int64)
    total = conf_z.sum(axis=(1, 2))
    agree = np.trace(conf_z, axis1=1, axis2=2)
    inter = np.diagonal(conf_z, axis1=1, axis2=2)[:, 1:].sum(axis=1)
    sizes = conf_z[:, 1:, :].sum(axis=(1, 2)) + conf_z[:, :, 1:].sum(axis=(1, 2))
    dice = np.where(sizes > 0, 2.0 * inter / np.maximum(sizes, 1), 1.0)
    label_dice, _ = dice_iou(conf_z)
    return {"flips": (total - agree).astype(np.int64), "dice": dice, "label_dice": label_dice}


def difference_classes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-voxel class (uint8, same shape): 0 agree, 1 only A, 2 only B, 3 label swapped."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in shape: {a.shape} vs {b.shape}")
    out = np.zeros(a.shape, dtype=np.uint8)
    diff = a != b
    fa, fb = a != 0, b != 0
    out[diff & fa & ~fb] = ONLY_A
    out[diff & ~fa & fb] = ONLY_B
    out[diff & fa & fb] = SWAPPED
    return out


def difference_rgb(
    a: np.ndarray,
    b: np.ndarray,
    image: np.ndarray | None = None,
    *,
    colors: dict[int, tuple[int, int, int]] | None = None,
    alpha: float = 1.0,
) -> np.ndarray:
    """A difference map of one slice as RGB ``[y, x, 3]`` uint8.

    ``a``, ``b``: label slices ``[y, x]``. ``image``: optional grey uint8 ``[y, x]`` backdrop (black
    otherwise). Voxels of each difference class are painted in ``colors[class]`` (RGB; default
    :data:`DIFF_COLORS`) with opacity ``alpha``; agreeing voxels show the backdrop.
    """
    classes = difference_classes(a, b)
    if classes.ndim != 2:
        raise ValueError(f"difference_rgb takes one slice [y, x], got {classes.shape}")
    if image is None:
        rgb = np.zeros((*classes.shape, 3), dtype=np.uint8)
    else:
        image = np.asarray(image)
        if image.shape != classes.shape or image.dtype != np.uint8:
            raise ValueError(
                f"backdrop must be uint8 {classes.shape}, got {image.dtype} {image.shape}"
            )
        rgb = np.repeat(image[:, :, None], 3, axis=2)
    lut = np.zeros((4, 3), dtype=np.float32)
    for k, c in (colors or DIFF_COLORS).items():
        lut[int(k)] = c
    painted = classes != AGREE
    base = rgb[painted].astype(np.float32)
    rgb[painted] = np.rint(alpha * lut[classes[painted]] + (1.0 - alpha) * base).astype(np.uint8)
    return rgb
