"""Segment statistics from a label map and the HU volume (pure numpy / scipy / cv2, no Qt).

Per label: voxel count, volume (mL), HU mean / SD / min / max. For lesion labels also the
connected components (26-connectivity), each with its volume, its longest axial diameter (the
maximum Feret diameter, in mm, on the axial slice where the component is largest — the RECIST
measurement), the slice it was measured on, the caliper end points and the centroid.

Everything returned is JSON-serialisable (plain ``int``/``float``/``str``/``list``/``dict``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import cv2
import numpy as np
from scipy import ndimage

from inference.postprocess import bbox3d as _bbox

__all__ = [
    "segment_statistics",
    "label_statistics",
    "lesion_components",
    "feret_diameter_mm",
    "lesion_labels_from_names",
    "MAX_COMPONENTS",
]

log = logging.getLogger(__name__)

_LESION_WORDS = ("lesion", "nodule", "mass", "tumor", "tumour", "metasta")
#: Components listed with diameters per lesion label (all are counted); the rest are specks.
MAX_COMPONENTS = 200
_CHUNK = 32  # slices per chunk for the HU sums (bounds float64 temporaries to ~70 MB at 512²)


def lesion_labels_from_names(names: Mapping[int, str]) -> list[int]:
    """Label values whose name says lesion / nodule / mass / tumour."""
    return sorted(
        int(v)
        for v, n in names.items()
        if int(v) != 0 and any(w in n.lower() for w in _LESION_WORDS)
    )


def label_statistics(
    labels: np.ndarray,
    hu: np.ndarray | None,
    spacing: tuple[float, float, float],
    values: Iterable[int],
) -> list[dict[str, Any]]:
    """Count, volume (mL) and HU mean / SD (population) / min / max per label value.

    ``labels`` and ``hu`` are [z, y, x] on the same grid; ``spacing`` (sz, sy, sx) mm. HU values
    are ``None`` for an empty label or when ``hu`` is None.
    """
    if hu is not None and hu.shape[:3] != labels.shape:
        raise ValueError(f"HU volume {hu.shape} and label map {labels.shape} differ in shape")
    vals = [int(v) for v in values]
    voxel_ml = float(np.prod(spacing)) / 1000.0
    n = {v: 0 for v in vals}
    s = {v: 0.0 for v in vals}
    s2 = {v: 0.0 for v in vals}
    lo = {v: np.inf for v in vals}
    hi = {v: -np.inf for v in vals}
    for z0 in range(0, labels.shape[0], _CHUNK):
        lab = labels[z0 : z0 + _CHUNK]
        present = np.bincount(lab.ravel(), minlength=max(vals, default=0) + 1)
        h = None if hu is None else hu[z0 : z0 + _CHUNK]
        for v in vals:
            if v >= present.size or present[v] == 0:
                continue
            n[v] += int(present[v])
            if h is None:
                continue
            x = h[lab == v].astype(np.float64)
            s[v] += float(x.sum())
            s2[v] += float(np.dot(x, x))
            lo[v] = min(lo[v], float(x.min()))
            hi[v] = max(hi[v], float(x.max()))
    out = []
    for v in vals:
        entry: dict[str, Any] = {
            "value": v,
            "voxels": n[v],
            "volume_ml": round(n[v] * voxel_ml, 4),
            "hu": None,
        }
        if hu is not None and n[v]:
            mean = s[v] / n[v]
            sd = float(np.sqrt(max(0.0, s2[v] / n[v] - mean * mean)))
            entry["hu"] = {"mean": round(mean, 2), "sd": round(sd, 2), "min": lo[v], "max": hi[v]}
        out.append(entry)
    return out


def feret_diameter_mm(
    mask2d: np.ndarray, spacing_yx: tuple[float, float]
) -> tuple[float, list[list[float]]]:
    """Longest distance (mm) across the pixels of ``mask2d`` [y, x], edge to edge, and its ends.

    The convex hull of the pixel squares (corners at ±0.5 pixel) is measured with the pixel
    spacing ``(sy, sx)`` mm, so a single pixel measures its diagonal and an ``a x b`` rectangle
    exactly ``hypot(a * sx, b * sy)``. End points are ``[[y, x], [y, x]]`` in (fractional) pixels.
    """
    m = np.ascontiguousarray(mask2d, dtype=np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return 0.0, []
    pts = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(
        np.float64
    )  # (x, y) pixel centres
    hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    corners = (
        hull[:, None, :] + np.array([[-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, 0.5]])[None]
    ).reshape(-1, 2)
    hull2 = cv2.convexHull(corners.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    mm = hull2 * np.array([spacing_yx[1], spacing_yx[0]])
    d = np.sqrt(((mm[:, None, :] - mm[None, :, :]) ** 2).sum(-1))
    i, j = np.unravel_index(int(np.argmax(d)), d.shape)
    ends = [[float(hull2[i, 1]), float(hull2[i, 0])], [float(hull2[j, 1]), float(hull2[j, 0])]]
    return float(d[i, j]), ends


def lesion_components(
    labels: np.ndarray,
    value: int,
    spacing: tuple[float, float, float],
    hu: np.ndarray | None = None,
    *,
    max_components: int = MAX_COMPONENTS,
) -> tuple[list[dict[str, Any]], int]:
    """Connected components (26-connectivity) of ``labels == value``, largest first.

    Returns (the ``max_components`` largest components, total component count). Each:
    ``id`` (1 = largest), ``voxels``, ``volume_ml``, ``longest_axial_diameter_mm`` (max Feret on
    its largest axial slice), ``slice_index`` (that slice, index into the [z] axis),
    ``diameter_endpoints_yx`` (pixels on that slice), ``centroid_zyx`` (voxel indices),
    ``centroid_slice`` (rounded z), ``z_range`` [first, last] slice and ``hu_mean`` when ``hu``
    is given. Sizes, centroids and means come from one pass over the label's voxels.
    """
    full = labels == value
    box = _bbox(full)
    if box is None:  # labelling an empty 300 x 512² mask still costs seconds
        return [], 0
    mask = full[box]
    off = [b.start for b in box]
    comp, n = ndimage.label(mask, structure=ndimage.generate_binary_structure(3, 3))
    pos = np.nonzero(mask)
    ids = comp[pos]
    sizes = np.bincount(ids, minlength=n + 1).astype(np.float64)
    cent = [
        np.bincount(ids, weights=p, minlength=n + 1) / np.maximum(sizes, 1) + o
        for p, o in zip(pos, off, strict=True)
    ]
    hu_mean = None
    if hu is not None:
        hu_vals = hu[box][pos].astype(np.float64)
        hu_mean = np.bincount(ids, weights=hu_vals, minlength=n + 1) / np.maximum(sizes, 1)
    order = np.argsort(-sizes[1:], kind="stable")[:max_components] + 1
    objects = ndimage.find_objects(comp)
    sz, sy, sx = spacing
    voxel_ml = sz * sy * sx / 1000.0
    out = []
    for rank, i in enumerate(order, start=1):
        sl = objects[i - 1]
        sub = comp[sl] == i
        k = int(np.argmax(sub.sum(axis=(1, 2))))
        diam, ends = feret_diameter_mm(sub[k], (sy, sx))
        entry = {
            "id": rank,
            "voxels": int(sizes[i]),
            "volume_ml": round(float(sizes[i]) * voxel_ml, 4),
            "longest_axial_diameter_mm": round(diam, 2),
            "slice_index": int(off[0] + sl[0].start + k),
            "diameter_endpoints_yx": [
                [y + off[1] + sl[1].start, x + off[2] + sl[2].start] for y, x in ends
            ],
            "centroid_zyx": [round(float(c[i]), 2) for c in cent],
            "centroid_slice": int(round(float(cent[0][i]))),
            "z_range": [int(off[0] + sl[0].start), int(off[0] + sl[0].stop - 1)],
        }
        if hu_mean is not None:
            entry["hu_mean"] = round(float(hu_mean[i]), 2)
        out.append(entry)
    return out, int(n)


def segment_statistics(
    labels: np.ndarray,
    hu: np.ndarray | None,
    spacing: tuple[float, float, float],
    *,
    label_names: Mapping[int, str] | None = None,
    lesion_labels: Iterable[int] | None = None,
) -> dict[str, Any]:
    """All statistics of a label map, JSON-serialisable.

    Parameters
    ----------
    labels : uint8 [z, y, x] label map.
    hu : [z, y, x] HU (the volume's voxels) or None.
    spacing : (sz, sy, sx) mm.
    label_names : value → name (background 0 is skipped); default: the values present.
    lesion_labels : values analysed per component; default: names with lesion/nodule/mass/tumour.

    Returns
    -------
    ``{"spacing_mm", "voxel_volume_ml", "labels": [per label], "lesions": {value: {"name",
    "count", "total_volume_ml", "components": [the largest MAX_COMPONENTS],
    "components_listed"}}}``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"label map must be [z, y, x], got shape {labels.shape}")
    names = {int(k): str(v) for k, v in (label_names or {}).items()}
    if not names:
        names = {int(v): f"label {int(v)}" for v in np.unique(labels)}
    values = sorted(v for v in names if v != 0)
    stats = label_statistics(labels, hu, spacing, values)
    for e in stats:
        e["name"] = names[e["value"]]
    les_values = (
        list(lesion_labels) if lesion_labels is not None else lesion_labels_from_names(names)
    )
    lesions: dict[str, Any] = {}
    voxel_ml = float(np.prod(spacing)) / 1000.0
    for v in les_values:
        comps, count = lesion_components(labels, int(v), spacing, hu)
        total = next((e["voxels"] for e in stats if e["value"] == int(v)), None)
        if total is None:
            total = int(np.count_nonzero(labels == int(v)))
        lesions[str(int(v))] = {
            "name": names.get(int(v), f"label {int(v)}"),
            "count": count,
            "total_volume_ml": round(total * voxel_ml, 4),
            "components": comps,
            "components_listed": len(comps),
        }
    return {
        "spacing_mm": [float(s) for s in spacing],
        "voxel_volume_ml": float(np.prod(spacing)) / 1000.0,
        "labels": stats,
        "lesions": lesions,
    }
