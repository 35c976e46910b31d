"""Screenshots of the Edit dock (reader edits) on the real window, offscreen.

Opens the demo study, runs the installed lung model, then edits with real mouse events on the
axial view: a brush stroke (added), an eraser stroke over an AI label (removed) and a new reader
label. Saves ``edit.png`` (labels), ``edit-provenance.png`` (provenance colours) and
``edit-dock.png`` (the dock alone).

Usage: ``python docs/screenshots/edit_screenshots.py [nz]`` (default 32 slices of 512², to keep
the model run short; set ``CLINICAL_VIEWER_HOME`` to reuse a demo study written earlier).
"""

from __future__ import annotations

import sys

import numpy as np
from _shots import HERE, wait
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from viewer.qt.app import create_app, start_demo
from viewer.qt.main_window import MainWindow


def stroke(view, points) -> None:
    """A left-button drag through plane points (row, col) with real mouse events."""
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    kinds = [QEvent.Type.MouseButtonPress] + [QEvent.Type.MouseMove] * (len(points) - 1)
    for kind, (r, c) in zip(kinds, points, strict=True):
        pos = view.plane_to_screen(r, c)
        btn = left if kind == QEvent.Type.MouseButtonPress else none
        ev = QMouseEvent(
            kind, pos, view.mapToGlobal(pos), btn, left, Qt.KeyboardModifier.NoModifier
        )
        QApplication.sendEvent(view, ev)
    pos = view.plane_to_screen(*points[-1])
    ev = QMouseEvent(
        QEvent.Type.MouseButtonRelease,
        pos,
        view.mapToGlobal(pos),
        left,
        none,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(view, ev)
    hover = QMouseEvent(
        QEvent.Type.MouseMove,
        QPointF(pos),
        view.mapToGlobal(pos),
        none,
        none,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(view, hover)  # the brush cursor shows where the stroke ended


def main() -> int:
    nz = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    app = create_app()
    w = MainWindow(recording_errors=True)
    w.resize(1500, 950)
    w.show()
    loaded = []
    w.volume_loaded.connect(loaded.append)
    start_demo(w, segment=True, shape=(nz, 512, 512))
    wait(app, lambda: loaded)
    wait(app, lambda: w.segmentation.job is not None or w.errors.records, timeout=60)
    wait(app, lambda: w.segmentation.job is None)
    layer = w.state.layers.get("segmentation")
    if layer is None:
        print("no segmentation result:", [r.message for r in w.errors.records])
        return 1
    labels = layer.current_labels()
    # the slice with the most lesion voxels (the highest label value), else the middle one
    top = int(labels.max())
    z = int(np.argmax((labels == top).sum(axis=(1, 2)))) if top else nz // 2
    w.state.set_layout("1x1", 0)
    w.state.set_cursor(z, *w.state.cursor[1:])
    w.docks["Edit"].raise_()
    w.docks["Studies"].hide()
    w.docks["Measurements"].hide()
    wait(app, lambda: True)
    v = w.grid.views[0]
    panel, ctrl = w.edit_panel, w.edit
    names = {n.lower(): k for k, n in layer.names.items()}
    lung = next(
        (k for n, k in names.items() if "lung" in n and "right" in n),
        next(iter(sorted(layer.colors))),
    )
    # 1) brush: add lung where the model missed it (a stroke across the right lung's edge)
    panel.label_box.setCurrentIndex(panel.label_box.findData(lung))
    panel.set_size(12.0)
    w.state.set_tool("brush")
    ys, xs = np.nonzero(labels[z] == lung)
    cy, cx = (float(ys.mean()), float(xs.mean())) if len(ys) else (256.0, 160.0)
    stroke(v, [(cy - 40, cx - 70 + 10 * i) for i in range(8)])
    # 2) eraser: remove part of the AI result
    w.state.set_tool("eraser")
    panel.set_size(15.0)
    stroke(v, [(cy + 30 + 4 * i, cx - 10 + 8 * i) for i in range(8)])
    # 3) a finding the model does not know: a reader label, painted with the brush
    ctrl.prompter.answers.update({"label_name": "nodule", "label_color": (255, 0, 255)})
    panel.add_label()
    panel.set_size(9.0)
    w.state.set_tool("brush")
    stroke(v, [(cy - 5, cx + 5), (cy - 3, cx + 9), (cy, cx + 10)])
    panel.review.review.setCurrentIndex(panel.review.review.findData("needs_attention"))
    panel.review.reader.setText("Dr Demo")
    panel.review.reader.editingFinished.emit()
    wait(app, lambda: "Autosaved" in panel.saved_label.text(), timeout=30)
    panel.review.refresh()
    w.grab().save(str(HERE / "edit.png"))
    panel.review.provenance.setChecked(True)
    wait(app, lambda: True)
    w.grab().save(str(HERE / "edit-provenance.png"))
    w.docks["Edit"].grab().save(str(HERE / "edit-dock.png"))
    print("errors:", [r.message for r in w.errors.records])
    print("provenance:", ctrl.seg.provenance_counts())
    ctrl.prompter.answers["close"] = "Discard edits"
    w.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
