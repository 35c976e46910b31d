"""Edit operations of :class:`viewer.masks.EditableSegmentation` (mixed in; no Qt).

Every operation computes the new values of a small box only, hands them to
``EditableSegmentation._apply_region`` (which records the undo step, provenance and notifies) and
returns the tight :class:`Box` of changed voxels, or None when nothing changed.

Planes and points follow :mod:`viewer.masks_geometry`: ``axis`` 0 axial / 1 coronal / 2 sagittal,
``index`` the slice along it, points ``(row, col)`` in fractional pixel indices of that plane.
Common keyword options:

* ``hu_range=(lo, hi)``: threshold paint, only voxels whose image value (HU) is within
  ``lo <= v <= hi`` change (needs ``image``);
* ``editable``: overwrite protection, the label values that may be painted over (e.g. ``{0}``
  paints only into background); None lets the brush overwrite every label.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import numpy as np

from viewer.jobs import CancelCheck, Progress, check_cancel, report
from viewer.masks_geometry import (
    Box,
    fill_region,
    island_labels,
    plane_box,
    plane_spacing,
    plane_view,
    stroke_footprint,
    tight_box,
)
from viewer.masks_labels import EditError

if TYPE_CHECKING:
    import threading

__all__ = ["EditOpsMixin"]

Point = Sequence[float]


class EditOpsMixin:
    """Brush, eraser, fill, islands, clear, relabel. Requires the EditableSegmentation state."""

    _cur: np.ndarray
    _lock: threading.RLock
    spacing: tuple[float, float, float]
    image: np.ndarray | None

    if TYPE_CHECKING:
        def label(self, value: int) -> object: ...
        def _apply_region(self, box: Box, new: np.ndarray, name: str) -> Box | None: ...

    # ------------------------------------------------------------------ helpers
    def _allowed(self, box: Box, region: np.ndarray, hu_range: tuple[float, float] | None,
                 editable: Collection[int] | None) -> np.ndarray | None:
        """Bool mask of voxels in ``box`` that threshold and protection allow (None = all)."""
        allowed = None
        if hu_range is not None:
            if self.image is None:
                raise EditError("threshold paint needs the image: create the segmentation with image=volume.voxels")
            lo, hi = (float(v) for v in hu_range)
            if lo > hi:
                raise EditError(f"threshold range must have low <= high, got ({lo}, {hi})")
            img = self.image[box.slices]
            allowed = (img >= lo) & (img <= hi)
        if editable is not None:
            lut = np.zeros(256, dtype=bool)
            lut[np.asarray(sorted(int(v) for v in editable), dtype=np.int64)] = True
            ok = lut[region]
            allowed = ok if allowed is None else allowed & ok
        return allowed

    def _check_label(self, label: int) -> int:
        if int(label) == 0:
            raise EditError("cannot paint with label 0 (background): use the eraser or clear_label")
        self.label(label)
        return int(label)

    def _region_box(self, axis: int | None, index: int | None) -> Box:
        """The whole volume (axis None) or one whole plane."""
        if axis is None:
            return Box.full(self._cur.shape)
        if index is None:
            raise EditError(f"a slice index is needed with axis={axis}")
        plane = plane_view(self._cur, axis, index)
        return plane_box(axis, int(index), 0, plane.shape[0], 0, plane.shape[1])

    # ------------------------------------------------------------------ brush and eraser
    def paint(self, axis: int, index: int, p0: Point, p1: Point | None = None, *, label: int,
              size_mm: float, hu_range: tuple[float, float] | None = None,
              editable: Collection[int] | None = None) -> Box | None:
        """Paint ``label`` with a round brush of diameter ``size_mm`` from ``p0`` to ``p1``.

        One call per mouse-move event: the segment between successive positions is painted
        completely (see :func:`viewer.masks_geometry.stroke_footprint`), so fast drags leave no gaps.
        """
        label = self._check_label(label)
        return self._brush(axis, index, p0, p1, size_mm, label, None, hu_range, editable)

    def erase(self, axis: int, index: int, p0: Point, p1: Point | None = None, *, size_mm: float,
              label: int | None = None, hu_range: tuple[float, float] | None = None,
              editable: Collection[int] | None = None) -> Box | None:
        """Erase (set to background) ``label`` (None: every label) under a round brush."""
        return self._brush(axis, index, p0, p1, size_mm, 0, label, hu_range, editable)

    def _brush(self, axis: int, index: int, p0: Point, p1: Point | None, size_mm: float, value: int,
               erase_label: int | None, hu_range: tuple[float, float] | None,
               editable: Collection[int] | None) -> Box | None:
        with self._lock:
            plane = plane_view(self._cur, axis, index)
            fp = stroke_footprint(p0, p1, size_mm, plane_spacing(self.spacing, axis), plane.shape)
            if fp is None:
                return None
            (r0, r1, c0, c1), mask2 = fp
            box = plane_box(axis, int(index), r0, r1, c0, c1)
            region = self._cur[box.slices]
            mask = np.expand_dims(mask2, axis)
            if value == 0:
                mask = mask & ((region != 0) if erase_label is None else (region == erase_label))
            allowed = self._allowed(box, region, hu_range, editable)
            if allowed is not None:
                mask = mask & allowed
            new = np.where(mask, np.uint8(value), region)
            return self._apply_region(box, new, "eraser" if value == 0 else "brush")

    def paint_mask(self, mask: np.ndarray, *, label: int, box: Box | None = None,
                   hu_range: tuple[float, float] | None = None,
                   editable: Collection[int] | None = None) -> Box | None:
        """Paint ``label`` (0 erases) where the bool ``mask`` is True; ``mask`` has ``box.shape``
        (default: the whole volume). For tools computed elsewhere (lasso, region growing)."""
        if label != 0:
            self._check_label(label)
        with self._lock:
            box = box or Box.full(self._cur.shape)
            if tuple(mask.shape) != box.shape:
                raise EditError(f"mask shape {mask.shape} does not match box shape {box.shape}")
            region = self._cur[box.slices]
            m = mask.astype(bool, copy=False)
            allowed = self._allowed(box, region, hu_range, editable)
            if allowed is not None:
                m = m & allowed
            return self._apply_region(box, np.where(m, np.uint8(label), region), "paint")

    # ------------------------------------------------------------------ fill
    def fill(self, axis: int, index: int, point: Point, *, label: int,
             hu_range: tuple[float, float] | None = None,
             editable: Collection[int] | None = None) -> Box | None:
        """Fill the closed region around ``point`` on one slice with ``label`` (2-D flood fill).

        The region is the 4-connected set of pixels with the clicked pixel's value (e.g. the
        background hole inside an outline). A region that reaches the slice border is not closed
        and is refused with :class:`EditError` (nothing changes).
        """
        label = self._check_label(label)
        with self._lock:
            plane = plane_view(self._cur, axis, index)
            (r0, r1, c0, c1), mask2, closed = fill_region(plane, point)
            seed = int(plane[min(max(int(np.floor(point[0] + 0.5)), 0), plane.shape[0] - 1),
                             min(max(int(np.floor(point[1] + 0.5)), 0), plane.shape[1] - 1)])
            if seed == label:
                return None
            if not closed:
                raise EditError(f"the region at (row {point[0]:.0f}, col {point[1]:.0f}) of slice {index} "
                                f"(axis {axis}) is not closed: it reaches the edge of the slice. "
                                "Close its outline with the brush first, then fill")
            box = plane_box(axis, int(index), r0, r1, c0, c1)
            region = self._cur[box.slices]
            mask = np.expand_dims(mask2, axis)
            allowed = self._allowed(box, region, hu_range, editable)
            if allowed is not None:
                mask = mask & allowed
            return self._apply_region(box, np.where(mask, np.uint8(label), region), "fill")

    # ------------------------------------------------------------------ islands
    def remove_small_islands(self, label: int, min_size: float, *, axis: int | None = None,
                             index: int | None = None, connectivity: int = 1,
                             progress: Progress | None = None,
                             cancel: CancelCheck | None = None) -> Box | None:
        """Erase the connected pieces of ``label`` smaller than ``min_size``.

        3-D (``axis`` None): components in the volume, ``min_size`` in mm³. 2-D (``axis``,
        ``index``): components on that slice, ``min_size`` in mm². ``connectivity`` 1 = faces.
        """
        return self._islands(label, axis, index, connectivity, min_size, progress, cancel)

    def keep_largest_island(self, label: int, *, axis: int | None = None, index: int | None = None,
                            connectivity: int = 1, progress: Progress | None = None,
                            cancel: CancelCheck | None = None) -> Box | None:
        """Erase every connected piece of ``label`` except the largest (3-D, or on one slice)."""
        return self._islands(label, axis, index, connectivity, None, progress, cancel)

    def _islands(self, label: int, axis: int | None, index: int | None, connectivity: int,
                 min_size: float | None, progress: Progress | None,
                 cancel: CancelCheck | None) -> Box | None:
        label = self._check_label(label)
        report(progress, 0, 3, "finding label")
        with self._lock:
            outer = self._region_box(axis, index)
            box = tight_box(self._cur[outer.slices] == label, outer)
            if box is None:
                return None
            check_cancel(cancel)
            report(progress, 1, 3, "finding islands")
            region = self._cur[box.slices]
            mask = region == label
            sub = mask if axis is None else np.squeeze(mask, axis)
            comps, counts = island_labels(sub, connectivity)
            check_cancel(cancel)
            counts[0] = 0
            if min_size is None:
                keep = np.zeros(counts.size, dtype=bool)
                keep[int(np.argmax(counts))] = True
            else:
                if axis is None:
                    unit = float(np.prod(self.spacing))
                else:
                    unit = float(np.prod(plane_spacing(self.spacing, axis)))
                keep = counts * unit >= float(min_size)
            keep[0] = True
            drop = ~keep[comps]
            if axis is not None:
                drop = np.expand_dims(drop, axis)
            report(progress, 2, 3, "erasing islands")
            out = self._apply_region(box, np.where(drop & mask, np.uint8(0), region), "islands")
        report(progress, 3, 3, "done")
        return out

    # ------------------------------------------------------------------ clear and relabel
    def clear_label(self, label: int, *, axis: int | None = None, index: int | None = None) -> Box | None:
        """Erase ``label`` on one slice (``axis``, ``index``) or in the whole series (axis None)."""
        self.label(label)
        return self.relabel(label, 0, axis=axis, index=index)

    def relabel(self, src: int, dst: int, *, axis: int | None = None, index: int | None = None) -> Box | None:
        """Change voxels of label ``src`` to ``dst`` (0 erases) on one slice or in the whole series."""
        self.label(src)
        if dst != 0:
            self._check_label(dst)
        with self._lock:
            outer = self._region_box(axis, index)
            region = self._cur[outer.slices]
            hit = region == src
            box = tight_box(hit, outer)
            if box is None:
                return None
            sub = box.offset_in(outer)
            new = np.where(hit[sub], np.uint8(dst), region[sub])
            return self._apply_region(box, new, "clear" if dst == 0 else "relabel")
