"""One slice view (axial, coronal or sagittal): a plain QWidget painted with QPainter (no OpenGL).

It observes the shared :class:`viewer.state.ViewState` and writes to it (cursor, window, zoom,
measurements); it never talks to other widgets. The frame (window/level + overlays) is built by
:mod:`viewer.display` into an RGB buffer, wrapped in a QImage without copying, and drawn scaled
to the physical aspect ratio (``PlaneGeometry.spacing``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QImage, QKeyEvent, QMouseEvent, QPainter, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from viewer.display import composite, window_to_uint8
from viewer.measure import roi_stats, ruler_length_mm
from viewer.qt.view_geometry import PlaneGeometry
from viewer.qt.view_paint import paint_overlays, scaled_frame
from viewer.state import AXES, Measurement, ViewState

__all__ = ["SliceView"]


class SliceView(QWidget):
    """A view of one axis of the current volume.

    Signals
    -------
    hovered(dict | None)  voxel index, value and LPS position under the mouse
    activated(int)        this view was clicked (its axis)
    maximize(int)         double-click: toggle 1x1 on this axis
    """

    hovered = Signal(object)
    activated = Signal(int)
    maximize = Signal(int)

    def __init__(self, state: ViewState, axis: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.axis = axis
        self.name = AXES[axis]
        self.geom: PlaneGeometry | None = None
        self._rgb: np.ndarray | None = None  # keeps the QImage buffer alive
        self._image: QImage | None = None
        self._dirty = True
        self._scaled_key: tuple | None = None
        self._frame_serial = 0
        self._scaled: tuple[QPointF, QImage, np.ndarray] | None = None
        self._frame_index = -1
        self._preview: np.ndarray | None = None
        self.preview_text = ""
        self._drag: dict | None = None
        self.mouse_pos: QPointF | None = None  # last hover position (edit tools' cursor)
        self.show_crosshair = False
        self.setMinimumSize(120, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setObjectName(f"view_{self.name}")
        for ev, cb in self._subscriptions():
            state.subscribe(ev, cb)

    def detach(self) -> None:
        """Stop observing the state (call before deleting the view)."""
        for ev, cb in self._subscriptions():
            self.state.unsubscribe(ev, cb)

    def _subscriptions(self) -> tuple[tuple[str, Callable[..., None]], ...]:
        """The state events this view observes (subscribed in __init__, removed by detach)."""
        return (
            ("volume", self._on_volume),
            ("cursor", self._on_cursor),
            ("window", self._invalidate),
            ("layers", self._invalidate),
            ("view", self._on_view),
            ("identity", self._repaint),
            ("measurements", self._repaint),
            ("layout", self._repaint),
        )

    # ------------------------------------------------------------------ state events
    def _on_volume(self, volume=None, **_) -> None:
        self.geom = None if volume is None else PlaneGeometry(volume, self.axis)
        self._preview = None
        self._invalidate()

    def _on_cursor(self, cursor=None, **_) -> None:
        if self.state.cursor[self.axis] != self._frame_index:
            self._dirty = True
        self.update()

    def _on_view(self, axis: int = -1, **_) -> None:
        if axis == self.axis:
            self.update()

    def _invalidate(self, box=None, **_) -> None:
        if box is not None and not box.intersects_plane(self.axis, self.index()):
            return  # an overlay changed only in a region this view's plane does not cut
        self._dirty = True
        self.update()

    def _repaint(self, **_) -> None:
        self.update()

    def set_preview(self, plane: np.ndarray | None, text: str = "") -> None:
        """Show a single 2-D image (the first slice of a loading series) until a volume arrives."""
        self._preview = plane
        self.preview_text = text
        self._dirty = True
        self.update()

    # ------------------------------------------------------------------ frame
    def index(self) -> int:
        return self.state.cursor[self.axis]

    def render_frame(self) -> QImage | None:
        """Window + overlays for the current slice → RGB QImage (cached until something changes)."""
        if not self._dirty and self._image is not None:
            return self._image
        c, w = self.state.window
        if self.geom is not None:
            vol = self.geom.volume
            idx = self.index()
            plane = self.geom.plane(idx)
            if vol.is_rgb:
                rgb = np.ascontiguousarray(plane)
            else:
                gray = window_to_uint8(plane, c, w, invert=vol.meta.invert)
                planes = self.state.planes(self.axis, idx)
                if self.geom.flip_rows:
                    for p in planes:
                        for attr in ("labels", "heat", "rgba"):
                            if hasattr(p, attr):
                                setattr(p, attr, getattr(p, attr)[::-1])
                rgb = composite(gray, planes)
            self._frame_index = idx
        elif self._preview is not None:
            rgb = composite(window_to_uint8(self._preview, c, w), [])
        else:
            self._image, self._rgb = None, None
            return None
        rgb = np.ascontiguousarray(rgb)
        h, wd = rgb.shape[:2]
        self._rgb = rgb
        self._frame_serial += 1
        self._image = QImage(rgb.data, wd, h, wd * 3, QImage.Format.Format_RGB888)
        self._dirty = False
        return self._image

    # ------------------------------------------------------------------ screen mapping
    def image_rect(self) -> QRectF:
        """Where the plane is drawn, in widget pixels (aspect from the spacing, then zoom/pan)."""
        if self.geom is not None:
            (nr, nc), (rmm, cmm) = self.geom.shape, self.geom.spacing
        elif self._preview is not None:
            (nr, nc), (rmm, cmm) = self._preview.shape[:2], (1.0, 1.0)
        else:
            return QRectF()
        hmm, wmm = nr * rmm, nc * cmm
        fit = min(self.width() / wmm, self.height() / hmm)
        s = fit * self.state.zoom[self.axis]
        px, py = self.state.pan[self.axis]
        wd, ht = wmm * s, hmm * s
        return QRectF((self.width() - wd) / 2 + px, (self.height() - ht) / 2 + py, wd, ht)

    def screen_to_plane(self, pos: QPointF) -> tuple[float, float]:
        """Widget position → (row, col) on the displayed plane (pixel centres at integers)."""
        r = self.image_rect()
        nr, nc = self.geom.shape if self.geom else self._preview.shape[:2]
        col = (pos.x() - r.left()) / r.width() * nc - 0.5
        row = (pos.y() - r.top()) / r.height() * nr - 0.5
        return row, col

    def plane_to_screen(self, row: float, col: float) -> QPointF:
        r = self.image_rect()
        nr, nc = self.geom.shape if self.geom else self._preview.shape[:2]
        return QPointF(
            r.left() + (col + 0.5) / nc * r.width(), r.top() + (row + 0.5) / nr * r.height()
        )

    def zoom_percent(self) -> float:
        """Screen pixels per image pixel (column direction), in percent (100 = 1:1)."""
        if self.geom is None:
            return 100.0
        return 100.0 * self.image_rect().width() / self.geom.shape[1]

    # ------------------------------------------------------------------ painting
    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.fillRect(self.rect(), Qt.GlobalColor.black)
        img = self.render_frame()
        if img is not None:
            scaled = self._scaled_visible()
            if scaled is not None:
                p.drawImage(scaled[0], scaled[1])
        paint_overlays(self, p)
        handler = self.state.tool_handlers.get(self.state.tool)
        if handler is not None and self.mouse_pos is not None and self.geom is not None:
            handler.paint_cursor(self, p, self.mouse_pos)  # e.g. the brush circle (size in mm)
        p.end()

    def _scaled_visible(self) -> tuple[QPointF, QImage] | None:
        """The visible part of the frame at screen resolution (see :func:`scaled_frame`),
        cached until the frame, zoom/pan or widget size change."""
        rect, dpr = self.image_rect(), self.devicePixelRatioF()
        key = (self._frame_serial, rect.x(), rect.y(), rect.width(), rect.height(),
               self.width(), self.height(), dpr)  # fmt: skip
        if self._scaled_key != key:  # crosshair / text-only repaints reuse the resampled frame
            self._scaled = scaled_frame(self._rgb, rect, self.width(), self.height(), dpr)
            self._scaled_key = key
        return None if self._scaled is None else self._scaled[:2]

    # ------------------------------------------------------------------ mouse
    def _voxel_at(self, pos: QPointF) -> tuple[int, int, int] | None:
        if self.geom is None:
            return None
        row, col = self.screen_to_plane(pos)
        nr, nc = self.geom.shape
        if not (-0.5 <= row < nr - 0.5 and -0.5 <= col < nc - 0.5):
            return None
        z, y, x = self.geom.display_to_voxel(self.index(), round(row), round(col))
        return int(z), int(y), int(x)

    def mousePressEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        self.setFocus()
        self.activated.emit(self.axis)
        if self.geom is None:
            return
        btn, tool = e.button(), self.state.tool
        pos = e.position()
        d = {
            "start": pos,
            "window": self.state.window,
            "pan": self.state.pan[self.axis],
            "zoom": self.state.zoom[self.axis],
            "mode": None,
        }
        if btn == Qt.MouseButton.RightButton or (
            btn == Qt.MouseButton.LeftButton and tool == "window"
        ):
            d["mode"] = "window"
        elif btn == Qt.MouseButton.MiddleButton or (
            btn == Qt.MouseButton.LeftButton and tool == "pan"
        ):
            d["mode"] = "pan"
        elif btn == Qt.MouseButton.LeftButton and tool == "zoom":
            d["mode"] = "zoom"
        elif btn == Qt.MouseButton.LeftButton and tool in ("ruler", "rect", "ellipse"):
            d["mode"] = tool
            d["p0"] = d["p1"] = self.screen_to_plane(pos)
        elif btn == Qt.MouseButton.LeftButton and self.state.tool_handlers.get(tool) is not None:
            # edit tools (brush, eraser, fill): the handler gets (row, col) of the unflipped plane
            d["mode"], d["handler"] = "tool", self.state.tool_handlers[tool]
            self._drag = d
            d["handler"].press(self, self.axis, self.index(), self.tool_point(pos), e.modifiers())
            return
        elif btn == Qt.MouseButton.LeftButton:
            d["mode"] = "navigate"
            self._navigate(pos)
        self._drag = d

    def tool_point(self, pos: QPointF) -> tuple[float, float]:
        """Widget position → fractional (row, col) of the plane as cut from the volume."""
        row, col = self.screen_to_plane(pos)
        return self.geom.array_rc(row), col

    def _navigate(self, pos: QPointF) -> None:
        v = self._voxel_at(pos)
        if v is not None:
            self.state.set_cursor(*v)

    def mouseMoveEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        pos = e.position()
        self._emit_hover(pos)
        self.mouse_pos = pos
        d = self._drag
        if d is not None and d["mode"] == "tool":
            d["handler"].move(self, self.tool_point(pos))
        if self.state.tool in self.state.tool_handlers:
            self.update()  # the brush cursor follows the mouse
        if d is None or d["mode"] is None:
            return
        dx, dy = pos.x() - d["start"].x(), pos.y() - d["start"].y()
        if d["mode"] == "window":
            c0, w0 = d["window"]
            k = max(w0, 10.0) / 256.0
            self.state.set_window(c0 + dy * k, max(1.0, w0 + dx * k))
        elif d["mode"] == "pan":
            self.state.set_pan(self.axis, (d["pan"][0] + dx, d["pan"][1] + dy))
        elif d["mode"] == "zoom":
            self.state.set_zoom(self.axis, d["zoom"] * 1.01 ** (-dy))
        elif d["mode"] == "navigate":
            self._navigate(pos)
        else:
            d["p1"] = self.screen_to_plane(pos)
            self.update()

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        d, self._drag = self._drag, None
        if d is not None and d["mode"] == "tool":
            d["handler"].release(self, self.tool_point(e.position()))
            return
        if d is None or d["mode"] not in ("ruler", "rect", "ellipse") or self.geom is None:
            return
        p0, p1 = d["p0"], self.screen_to_plane(e.position())
        if abs(p1[0] - p0[0]) < 1e-6 and abs(p1[1] - p0[1]) < 1e-6:
            self.update()
            return
        self.add_measurement(d["mode"], p0, p1)

    def add_measurement(
        self, kind: str, p0: tuple[float, float], p1: tuple[float, float]
    ) -> Measurement:
        """Measure on the current slice; points are (row, col) of the displayed plane."""
        sp = self.geom.spacing
        if kind == "ruler":
            result = {"length_mm": ruler_length_mm(p0, p1, sp)}
        else:
            plane = self.geom.plane(self.index())
            if plane.ndim == 3:  # RGB: statistics of the mean of the channels
                plane = plane.mean(axis=2)
            result = roi_stats(plane, p0, p1, sp, kind)
        return self.state.add_measurement(
            Measurement(kind, self.axis, self.index(), [p0, p1], result)
        )

    def drag_preview(self) -> dict | None:
        d = self._drag
        return d if d is not None and d["mode"] in ("ruler", "rect", "ellipse") else None

    def _emit_hover(self, pos: QPointF) -> None:
        v = self._voxel_at(pos)
        if v is None:
            self.hovered.emit(None)
            return
        vol = self.geom.volume
        value = vol.voxels[v]
        lps = vol.index_to_lps(*v)
        self.hovered.emit(
            {
                "index": v,
                "value": value,
                "lps": tuple(float(a) for a in lps),
                "units": vol.meta.units,
                "axis": self.axis,
            }
        )

    def leaveEvent(self, _e) -> None:  # noqa: N802
        self.hovered.emit(None)
        self.mouse_pos = None
        self.update()

    def mouseDoubleClickEvent(self, _e: QMouseEvent) -> None:  # noqa: N802
        self.maximize.emit(self.axis)

    def wheelEvent(self, e: QWheelEvent) -> None:  # noqa: N802
        steps = e.angleDelta().y() / 120.0
        if steps == 0:
            return
        if e.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.state.set_zoom(self.axis, self.state.zoom[self.axis] * 1.15**steps)
        else:
            self.state.step_slice(self.axis, -int(np.sign(steps)) * max(1, int(abs(steps))))

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802
        k = e.key()
        step = {
            Qt.Key.Key_Up: -1,
            Qt.Key.Key_Left: -1,
            Qt.Key.Key_Down: 1,
            Qt.Key.Key_Right: 1,
            Qt.Key.Key_PageUp: -10,
            Qt.Key.Key_PageDown: 10,
        }.get(k)
        if step is not None:
            self.state.step_slice(self.axis, step)
        elif k == Qt.Key.Key_Home:
            self.state.set_slice(self.axis, 0)
        elif k == Qt.Key.Key_End:
            self.state.set_slice(self.axis, self.state.slice_count(self.axis) - 1)
        else:
            super().keyPressEvent(e)
