"""Measurements on one image plane: ruler length and ROI statistics, in mm and HU. No Qt.

Points are ``(row, col)`` in the plane's pixel coordinates (fractional allowed; pixel centres at
integers). ``spacing`` is ``(row_mm, col_mm)`` — for an axial plane PixelSpacing
``(sy, sx)``; for coronal ``(sz, sx)``; for sagittal ``(sz, sy)`` (see :func:`plane_spacing`).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["plane_spacing", "roi_mask", "roi_stats", "ruler_length_mm"]


def plane_spacing(spacing_zyx: tuple[float, float, float], axis: int) -> tuple[float, float]:
    """(row_mm, col_mm) of the plane cut along view ``axis`` (0 axial, 1 coronal, 2 sagittal)."""
    sz, sy, sx = spacing_zyx
    return ((sy, sx), (sz, sx), (sz, sy))[axis]


def ruler_length_mm(
    p0: tuple[float, float], p1: tuple[float, float], spacing: tuple[float, float]
) -> float:
    """Distance in mm between two ``(row, col)`` points; ``spacing`` is ``(row_mm, col_mm)``."""
    dr = (p1[0] - p0[0]) * spacing[0]
    dc = (p1[1] - p0[1]) * spacing[1]
    return float(math.hypot(dr, dc))


def roi_mask(
    shape: tuple[int, int], p0: tuple[float, float], p1: tuple[float, float], kind: str = "rect"
) -> np.ndarray:
    """Boolean ``[rows, cols]`` mask of the pixels whose centres lie inside the ROI.

    ``p0``/``p1`` are opposite corners of the bounding box, ``(row, col)``; ``kind`` is
    ``"rect"`` or ``"ellipse"`` (inscribed in that box).
    """
    eps = 1e-3  # a corner placed on a pixel centre includes that pixel despite float round-off
    r0, r1 = sorted((p0[0], p1[0]))
    c0, c1 = sorted((p0[1], p1[1]))
    r0, c0, r1, c1 = r0 - eps, c0 - eps, r1 + eps, c1 + eps
    rows = np.arange(shape[0], dtype=np.float64)[:, None]
    cols = np.arange(shape[1], dtype=np.float64)[None, :]
    if kind == "rect":
        return (rows >= r0) & (rows <= r1) & (cols >= c0) & (cols <= c1)
    if kind == "ellipse":
        rc, cc = (r0 + r1) / 2.0, (c0 + c1) / 2.0
        ar, ac = max((r1 - r0) / 2.0, 1e-6), max((c1 - c0) / 2.0, 1e-6)
        return ((rows - rc) / ar) ** 2 + ((cols - cc) / ac) ** 2 <= 1.0
    raise ValueError(f"ROI kind must be 'rect' or 'ellipse', got {kind!r}")


def roi_stats(
    plane: np.ndarray,
    p0: tuple[float, float],
    p1: tuple[float, float],
    spacing: tuple[float, float],
    kind: str = "rect",
) -> dict[str, float]:
    """Statistics of the values (HU for CT) inside a rectangle or ellipse ROI.

    Returns
    -------
    dict with ``mean``, ``sd`` (population), ``min``, ``max`` (plane units), ``pixels`` (count)
    and ``area_mm2`` (pixel count × pixel area). Empty ROIs give NaN statistics and 0 area.
    """
    if plane.ndim != 2:
        raise ValueError(f"plane must be 2-D [rows, cols], got shape {plane.shape}")
    mask = roi_mask(plane.shape, p0, p1, kind)
    vals = plane[mask].astype(np.float64)
    n = int(vals.size)
    area = n * float(spacing[0]) * float(spacing[1])
    if n == 0:
        nan = float("nan")
        return {"mean": nan, "sd": nan, "min": nan, "max": nan, "pixels": 0.0, "area_mm2": 0.0}
    return {
        "mean": float(vals.mean()),
        "sd": float(vals.std()),
        "min": float(vals.min()),
        "max": float(vals.max()),
        "pixels": float(n),
        "area_mm2": area,
    }
