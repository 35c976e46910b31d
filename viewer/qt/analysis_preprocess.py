"""Preprocessing views (issue 6): CLAHE, equalisation, Canny, Sobel, denoise with live sliders.

Controls are built from the filter registry's :class:`viewer.preprocess.ParamSpec`; every change
restarts a ~30 ms debounce timer, and the preview is computed in a worker through
``win.runner.submit(..., key="preprocess-preview")`` — the runner cancels the previous request and
drops its result, and the panel also ignores any result whose request serial is not the latest,
so dragging a slider never queues or shows stale work. The filters run on the *windowed 8-bit*
slice (:func:`viewer.preprocess.windowed_uint8`), never on truncated 16-bit values.

Display: ``side by side`` (a second slice view on a follower state linked to the main one:
scroll, zoom, pan and window move together) or ``overlay`` (an :class:`SliceImageLayer` on the
main views: edges in a colour, other filters as an opaque image). Parameters are remembered in
the application's settings; :meth:`PreprocessPanel.current_views` returns what a report needs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from viewer.qt.analysis_link import SliceImageLayer, follower_state, rgba_from_gray, rgba_from_rgb
from viewer.qt.slice_view import SliceView

if TYPE_CHECKING:  # pragma: no cover
    from viewer.qt.main_window import MainWindow

__all__ = ["PreprocessPanel", "PREVIEW_LAYER", "OVERLAY_LAYER", "EDGE_COLORS", "filter_preview"]

log = logging.getLogger(__name__)

PREVIEW_LAYER = "preprocess"  # on the linked view's state
OVERLAY_LAYER = "preprocess-overlay"  # on the main state
MODES = ("side by side", "overlay", "off")
EDGE_COLORS: dict[str, tuple[int, int, int]] = {
    "orange": (255, 64, 0),
    "green": (0, 230, 60),
    "cyan": (0, 220, 255),
    "magenta": (240, 0, 200),
}
DEBOUNCE_MS = 30


def filter_preview(
    slice_values: np.ndarray,
    window: tuple[float, float],
    name: str,
    params: dict[str, Any],
    *,
    invert: bool = False,
    overlay: bool = False,
    color: tuple[int, int, int] = (255, 64, 0),
) -> np.ndarray:
    """RGBA ``uint8 [y, x, 4]`` preview of filter ``name`` on one slice (worker side, no Qt).

    ``slice_values`` are the slice's HU / stored values ``[y, x]``; they are windowed to 8 bits
    with ``window = (center, width)`` first. Side by side (``overlay=False``) the result is opaque
    grey; as an overlay an edge filter is drawn in ``color`` where edges are (transparent
    elsewhere), any other filter opaque.
    """
    from viewer.preprocess import FILTERS, apply_filter, windowed_uint8

    img = windowed_uint8(slice_values, window[0], window[1], invert=invert)
    out = apply_filter(name, img, **params)
    if FILTERS[name].output == "edges":
        if overlay:
            rgb = np.empty((*out.shape, 3), np.uint8)
            rgb[:] = np.asarray(color, np.uint8)
            return rgba_from_rgb(rgb, out != 0)
        from viewer.preprocess import edges_overlay

        return rgba_from_rgb(edges_overlay(img, out, color))
    return rgba_from_gray(out)


class _ParamSlider(QWidget):
    """An integer QSlider mapped onto a ParamSpec's range/step, with a value label."""

    changed = Signal()

    def __init__(self, spec: Any, value: float, parent: QWidget | None = None):
        super().__init__(parent)
        self.spec = spec
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setObjectName(f"param_{spec.name}")
        steps = int(round((spec.maximum - spec.minimum) / spec.step))
        self.slider.setRange(0, max(steps, 1))
        self.label = QLabel(self)
        self.label.setMinimumWidth(64)
        tip = spec.help or spec.label
        self.slider.setToolTip(f"{tip} [{spec.minimum:g} … {spec.maximum:g}] {spec.unit}".strip())
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.label)
        self.set_value(value)
        self.slider.valueChanged.connect(self._moved)

    def value(self) -> float | int:
        v = self.spec.minimum + self.slider.value() * self.spec.step
        v = min(max(v, self.spec.minimum), self.spec.maximum)
        return int(round(v)) if self.spec.kind in ("int", "odd") else round(float(v), 6)

    def set_value(self, v: float) -> None:
        i = int(round((float(v) - self.spec.minimum) / self.spec.step))
        self.slider.blockSignals(True)
        self.slider.setValue(i)
        self.slider.blockSignals(False)
        self._label()

    def _label(self) -> None:
        v = self.value()
        self.label.setText(f"{v:g} {self.spec.unit}".strip())

    def _moved(self, _i: int) -> None:
        self._label()
        self.changed.emit()


class PreprocessPanel(QWidget):
    """Filter chooser, live parameter sliders, mode, and a linked side-by-side view.

    Attributes for tests and reports: ``applied`` (previews applied so far), ``displayed``
    (filter, params, slice, window of the preview on screen), ``requests`` (previews requested).
    """

    def __init__(self, win: MainWindow, parent: QWidget | None = None):
        super().__init__(parent)
        self.win = win
        self.state = win.state
        self.settings = win.settings
        self.applied = 0
        self.requests = 0
        self.displayed: dict[str, Any] | None = None
        self._serial = 0
        self.sliders: dict[str, _ParamSlider] = {}
        from viewer.preprocess import FILTERS

        self._filters = FILTERS
        self.filter_box = QComboBox(self)
        self.filter_box.setObjectName("pre_filter")
        for spec in FILTERS.values():
            self.filter_box.addItem(spec.label, spec.name)
        self.mode_box = QComboBox(self)
        self.mode_box.setObjectName("pre_mode")
        self.mode_box.addItems(MODES)
        self.color_box = QComboBox(self)
        for name in EDGE_COLORS:
            self.color_box.addItem(name, name)
        self.params_form = QFormLayout()
        self.info = QLabel("", self)
        self.info.setWordWrap(True)
        self.linked_state, self.link = follower_state(self.state)
        self.view = SliceView(self.linked_state, 0, self)
        self.view.setObjectName("pre_linked_view")
        self.view.setMinimumSize(200, 200)
        form = QFormLayout()
        form.addRow("Filter", self.filter_box)
        form.addRow("Show", self.mode_box)
        form.addRow("Edge colour", self.color_box)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(form)
        lay.addLayout(self.params_form)
        lay.addWidget(self.info)
        lay.addWidget(self.view, 1)
        lay.addStretch(0)  # takes the space of the hidden view in overlay / off modes
        self._layout = lay
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(DEBOUNCE_MS)
        self.timer.timeout.connect(self._request)
        self._restore()
        self.filter_box.currentIndexChanged.connect(self._filter_changed)
        self.mode_box.currentIndexChanged.connect(self._mode_changed)
        self.color_box.currentIndexChanged.connect(lambda *_: self._settings_changed())
        for ev in ("cursor", "window", "volume"):
            self.state.subscribe(ev, self._on_state)
        self._build_sliders()
        self._show_view()

    # ------------------------------------------------------------------ settings
    def _key(self, *parts: str) -> str:
        return "preprocess/" + "/".join(parts)

    def _restore(self) -> None:
        name = str(self.settings.value(self._key("filter"), "clahe"))
        i = self.filter_box.findData(name)
        self.filter_box.setCurrentIndex(max(i, 0))
        self.mode_box.setCurrentText(str(self.settings.value(self._key("mode"), MODES[0])))
        c = self.color_box.findData(str(self.settings.value(self._key("color"), "orange")))
        self.color_box.setCurrentIndex(max(c, 0))

    def params_for(self, name: str) -> dict[str, float | int]:
        """The remembered (or default) parameters of filter ``name``, validated."""
        from viewer.preprocess import default_params, validate_params

        out: dict[str, Any] = {}
        for k, v in default_params(name).items():
            out[k] = self.settings.value(self._key(name, k), v)
        try:
            return validate_params(name, {k: float(v) for k, v in out.items()})
        except ValueError:
            log.warning("stored parameters of %s are invalid; using defaults", name)
            return default_params(name)

    def filter_name(self) -> str:
        return str(self.filter_box.currentData())

    def params(self) -> dict[str, float | int]:
        """The parameters currently set on the sliders."""
        return {k: s.value() for k, s in self.sliders.items()}

    def mode(self) -> str:
        return self.mode_box.currentText()

    def color(self) -> tuple[int, int, int]:
        return EDGE_COLORS[str(self.color_box.currentData())]

    def current_views(self) -> dict[str, Any]:
        """What goes into a report: filter, label, validated params, mode, slice and window."""
        from viewer.preprocess import describe

        d = describe(self.filter_name(), self.params())
        d.update(
            mode=self.mode(),
            slice=int(self.state.cursor[0]),
            window={"center": self.state.window[0], "width": self.state.window[1]},
        )
        if self._filters[self.filter_name()].output == "edges":
            d["edge_color_rgb"] = list(self.color())
        return d

    def _settings_changed(self) -> None:
        name = self.filter_name()
        self.settings.setValue(self._key("filter"), name)
        self.settings.setValue(self._key("mode"), self.mode())
        self.settings.setValue(self._key("color"), str(self.color_box.currentData()))
        for k, v in self.params().items():
            self.settings.setValue(self._key(name, k), v)
        self.schedule()

    # ------------------------------------------------------------------ controls
    def _build_sliders(self) -> None:
        while self.params_form.rowCount():
            self.params_form.removeRow(0)
        self.sliders = {}
        name = self.filter_name()
        values = self.params_for(name)
        for spec in self._filters[name].params:
            s = _ParamSlider(spec, values[spec.name], self)
            s.changed.connect(self._settings_changed)
            self.sliders[spec.name] = s
            self.params_form.addRow(spec.label, s)
        self.color_box.setEnabled(self._filters[name].output == "edges")
        self.info.setText(self._filters[name].description)
        self.schedule()

    def _filter_changed(self, *_: Any) -> None:
        self.settings.setValue(self._key("filter"), self.filter_name())
        self._build_sliders()

    def _mode_changed(self, *_: Any) -> None:
        m = self.mode()
        self._show_view()
        if m != "overlay":
            self.state.remove_layer(OVERLAY_LAYER)
        if m != "side by side":
            self.linked_state.remove_layer(PREVIEW_LAYER)
        self._settings_changed()

    def _show_view(self) -> None:
        side = self.mode() == "side by side"
        self.view.setVisible(side)
        self._layout.setStretch(self._layout.count() - 1, 0 if side else 1)

    def _on_state(self, **_: Any) -> None:
        self.schedule()

    # ------------------------------------------------------------------ previews
    def schedule(self) -> None:
        """(Re)start the debounce timer; the preview follows ~30 ms after the last change."""
        if self.mode() != "off" and self.state.volume is not None and self.isVisible():
            self.timer.start()

    def showEvent(self, e: Any) -> None:  # noqa: N802 - Qt API
        """Hidden panels compute nothing; catch up when shown."""
        super().showEvent(e)
        self.schedule()

    def _request(self) -> None:
        vol = self.state.volume
        if vol is None or self.mode() == "off":
            return
        if vol.is_rgb:
            self.info.setText("Preprocessing views need a grey-level series")
            return
        z = int(self.state.cursor[0])
        plane = vol.voxels[z]
        name, params, window = self.filter_name(), self.params(), self.state.window
        overlay, color, invert = self.mode() == "overlay", self.color(), bool(vol.meta.invert)
        self._serial += 1
        self.requests += 1
        serial = self._serial
        request = {
            "filter": name, "params": params, "slice": z, "window": window, "mode": self.mode()
        }  # fmt: skip

        def fn(progress, cancel):
            return filter_preview(
                plane, window, name, params, invert=invert, overlay=overlay, color=color
            )

        job = self.win.runner.submit(fn, name="preprocess preview", key="preprocess-preview")
        job.result.connect(lambda rgba, s=serial, r=request, v=vol: self._apply(rgba, s, r, v))
        job.error.connect(
            lambda exc, tb: self.win.errors.present(exc, title="Preview failed", details=tb)
        )

    def _apply(self, rgba: np.ndarray, serial: int, request: dict[str, Any], vol: Any) -> None:
        if serial != self._serial or vol is not self.state.volume:
            return  # a newer request exists: never show stale work
        z = request["slice"]
        if request["mode"] == "overlay":
            opacity = 1.0 if self._filters[request["filter"]].output == "edges" else 0.85
            self.state.set_layer(SliceImageLayer(OVERLAY_LAYER, rgba, opacity=opacity, z=z))
        else:
            self.linked_state.set_layer(SliceImageLayer(PREVIEW_LAYER, rgba, z=z))
        self.applied += 1
        self.displayed = request

    def detach(self) -> None:
        for ev in ("cursor", "window", "volume"):
            self.state.unsubscribe(ev, self._on_state)
        self.link.detach()
        self.view.detach()
