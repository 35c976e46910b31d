"""Mouse-event helpers for the edit tools (no Qt): map press / move / release to edit calls.

A view converts the mouse position to fractional ``(row, col)`` pixel indices of the slice it
shows (axis 0 axial, 1 coronal, 2 sagittal; see :mod:`viewer.masks_geometry`) and calls::

    tool = BrushTool(seg, BrushSettings(label=2, size_mm=8.0))
    tool.press(axis, slice_index, (row, col))     # mousePressEvent  -> opens one undo step
    tool.move((row, col))                         # mouseMoveEvent   -> paints the segment
    tool.release()                                # mouseReleaseEvent -> closes the undo step

Each call returns the changed :class:`Box` (or None); ``seg.on_change`` callbacks fire as well.
:func:`brush_radii_px` gives the brush cursor's ellipse radii in pixels for drawing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from viewer.masks import EditableSegmentation
from viewer.masks_geometry import Box, plane_spacing

__all__ = ["BrushSettings", "BrushTool", "brush_radii_px"]


def brush_radii_px(spacing: Sequence[float], axis: int, size_mm: float) -> tuple[float, float]:
    """``(row, col)`` radii in pixels of a brush of diameter ``size_mm`` on plane ``axis``."""
    sr, sc = plane_spacing(spacing, axis)
    return size_mm / 2.0 / sr, size_mm / 2.0 / sc


@dataclass
class BrushSettings:
    """Brush / eraser options.

    mode : ``"paint"`` or ``"erase"``.
    label : label painted (paint) or erased (erase; None erases every label).
    size_mm : diameter in mm.
    hu_range : threshold paint range ``(lo, hi)`` in image units (HU), or None.
    editable : overwrite protection, label values that may be painted over (None = all).
    """

    label: int | None = 1
    size_mm: float = 5.0
    mode: str = "paint"
    hu_range: tuple[float, float] | None = None
    editable: Collection[int] | None = None


class BrushTool:
    """Turns a mouse drag into one grouped brush / eraser undo step."""

    def __init__(self, seg: EditableSegmentation, settings: BrushSettings | None = None) -> None:
        self.seg = seg
        self.settings = settings or BrushSettings()
        self._axis: int | None = None
        self._index = 0
        self._last: tuple[float, float] | None = None

    @property
    def active(self) -> bool:
        """True between press and release."""
        return self._axis is not None

    def _stroke(self, p0: tuple[float, float], p1: tuple[float, float] | None) -> Box | None:
        s = self.settings
        assert self._axis is not None
        if s.mode == "erase":
            return self.seg.erase(self._axis, self._index, p0, p1, size_mm=s.size_mm, label=s.label,
                                  hu_range=s.hu_range, editable=s.editable)
        if s.mode != "paint":
            raise ValueError(f"brush mode must be 'paint' or 'erase', got {s.mode!r}")
        if s.label is None:
            raise ValueError("painting needs a label (BrushSettings.label)")
        return self.seg.paint(self._axis, self._index, p0, p1, label=s.label, size_mm=s.size_mm,
                              hu_range=s.hu_range, editable=s.editable)

    def press(self, axis: int, index: int, point: Sequence[float]) -> Box | None:
        """Mouse press on slice ``index`` of plane ``axis`` at ``(row, col)``: paints one dab."""
        if self.active:
            self.release()
        self.seg.begin_stroke("eraser" if self.settings.mode == "erase" else "brush")
        self._axis, self._index = int(axis), int(index)
        self._last = (float(point[0]), float(point[1]))
        try:
            return self._stroke(self._last, None)
        except Exception:
            self.release()
            raise

    def move(self, point: Sequence[float]) -> Box | None:
        """Mouse move while pressed: paints the whole segment from the previous position."""
        if not self.active or self._last is None:
            return None
        p = (float(point[0]), float(point[1]))
        box = self._stroke(self._last, p)
        self._last = p
        return box

    def release(self) -> Box | None:
        """Mouse release: the drag becomes one undo step; returns its box."""
        if not self.active:
            return None
        self._axis, self._last = None, None
        return self.seg.end_stroke()
