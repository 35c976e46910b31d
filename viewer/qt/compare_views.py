"""Views of an engine comparison (issue 7): three linked slice views and a per-slice strip.

:class:`CompareViews` shows engine A's mask, engine B's mask and the difference map (coloured by
kind: only A, only B, label swapped — :data:`inference.compare_metrics.DIFF_COLORS`) over the
image, each on a follower state linked to the main one (scroll, zoom, pan and window move
together, :class:`viewer.qt.analysis_link.StateLink`). The masks are the comparison's model-grid
label maps written back onto the volume grid (``ComparisonResult.labels_on_volume``).

:class:`SliceStrip` paints one cell per slice (source-volume order) coloured by disagreement
(flipped voxels of the shown pair: grey = none, yellow → red = more) and marks the current
slice; clicking a cell moves the cursor there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QWidget

from viewer.qt.analysis_link import follower_state
from viewer.qt.slice_view import SliceView
from viewer.state import LabelLayer, ViewState

__all__ = ["CompareViews", "SliceStrip", "strip_colors", "DIFF_LAYER", "MASK_LAYER"]

MASK_LAYER = "compare-mask"
DIFF_LAYER = "compare-diff"


def strip_colors(flips: np.ndarray) -> np.ndarray:
    """RGB ``uint8 [n, 3]`` per slice: grey when no voxel flips, yellow → red by √(flips/max)."""
    f = np.asarray(flips, dtype=np.float64)
    out = np.empty((len(f), 3), np.uint8)
    out[:] = (70, 70, 70)
    top = f.max() if len(f) else 0.0
    if top > 0:
        t = np.sqrt(f / top)
        bad = f > 0
        out[bad, 0] = 255
        out[bad, 1] = np.rint(220 * (1.0 - t[bad])).astype(np.uint8)
        out[bad, 2] = 0
    return out


class SliceStrip(QWidget):
    """One cell per slice coloured by disagreement; click = go to that slice."""

    slice_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("compare_strip")
        self.colors = np.zeros((0, 3), np.uint8)
        self.values = np.zeros(0)
        self.current = -1
        self.worst = -1
        self.setMinimumHeight(22)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Disagreement per slice (grey: none; yellow → red: more flipped voxels)")

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(300, 26)

    def set_values(self, flips_by_slice: np.ndarray, worst: int) -> None:
        """``flips_by_slice[z]`` for source-volume slice ``z``; ``worst`` highlighted."""
        self.values = np.asarray(flips_by_slice)
        self.colors = strip_colors(self.values)
        self.worst = int(worst)
        self.update()

    def set_current(self, z: int) -> None:
        if z != self.current:
            self.current = int(z)
            self.update()

    def cell_rect(self, i: int) -> QRectF:
        n = max(len(self.colors), 1)
        w = self.width() / n
        return QRectF(i * w, 0, w, self.height())

    def paintEvent(self, _e: Any) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(30, 30, 30))
        for i, (r, g, b) in enumerate(self.colors):
            p.fillRect(self.cell_rect(i).adjusted(0, 3, 0, -3), QColor(int(r), int(g), int(b)))
        if 0 <= self.worst < len(self.colors):
            p.setPen(QPen(QColor(255, 255, 255), 1, Qt.PenStyle.DotLine))
            p.drawRect(self.cell_rect(self.worst).adjusted(0, 1, -1, -2))
        if 0 <= self.current < len(self.colors):
            p.setPen(QPen(QColor(0, 200, 255), 2))
            p.drawRect(self.cell_rect(self.current).adjusted(1, 1, -1, -1))
        p.end()

    def mousePressEvent(self, e: QMouseEvent) -> None:  # noqa: N802 - Qt API
        n = len(self.colors)
        if n:
            i = int(np.clip(e.position().x() / max(self.width(), 1) * n, 0, n - 1))
            self.slice_clicked.emit(i)


class CompareViews(QWidget):
    """A | B | difference, linked to ``master`` (the main window's state)."""

    def __init__(self, master: ViewState, parent: QWidget | None = None):
        super().__init__(parent)
        self.master = master
        self.states: list[ViewState] = []
        self.links = []
        self.views: list[SliceView] = []
        self.captions: list[QLabel] = []
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(3)
        for i, title in enumerate(("A", "B", "difference")):
            st, link = follower_state(master)
            v = SliceView(st, 0, self)
            v.setObjectName(f"compare_view_{i}")
            v.setMinimumSize(160, 160)
            cap = QLabel(title, self)
            cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
            grid.addWidget(cap, 0, i)
            grid.addWidget(v, 1, i)
            self.states.append(st)
            self.links.append(link)
            self.views.append(v)
            self.captions.append(cap)
        grid.setRowStretch(1, 1)

    def show_pair(
        self,
        a_name: str,
        b_name: str,
        a: np.ndarray,
        b: np.ndarray,
        colors: dict[int, tuple[int, int, int]],
        names: dict[int, str],
    ) -> np.ndarray:
        """Show label maps ``a``, ``b`` (uint8 ``[z, y, x]`` on the volume grid) and their
        difference classes (returned, uint8 ``[z, y, x]``: 0 agree, 1 only A, 2 only B, 3 swap)."""
        from inference.compare_metrics import DIFF_COLORS, DIFF_NAMES, difference_classes

        diff = difference_classes(a, b)
        self.states[0].set_layer(LabelLayer(MASK_LAYER, a, colors, names=names, opacity=0.45))
        self.states[1].set_layer(LabelLayer(MASK_LAYER, b, colors, names=names, opacity=0.45))
        dcol = {k: v for k, v in DIFF_COLORS.items() if k}
        self.states[2].set_layer(
            LabelLayer(DIFF_LAYER, diff, dcol, names=dict(DIFF_NAMES), opacity=0.9)
        )
        self.captions[0].setText(f"A: {a_name}")
        self.captions[1].setText(f"B: {b_name}")
        n = {k: int((diff == k).sum()) for k in (1, 2, 3)}
        self.captions[2].setText(
            f"<span style='color:#ff8c00'>■</span> only A {n[1]}  "
            f"<span style='color:#00a0ff'>■</span> only B {n[2]}  "
            f"<span style='color:#e600e6'>■</span> swapped {n[3]}"
        )
        return diff

    def set_extra_layer(self, index: int, layer: Any, on: bool) -> None:
        """Add (or remove) a layer, e.g. the Grad-CAM heatmap, to view ``index``."""
        if on and layer is not None:
            self.states[index].set_layer(layer)
        elif layer is not None:
            self.states[index].remove_layer(layer.name)

    def clear(self) -> None:
        for st in self.states:
            for name in list(st.layers):
                st.remove_layer(name)
        for cap, t in zip(self.captions, ("A", "B", "difference"), strict=True):
            cap.setText(t)

    def detach(self) -> None:
        for link in self.links:
            link.detach()
        for v in self.views:
            v.detach()
