"""Mouse handlers of the edit tools (brush, eraser, fill) for every slice view (axial and MPR).

A :class:`viewer.qt.slice_view.SliceView` forwards left-button press / move / release to the
handler registered in ``ViewState.tool_handlers[state.tool]`` with the view's axis, slice index and
the fractional ``(row, col)`` of the plane as cut from the volume, and asks it to paint its cursor.
The handlers turn that into :class:`viewer.masks_tools.BrushTool` calls (one drag = one undo step)
or :meth:`EditableSegmentation.fill`, with the options of the edit dock
(:class:`viewer.qt.edit_sessions.EditOptions`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPen

from viewer.errors import ViewerError
from viewer.masks_tools import BrushSettings, BrushTool, brush_radii_px

if TYPE_CHECKING:  # pragma: no cover
    from viewer.qt.edit_sessions import EditController
    from viewer.qt.slice_view import SliceView

__all__ = ["EditToolHandler", "install_tool_handlers", "screen_radii"]

CURSOR = QColor(255, 255, 255, 220)


def screen_radii(view: SliceView, size_mm: float) -> tuple[float, float]:
    """(x, y) screen radii in widget pixels of a brush of diameter ``size_mm`` on ``view``.

    The brush is a circle in mm, i.e. an ellipse in image pixels on anisotropic spacing
    (:func:`brush_radii_px`); the view draws pixels with their physical aspect, so on screen it is
    a circle again (up to rounding)."""
    ry, rx = brush_radii_px(view.geom.volume.spacing, view.axis, size_mm)
    rect = view.image_rect()
    nr, nc = view.geom.shape
    return rx * rect.width() / nc, ry * rect.height() / nr


class EditToolHandler:
    """Handler of one edit tool: ``"brush"``, ``"eraser"`` or ``"fill"``."""

    def __init__(self, controller: EditController, tool: str) -> None:
        if tool not in ("brush", "eraser", "fill"):
            raise ValueError(f"edit tool must be 'brush', 'eraser' or 'fill', got {tool!r}")
        self.ctrl = controller
        self.tool = tool
        self.brush: BrushTool | None = None

    def _seg(self) -> Any:
        seg = self.ctrl.ensure_seg()
        if seg is None:
            self.ctrl.win.message(
                "Nothing to edit: run a segmentation or press Start editing in the Edit dock", 8000
            )
        return seg

    def settings(self) -> BrushSettings:
        o = self.ctrl.options
        editable = {0, o.label} if o.protect_others and o.label is not None else None
        if self.tool == "eraser":
            return BrushSettings(
                label=o.label if o.erase_active_only else None,
                size_mm=o.size_mm,
                mode="erase",
                hu_range=o.hu_range,
                editable=None,
            )
        return BrushSettings(
            label=o.label, size_mm=o.size_mm, mode="paint", hu_range=o.hu_range, editable=editable
        )

    # ------------------------------------------------------------------ mouse (called by SliceView)
    def press(
        self,
        view: SliceView,
        axis: int,
        index: int,
        point: tuple[float, float],
        _modifiers: Any = None,
    ) -> None:
        if self.brush is not None:  # a release was lost (e.g. to a dialog): close that stroke
            self.release(view, point)
        asked = len(self.ctrl.prompter.records)
        seg = self._seg()
        if seg is None:
            return
        if len(self.ctrl.prompter.records) != asked:
            # this click answered "restore edits?": it does not paint (the button release went
            # to the dialog); the next one does
            self.ctrl.win.message("Editing started: click again to edit", 5000)
            return
        s = self.settings()
        if self.tool != "eraser" and (s.label is None or s.label not in seg.labels):
            self.ctrl.win.message(
                "Choose a label in the Edit dock (or add one) before painting", 8000
            )
            return
        try:
            if self.tool == "fill":
                seg.fill(
                    axis, index, point, label=s.label, hu_range=s.hu_range, editable=s.editable
                )
            else:
                self.brush = BrushTool(seg, s)
                self.brush.press(axis, index, point)
        except ViewerError as exc:
            self.brush = None
            self.ctrl.win.errors.present(exc, title="Edit")

    def move(self, view: SliceView, point: tuple[float, float]) -> None:
        if self.brush is not None:
            try:
                self.brush.move(point)
            except ViewerError as exc:
                self.release(view, point)
                self.ctrl.win.errors.present(exc, title="Edit")

    def release(self, view: SliceView, point: tuple[float, float]) -> None:
        brush, self.brush = self.brush, None
        if brush is not None:
            brush.release()

    # ------------------------------------------------------------------ cursor
    def paint_cursor(self, view: SliceView, p: QPainter, pos: QPointF) -> None:
        """The brush outline (diameter in mm) at the mouse; a small cross for fill."""
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        pen = QPen(CURSOR, 1.0)
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        if self.tool == "fill":
            p.drawLine(pos + QPointF(-6, 0), pos + QPointF(6, 0))
            p.drawLine(pos + QPointF(0, -6), pos + QPointF(0, 6))
        else:
            rx, ry = screen_radii(view, self.ctrl.options.size_mm)
            if self.tool == "eraser":
                pen.setStyle(Qt.PenStyle.DashLine)
                p.setPen(pen)
            p.drawEllipse(pos, max(rx, 1.0), max(ry, 1.0))
        p.restore()


def install_tool_handlers(controller: EditController) -> dict[str, EditToolHandler]:
    """Register the brush / eraser / fill handlers in the window's ViewState."""
    handlers = {t: EditToolHandler(controller, t) for t in ("brush", "eraser", "fill")}
    controller.state.tool_handlers.update(handlers)
    return handlers
