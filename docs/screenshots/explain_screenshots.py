"""Screenshots of the Explain and Compare-engines docks (issues 6 and 7), offscreen.

A generated phantom chest CT (:func:`inference.phantom.generate_volume`, with lesions) is shown
in the real window with the shipped model ``lung-ct-unet``; the views are saved with
``QWidget.grab()``:

* ``preprocess-clahe.png``   CLAHE side by side with the original (linked view in the dock)
* ``preprocess-canny.png``   Canny edges as an orange overlay on the main view
* ``explain-gradcam.png``    Grad-CAM++ of "left lung" on a slice with a lesion, beside the ONNX
  mask outline
* ``explain-model-input.png`` the network input of the slice, with its geometry printed
* ``compare.png``            ONNX FP32 vs ONNX INT8: verdict, strip, A | B | difference (zoomed
  3x on the worst slice's differences), table

Usage: ``python docs/screenshots/explain_screenshots.py``
"""

from __future__ import annotations

import sys
import time

import numpy as np
from _shots import HERE, wait
from PySide6.QtCore import Qt

from viewer.qt.app import create_app
from viewer.qt.main_window import MainWindow
from viewer.volume import Volume, VolumeMeta


def phantom() -> tuple[Volume, np.ndarray]:
    from inference.phantom import generate_volume

    spacing = (5.0, 0.9, 0.9)
    hu, lab, _info = generate_volume(
        np.random.default_rng(7), shape=(12, 384, 384), spacing=spacing, z_range=(0.3, 0.6),
        lesions=3,
    )  # fmt: skip
    meta = VolumeMeta(modality="CT", body_part="CHEST", series_description="Phantom chest CT",
                      patient_name="Phantom^Demo")  # fmt: skip
    vol = Volume(np.rint(hu).astype(np.int16), spacing, direction=np.diag([1.0, 1.0, -1.0]),
                 meta=meta)  # fmt: skip
    return vol, lab


def idle(app, w) -> None:
    wait(app, lambda: True)
    time.sleep(0.1)
    wait(app, lambda: w.runner.active() == 0)


def zoom_on_differences(app, w, panel, zoom: float = 3.0) -> None:
    """Zoom the linked views 3x around the differences of the current slice."""
    diff = panel.views.states[2].layers["compare-diff"].labels[w.state.cursor[0]]
    rows, cols = np.nonzero(diff)
    if not len(rows):
        return
    view = panel.views.views[2]
    w.state.set_zoom(0, 1.0, (0.0, 0.0))
    wait(app, lambda: True)
    rect = view.image_rect()
    nr, nc = diff.shape
    r, c = float(np.median(rows)), float(np.median(cols))
    pan = (
        rect.width() * zoom * (0.5 - (c + 0.5) / nc),
        rect.height() * zoom * (0.5 - (r + 0.5) / nr),
    )
    w.state.set_zoom(0, zoom, pan)
    wait(app, lambda: True)


def main() -> int:
    app = create_app()
    w = MainWindow(recording_errors=True)
    w.resize(1700, 1000)
    w.show()
    w.state.set_hide_identity(True)
    vol, truth = phantom()
    w.set_volume(vol, "phantom")
    w.state.set_window(-600, 1500)
    w.segmentation.select_model("lung-ct-unet")
    job = w.segmentation.run()
    wait(app, lambda: job.state not in ("pending", "running"))
    idle(app, w)
    # the slice with the largest (true) lesion: the shipped model leaves it out of the lung mask
    z = int(np.argmax((truth == 3).sum(axis=(1, 2))))
    w.state.set_slice(0, z)
    for d in ("Studies", "Measurements"):
        w.docks[d].hide()
    ex = w.explain
    dock = w.docks["Explain"]
    ex.show_tab("preprocess")
    w.resizeDocks([dock], [700], Qt.Orientation.Horizontal)
    pre = ex.preprocess
    pre.filter_box.setCurrentIndex(pre.filter_box.findData("clahe"))
    pre.mode_box.setCurrentText("side by side")
    pre.sliders["clip_limit"].set_value(3.0)
    pre.schedule()
    idle(app, w)
    w.grab().save(str(HERE / "preprocess-clahe.png"))

    pre.filter_box.setCurrentIndex(pre.filter_box.findData("canny"))
    pre.mode_box.setCurrentText("overlay")
    idle(app, w)
    w.grab().save(str(HERE / "preprocess-canny.png"))
    pre.mode_box.setCurrentText("off")

    ex.show_tab("gradcam")
    cam = ex.gradcam
    cam.refresh_package()
    cam.label_box.setCurrentIndex(cam.label_box.findText("left lung"))
    cam.method_box.setCurrentIndex(cam.method_box.findData("gradcam++"))
    cam.region_box.setCurrentIndex(cam.region_box.findData("onnx"))
    w.segmentation.controls.outline.setChecked(True)
    cam.run()
    idle(app, w)
    w.grab().save(str(HERE / "explain-gradcam.png"))

    ex.show_tab("model_input")
    idle(app, w)
    wait(app, lambda: ex.model_input.last is not None)
    w.grab().save(str(HERE / "explain-model-input.png"))
    w.state.remove_layer("gradcam")

    cmp_dock = w.docks["Compare engines"]
    cmp_dock.show()
    cmp_dock.raise_()
    w.resizeDocks([cmp_dock], [1050], Qt.Orientation.Horizontal)
    panel = w.compare
    panel.set_engines("onnx", "onnx-int8")
    job = panel.run()
    wait(app, lambda: job.state not in ("pending", "running"))
    idle(app, w)
    panel.jump_to_worst()
    idle(app, w)
    zoom_on_differences(app, w, panel)
    w.grab().save(str(HERE / "compare.png"))
    print("errors:", [str(r) for r in w.errors.records])
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
