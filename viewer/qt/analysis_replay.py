"""Model-input replay (issue 6): exactly the array the network receives for the current slice.

:func:`inference.preprocess_input.model_input_for_slice` builds it (windowing, normalisation,
in-plane resampling, padding, reorientation — the same code as the pipeline); this view shows one
channel of it, mapped linearly from the model's value range (``0..1`` or ``-1..1``; the array's
own min/max for ``none``) to grey, nearest-neighbour scaled (square pixels: the model grid is
isotropic in-plane), with shape, spacing, value range, padding and orientation printed, so a
wrong preprocessing step is visible. Computed in a worker, debounced, latest request wins.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QSpinBox, QVBoxLayout, QWidget

if TYPE_CHECKING:  # pragma: no cover
    from viewer.qt.main_window import MainWindow

__all__ = ["ModelInputPanel", "input_to_u8"]


def input_to_u8(x: np.ndarray, normalize: str) -> np.ndarray:
    """One channel ``[H, W]`` of the network input → uint8 over the model's value range."""
    lo, hi = (-1.0, 1.0) if normalize == "-1..1" else (0.0, 1.0)
    if normalize == "none":
        lo, hi = float(x.min()), float(x.max())
        hi = hi if hi > lo else lo + 1.0
    return np.rint(np.clip((x - lo) / (hi - lo), 0.0, 1.0) * 255.0).astype(np.uint8)


def describe_input(x: np.ndarray, info: dict[str, Any]) -> str:
    g = info["geometry"]
    o = info["orientation"]
    sy, sx = g["resized_spacing_mm"]
    top, bottom, left, right = g["pad_top_bottom_left_right"]
    return (
        f"array float32 {list(x.shape)} (C, H, W), slice in channel {x.shape[0] // 2}\n"
        f"values {info['value_range'][0]:.3f} … {info['value_range'][1]:.3f} "
        f"(normalise {info['normalize']}, window {info['window']['center']:g}/"
        f"{info['window']['width']:g} HU, padding value {info['pad_value']:.3f})\n"
        f"resampled {g['in_shape'][0]}×{g['in_shape'][1]} @ {g['in_spacing_mm'][0]:.3f}×"
        f"{g['in_spacing_mm'][1]:.3f} mm → {g['resized'][0]}×{g['resized'][1]} @ "
        f"{sy:.3f}×{sx:.3f} mm; padded top {top} bottom {bottom} left {left} right {right}\n"
        f"orientation perm {o['perm']} flip {o['flip']} ({o['plane']}, oblique "
        f"{o['oblique_deg']:.1f}°); network slice {info['canonical_z']} ({info['z_meaning']})"
    )


class ModelInputPanel(QWidget):
    """Shows the network input of the current slice. ``last`` holds (array, info) shown."""

    def __init__(self, win: MainWindow, parent: QWidget | None = None):
        super().__init__(parent)
        self.win = win
        self.state = win.state
        self.last: tuple[np.ndarray, dict[str, Any]] | None = None
        self._serial = 0
        self._u8: np.ndarray | None = None
        self.channel = QSpinBox(self)
        self.channel.setPrefix("channel ")
        self.channel.setRange(0, 0)
        self.channel.valueChanged.connect(lambda *_: self._show())
        self.image = QLabel(self)
        self.image.setObjectName("model_input_image")
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(200, 200)
        self.image.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.image.setStyleSheet("background: black;")
        self.text = QLabel("", self)
        self.text.setObjectName("model_input_text")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout()
        row.addWidget(QLabel("What the network received for this slice", self), 1)
        row.addWidget(self.channel)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(row)
        lay.addWidget(self.image, 1)
        lay.addWidget(self.text)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(30)
        self.timer.timeout.connect(self.request)
        for ev in ("cursor", "volume"):
            self.state.subscribe(ev, self._schedule)

    def _schedule(self, **_: Any) -> None:
        if self.isVisible() and self.state.volume is not None:
            self.timer.start()

    def showEvent(self, e: Any) -> None:  # noqa: N802 - Qt API
        super().showEvent(e)
        self._schedule()

    def request(self) -> None:
        seg = getattr(self.win, "segmentation", None)
        vol, pkg = self.state.volume, (seg.package() if seg is not None else None)
        if vol is None or pkg is None:
            self.text.setText("Open a series and choose a model in the Segmentation panel")
            return
        z = int(self.state.cursor[0])
        self._serial += 1
        serial = self._serial

        def fn(progress, cancel):
            from inference.preprocess_input import model_input_for_slice

            return model_input_for_slice(vol, z, pkg)

        job = self.win.runner.submit(fn, name="model input", key="model-input")
        job.result.connect(lambda v, s=serial: self._done(v, s))
        job.error.connect(
            lambda exc, tb: self.win.errors.present(exc, title="Model input", details=tb)
        )

    def _done(self, value: tuple[np.ndarray, dict[str, Any]], serial: int) -> None:
        if serial != self._serial:
            return
        self.last = value
        x, _info = value
        self.channel.blockSignals(True)
        self.channel.setRange(0, x.shape[0] - 1)
        if self.channel.value() > x.shape[0] - 1 or x.shape[0] > 1 and self._u8 is None:
            self.channel.setValue(x.shape[0] // 2)
        self.channel.blockSignals(False)
        self._show()

    def _show(self) -> None:
        if self.last is None:
            return
        x, info = self.last
        c = min(self.channel.value(), x.shape[0] - 1)
        self._u8 = np.ascontiguousarray(input_to_u8(x[c], info["normalize"]))
        h, w = self._u8.shape
        img = QImage(self._u8.data, w, h, w, QImage.Format.Format_Grayscale8)
        pm = QPixmap.fromImage(img).scaled(
            self.image.size(), Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.FastTransformation,
        )  # fmt: skip
        self.image.setPixmap(pm)
        self.text.setText(describe_input(x, info))

    def resizeEvent(self, e: Any) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(e)
        self._show()

    def report(self) -> dict[str, Any]:
        """JSON-serialisable description of the input shown (for exports)."""
        if self.last is None:
            return {}
        return json.loads(json.dumps(self.last[1]))

    def detach(self) -> None:
        for ev in ("cursor", "volume"):
            self.state.unsubscribe(ev, self._schedule)
