"""Geometry of label-map edits: boxes, slice planes, brush footprints, fill and island regions.

No Qt, pure numpy / cv2 / scipy. Conventions (see :mod:`viewer.volume`):

* label maps are ``uint8`` arrays indexed ``[z, y, x]``; spacing is ``(sz, sy, sx)`` in mm;
* a *plane* is one slice perpendicular to array axis ``axis``: ``0`` axial (plane axes ``y, x``),
  ``1`` coronal (plane axes ``z, x``), ``2`` sagittal (plane axes ``z, y``), at index ``index``
  along that axis. Points on a plane are ``(row, col)`` in fractional pixel indices of the 2-D
  plane array as :func:`plane_view` returns it (pixel centres at integer indices);
* a :class:`Box` is a half-open voxel box ``[z0, z1) x [y0, y1) x [x0, x1)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "Box",
    "plane_box",
    "plane_spacing",
    "plane_view",
    "stroke_footprint",
    "fill_region",
    "island_labels",
    "tight_box",
]


@dataclass(frozen=True)
class Box:
    """Half-open voxel box ``[z0, z1) x [y0, y1) x [x0, x1)`` in ``[z, y, x]`` index order."""

    z0: int
    z1: int
    y0: int
    y1: int
    x0: int
    x1: int

    @classmethod
    def full(cls, shape: Sequence[int]) -> Box:
        """The box covering a whole array of ``shape`` ``(nz, ny, nx)``."""
        return cls(0, int(shape[0]), 0, int(shape[1]), 0, int(shape[2]))

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        """``(slice(z0, z1), slice(y0, y1), slice(x0, x1))`` for indexing ``[z, y, x]`` arrays."""
        return (slice(self.z0, self.z1), slice(self.y0, self.y1), slice(self.x0, self.x1))

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.z1 - self.z0, self.y1 - self.y0, self.x1 - self.x0)

    @property
    def size(self) -> int:
        """Number of voxels in the box."""
        s = self.shape
        return max(s[0], 0) * max(s[1], 0) * max(s[2], 0)

    def is_empty(self) -> bool:
        return self.size == 0

    def union(self, other: Box | None) -> Box:
        """Smallest box containing both (``other`` None returns ``self``)."""
        if other is None:
            return self
        return Box(min(self.z0, other.z0), max(self.z1, other.z1), min(self.y0, other.y0),
                   max(self.y1, other.y1), min(self.x0, other.x0), max(self.x1, other.x1))

    def offset_in(self, outer: Box) -> tuple[slice, slice, slice]:
        """Slices of this box relative to ``outer``'s origin (``outer`` must contain it)."""
        return (slice(self.z0 - outer.z0, self.z1 - outer.z0),
                slice(self.y0 - outer.y0, self.y1 - outer.y0),
                slice(self.x0 - outer.x0, self.x1 - outer.x0))

    def range(self, axis: int) -> tuple[int, int]:
        """``(start, stop)`` along array axis ``axis`` (0 z, 1 y, 2 x)."""
        return ((self.z0, self.z1), (self.y0, self.y1), (self.x0, self.x1))[axis]

    def intersects_plane(self, axis: int, index: int) -> bool:
        """True when the plane ``index`` along ``axis`` passes through the box (redraw test)."""
        lo, hi = self.range(axis)
        return lo <= index < hi

    def to_list(self) -> list[int]:
        return [self.z0, self.z1, self.y0, self.y1, self.x0, self.x1]


def _check_axis(axis: int) -> int:
    if axis not in (0, 1, 2):
        raise ValueError(f"plane axis must be 0 (axial), 1 (coronal) or 2 (sagittal), got {axis!r}")
    return int(axis)


def plane_view(arr: np.ndarray, axis: int, index: int) -> np.ndarray:
    """The 2-D plane ``index`` along ``axis`` of a ``[z, y, x]`` array, as a writable *view*."""
    _check_axis(axis)
    if not 0 <= index < arr.shape[axis]:
        raise IndexError(f"slice index {index} is outside 0..{arr.shape[axis] - 1} along axis {axis}")
    sl: list[int | slice] = [slice(None)] * 3
    sl[axis] = int(index)
    return arr[tuple(sl)]


def plane_spacing(spacing: Sequence[float], axis: int) -> tuple[float, float]:
    """``(row, col)`` pixel spacing in mm of a plane perpendicular to ``axis``."""
    _check_axis(axis)
    sz, sy, sx = (float(s) for s in spacing)
    return ((sy, sx), (sz, sx), (sz, sy))[axis]


def plane_box(axis: int, index: int, r0: int, r1: int, c0: int, c1: int) -> Box:
    """The 3-D box of plane rows ``[r0, r1)`` and columns ``[c0, c1)`` on plane ``index``."""
    _check_axis(axis)
    if axis == 0:
        return Box(index, index + 1, r0, r1, c0, c1)
    if axis == 1:
        return Box(r0, r1, index, index + 1, c0, c1)
    return Box(r0, r1, c0, c1, index, index + 1)


def stroke_footprint(
    p0: Sequence[float],
    p1: Sequence[float] | None,
    size_mm: float,
    pixel_spacing: Sequence[float],
    plane_shape: Sequence[int],
) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """Pixels a round brush of diameter ``size_mm`` covers moving from ``p0`` to ``p1``.

    A pixel is covered when its centre lies within ``size_mm / 2`` (mm, measured with the
    anisotropic ``pixel_spacing`` ``(row, col)``) of the segment ``p0``-``p1``: the exact union of
    every brush circle along the segment, so a fast drag leaves no gaps. On anisotropic pixels the
    circle is an ellipse in pixel units. The pixels under the segment itself (sampled every half
    pixel) are always covered, so a brush smaller than a pixel still draws a connected line.

    Parameters
    ----------
    p0, p1 : (row, col) fractional pixel indices; ``p1`` None paints a single dab at ``p0``.
    size_mm : brush diameter in mm (> 0).
    pixel_spacing : (row, col) spacing in mm.
    plane_shape : (rows, cols) of the plane, for clipping.

    Returns
    -------
    ``((r0, r1, c0, c1), mask)`` with the half-open clipped window and a bool mask of its shape,
    or None when the footprint lies entirely outside the plane.
    """
    if not size_mm > 0:
        raise ValueError(f"brush size must be > 0 mm, got {size_mm!r}")
    sr, sc = (float(s) for s in pixel_spacing)
    a = np.asarray(p0, dtype=np.float64)
    b = a if p1 is None else np.asarray(p1, dtype=np.float64)
    if a.shape != (2,) or b.shape != (2,) or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(f"brush points must be finite (row, col) pairs, got {p0!r}, {p1!r}")
    rad = size_mm / 2.0
    hr, hc = rad / sr, rad / sc
    r0 = max(int(math.floor(min(a[0], b[0]) - hr)) - 1, 0)
    r1 = min(int(math.ceil(max(a[0], b[0]) + hr)) + 2, int(plane_shape[0]))
    c0 = max(int(math.floor(min(a[1], b[1]) - hc)) - 1, 0)
    c1 = min(int(math.ceil(max(a[1], b[1]) + hc)) + 2, int(plane_shape[1]))
    if r0 >= r1 or c0 >= c1:
        return None
    # distance (mm) of each pixel centre to the segment a-b, computed on the window only
    pr = (np.arange(r0, r1, dtype=np.float64)[:, None] - a[0]) * sr
    pc = (np.arange(c0, c1, dtype=np.float64)[None, :] - a[1]) * sc
    dr, dc = (b[0] - a[0]) * sr, (b[1] - a[1]) * sc
    den = dr * dr + dc * dc
    if den > 0:
        t = np.clip((pr * dr + pc * dc) / den, 0.0, 1.0)
        er, ec = pr - t * dr, pc - t * dc
    else:
        er, ec = pr, pc
    mask = er * er + ec * ec <= rad * rad * (1.0 + 1e-9)
    # the pixels under the mouse path itself (thin brushes still draw a connected line)
    n = int(math.ceil(2 * max(abs(b[0] - a[0]), abs(b[1] - a[1])))) + 1
    t = np.linspace(0.0, 1.0, n)
    rr = np.floor(a[0] + t * (b[0] - a[0]) + 0.5).astype(np.int64) - r0
    cc = np.floor(a[1] + t * (b[1] - a[1]) + 0.5).astype(np.int64) - c0
    ok = (rr >= 0) & (rr < r1 - r0) & (cc >= 0) & (cc < c1 - c0)
    mask[rr[ok], cc[ok]] = True
    if not mask.any():
        return None
    return (r0, r1, c0, c1), mask


def fill_region(plane: np.ndarray, point: Sequence[float]) -> tuple[tuple[int, int, int, int], np.ndarray, bool]:
    """The 4-connected region of equal label value around ``point`` on a 2-D plane.

    Parameters
    ----------
    plane : uint8 [rows, cols] label plane (not modified).
    point : (row, col) pixel index (rounded to the nearest pixel).

    Returns
    -------
    ``((r0, r1, c0, c1), mask, closed)``: the region's bounding window, its bool mask, and
    whether the region is closed (does not touch the plane border).
    """
    rows, cols = plane.shape
    r, c = (int(math.floor(float(v) + 0.5)) for v in point)
    if not (0 <= r < rows and 0 <= c < cols):
        raise IndexError(f"fill point {tuple(point)} is outside the {rows}x{cols} slice")
    img = np.ascontiguousarray(plane, dtype=np.uint8)
    flood = np.zeros((rows + 2, cols + 2), np.uint8)
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8)
    _, _, _, (x, y, w, h) = cv2.floodFill(img, flood, (c, r), 0, 0, 0, flags)
    window = (y, y + h, x, x + w)
    mask = flood[1 + y:1 + y + h, 1 + x:1 + x + w].astype(bool)
    closed = y > 0 and x > 0 and y + h < rows and x + w < cols
    return window, mask, closed


def island_labels(mask: np.ndarray, connectivity: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of a bool mask (2-D or 3-D) and their voxel counts.

    ``connectivity`` is scipy's rank: 1 = faces (4 in 2-D, 6 in 3-D), ``mask.ndim`` = all
    neighbours (8 / 26). Returns ``(labels int32, counts)`` where ``counts[i]`` is the size of
    component ``i`` (``counts[0]`` is the background).
    """
    if not 1 <= connectivity <= mask.ndim:
        raise ValueError(f"connectivity must be 1..{mask.ndim}, got {connectivity}")
    from scipy import ndimage  # lazy: scipy costs ~0.5 s of GUI start-up

    structure = ndimage.generate_binary_structure(mask.ndim, connectivity)
    labels, n = ndimage.label(mask, structure=structure)
    counts = np.bincount(labels.ravel(), minlength=n + 1)
    return labels, counts


def tight_box(changed: np.ndarray, within: Box) -> Box | None:
    """The smallest box (absolute coordinates) around the True voxels of ``changed``.

    ``changed`` is a bool array of ``within.shape``; returns None when nothing is True.
    """
    bounds = []
    for ax in range(3):
        other = tuple(a for a in range(3) if a != ax)
        hit = np.flatnonzero(changed.any(axis=other))
        if hit.size == 0:
            return None
        bounds.append((int(hit[0]), int(hit[-1]) + 1))
    (z0, z1), (y0, y1), (x0, x1) = bounds
    return Box(within.z0 + z0, within.z0 + z1, within.y0 + y0, within.y0 + y1,
               within.x0 + x0, within.x0 + x1)
