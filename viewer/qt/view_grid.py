"""The central area: axial / coronal / sagittal views in a 1x1 or 2x2 layout, and a slider."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QSlider, QWidget

from viewer.qt.slice_view import SliceView
from viewer.state import AXES, ViewState

__all__ = ["ViewGrid"]


class ViewGrid(QWidget):
    """Holds the three :class:`SliceView`; observes ``layout`` / ``cursor`` / ``volume``."""

    def __init__(self, state: ViewState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.views = [SliceView(state, a, self) for a in range(3)]
        self.info = QLabel(self)
        self.info.setObjectName("mpr_info")
        self.info.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.info.setStyleSheet("background: black; color: #bbb;")
        self.info.setWordWrap(True)
        self.slider = QSlider(Qt.Orientation.Vertical, self)
        self.slider.setObjectName("slice_slider")
        self.slider.setInvertedAppearance(True)
        self.slider.setInvertedControls(True)
        self.slider.valueChanged.connect(self._slider_moved)
        self.grid = QGridLayout()
        self.grid.setSpacing(2)
        self.grid.setContentsMargins(0, 0, 0, 0)
        outer = QHBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(2)
        outer.addLayout(self.grid, 1)
        outer.addWidget(self.slider)
        for v in self.views:
            v.activated.connect(lambda axis: self.state.set_layout(active_axis=axis))
            v.maximize.connect(self._toggle_max)
        state.subscribe("layout", self._apply_layout)
        state.subscribe("cursor", self._sync_slider)
        state.subscribe("volume", self._on_volume)
        self._apply_layout()

    def active_view(self) -> SliceView:
        return self.views[self.state.active_axis]

    def _toggle_max(self, axis: int) -> None:
        self.state.set_layout("1x1" if self.state.layout == "2x2" else "2x2", axis)

    def _apply_layout(self, **_) -> None:
        for w in (*self.views, self.info):
            self.grid.removeWidget(w)
            w.hide()
        if self.state.layout == "2x2":
            for w, (r, c) in zip(
                (self.views[0], self.views[1], self.views[2], self.info),
                ((0, 0), (0, 1), (1, 0), (1, 1)),
                strict=True,
            ):
                self.grid.addWidget(w, r, c)
                w.show()
        else:
            v = self.active_view()
            self.grid.addWidget(v, 0, 0)
            v.show()
        for v in self.views:
            v.show_crosshair = self.state.layout == "2x2"
        self._sync_slider()

    def _on_volume(self, volume=None, **_) -> None:
        if volume is None:
            self.info.setText("")
        else:
            nz, ny, nx = volume.shape
            sz, sy, sx = volume.spacing
            self.info.setText(
                f"{volume.meta.modality}  {nx} x {ny} x {nz}\n"
                f"voxel {sx:.3g} x {sy:.3g} x {sz:.3g} mm\n\n"
                "Click in a view to move the crosshair;\ndouble-click to maximise it."
            )
        self._sync_slider()

    def _sync_slider(self, **_) -> None:
        ax = self.state.active_axis
        n = self.state.slice_count(ax)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, n - 1))
        self.slider.setValue(self.state.cursor[ax])
        self.slider.setToolTip(f"{AXES[ax]} slice")
        self.slider.blockSignals(False)

    def _slider_moved(self, value: int) -> None:
        self.state.set_slice(self.state.active_axis, value)
