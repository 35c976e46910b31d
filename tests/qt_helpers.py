"""Helpers for the headless Qt tests (synthetic series, real mouse events)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QWidget

from viewer.dicom.synth import write_series

SPACING = (3.0, 0.6, 0.8)  # (sz, sy, sx) mm: anisotropic on purpose
SHAPE = (12, 64, 80)


def phantom(shape=SHAPE) -> np.ndarray:
    """Air, a 100 HU square [20:40, 30:50] on every slice, slice index x 10 stored at [0, 0]."""
    nz, ny, nx = shape
    hu = np.full(shape, -1000, np.int16)
    hu[:, 20:40, 30:50] = 100
    hu[:, 0, 0] = np.arange(nz) * 10
    return hu


def write_phantom(folder: Path, shape=SHAPE, **kw) -> Path:
    kw.setdefault("series_description", "Phantom")
    write_series(folder, phantom(shape), spacing=SPACING, **kw)
    return folder


def mouse(
    widget: QWidget,
    kind: str,
    pos: QPointF,
    button=Qt.MouseButton.LeftButton,
    modifiers=Qt.KeyboardModifier.NoModifier,
) -> None:
    """Send a real press/move/release/double event at ``pos`` (widget coordinates)."""
    types = {
        "press": QEvent.Type.MouseButtonPress,
        "move": QEvent.Type.MouseMove,
        "release": QEvent.Type.MouseButtonRelease,
        "double": QEvent.Type.MouseButtonDblClick,
    }
    buttons = Qt.MouseButton.NoButton if kind == "release" else button
    if kind == "move" and button is None:
        buttons = Qt.MouseButton.NoButton
    ev = QMouseEvent(
        types[kind],
        QPointF(pos),
        widget.mapToGlobal(QPointF(pos)),
        button if kind != "move" else Qt.MouseButton.NoButton,
        buttons,
        modifiers,
    )
    QApplication.sendEvent(widget, ev)


def drag(
    widget: QWidget, a: QPointF, b: QPointF, button=Qt.MouseButton.LeftButton, steps: int = 4
) -> None:
    mouse(widget, "press", a, button)
    for i in range(1, steps + 1):
        t = i / steps
        mouse(
            widget,
            "move",
            QPointF(a.x() + (b.x() - a.x()) * t, a.y() + (b.y() - a.y()) * t),
            button,
        )
    mouse(widget, "release", b, button)


def wheel(
    widget: QWidget, pos: QPointF, delta: int, modifiers=Qt.KeyboardModifier.NoModifier
) -> None:
    ev = QWheelEvent(
        QPointF(pos),
        widget.mapToGlobal(QPointF(pos)),
        QPoint(0, 0),
        QPoint(0, delta),
        Qt.MouseButton.NoButton,
        modifiers,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, ev)
