"""Compare-engines dock (issue 7) headless: a deliberately perturbed INT8 file is caught on the
slices it breaks; table, verdict, strip, jump-to-worst and linked views."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from viewer.volume import Volume, VolumeMeta

pytestmark = pytest.mark.timeout(120)

LESION_SLICES = (1, 2)


@pytest.fixture
def gated_models():
    """A user model package: ONNX FP32 = the gated net, "INT8" = it with one weight changed."""
    from compare_fixtures import GATED_WEIGHT, export_onnx, gated_model, perturb_onnx, write_package

    root = Path(os.environ["CLINICAL_VIEWER_MODELS"])
    build = root.parent / "build"
    build.mkdir(parents=True, exist_ok=True)
    good = export_onnx(gated_model(), build / "model.onnx")
    bad = perturb_onnx(good, build / "model.int8.onnx", GATED_WEIGHT, (2, 1, 0, 0), 3.0)
    write_package(root / "gated", "gated", {"onnx": good, "onnx_int8": bad})
    return root / "gated"


def gated_volume() -> Volume:
    from compare_fixtures import gated_input

    hu = gated_input(nz=8, lesion_slices=LESION_SLICES)[:, 0] * 2.0 - 1.0  # window 0/2 → [0, 1]
    meta = VolumeMeta(modality="CT", series_description="gated")
    return Volume(hu.astype(np.float32), (3.0, 0.7, 0.7), direction=np.eye(3), meta=meta)


@pytest.fixture
def win(qtbot):
    from viewer.qt.main_window import MainWindow

    w = MainWindow(recording_errors=True)
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    yield w
    w.close()
    assert w.runner.threads_alive() == 0


def compare_panel(win):
    from viewer.qt.compare_panel import install_compare

    panel = getattr(win, "compare", None) or install_compare(win)
    win.docks["Compare engines"].raise_()
    return panel


def run(qtbot, panel):
    job = panel.run()
    assert job is not None
    with qtbot.waitSignal(job.finished, timeout=60000):
        pass
    qtbot.wait(10)


def test_perturbed_int8_fails_table_strip_worst_and_linked_views(win, qtbot, gated_models):
    win.segmentation.refresh_models()
    assert win.segmentation.select_model("gated")
    panel = compare_panel(win)
    win.set_volume(gated_volume(), "gated-series")
    panel.set_engines("onnx", "onnx-int8")
    assert panel.a_box.currentData() == "onnx" and panel.b_box.currentData() == "onnx-int8"
    run(qtbot, panel)
    assert not win.errors.records, win.errors.records
    e = panel.results["gated-series"]
    pair = e.result.pairs[0]
    assert not pair.passed and pair.threshold == pytest.approx(panel.dice_int8.value())
    assert "FAIL" in panel.verdict.text()
    # table: one row per foreground label + the pair row, numbers match the result
    names = [panel.table.item(r, 0).text() for r in range(panel.table.rowCount())]
    assert names == ["tissue", "lesion", "all labels"]
    lesion = next(m for m in pair.labels if m.name == "lesion")
    assert panel.table.item(1, 1).text() == f"{lesion.dice:.5f}"
    assert panel.table.item(2, 7).text() == f"{pair.logits_max_abs:.3g}"
    # strip: disagreement only on the lesion slices (source order); worst among them
    flips = e.flips_by_slice
    assert set(np.nonzero(flips)[0]) <= set(LESION_SLICES) and flips.sum() == pair.flips
    assert e.worst_z in LESION_SLICES and flips[e.worst_z] == flips.max()
    assert panel.strip.values.tolist() == flips.tolist()
    assert tuple(panel.strip.colors[5]) == (70, 70, 70)  # agreeing slice: grey
    assert panel.strip.colors[e.worst_z][0] == 255  # worst: red
    # jump to worst moves the cursor; the strip marks it
    win.state.set_slice(0, 6)
    panel.worst_button.click()
    assert win.state.cursor[0] == e.worst_z and panel.strip.current == e.worst_z
    # clicking a strip cell goes there
    from PySide6.QtCore import QPointF
    from qt_helpers import mouse

    r = panel.strip.cell_rect(4)
    mouse(panel.strip, "press", QPointF(r.center()))
    assert win.state.cursor[0] == 4
    # linked views follow scroll, zoom and window, in both directions
    a_state, b_state, d_state = panel.views.states
    win.state.set_slice(0, e.worst_z)
    assert all(s.cursor[0] == e.worst_z for s in panel.views.states)
    b_state.set_zoom(0, 3.0, (5.0, 5.0))
    assert win.state.zoom[0] == 3.0 and a_state.zoom[0] == 3.0 and d_state.pan[0] == (5.0, 5.0)
    d_state.set_window(0.2, 1.5)
    assert win.state.window == (0.2, 1.5) and a_state.window == (0.2, 1.5)
    # the difference map is exactly A vs B on the volume grid
    from inference.compare_metrics import difference_classes

    diff = d_state.layers["compare-diff"].labels
    np.testing.assert_array_equal(diff, difference_classes(e.labels_a, e.labels_b))
    assert (diff[e.worst_z] > 0).any() and not (diff[5] > 0).any()
    # results are kept per series
    win.set_volume(gated_volume(), "other")
    assert panel.entry is None and panel.table.rowCount() == 0
    win.set_volume(e.result and gated_volume(), "gated-series")
    assert panel.entry is e and "FAIL" in panel.verdict.text()


def test_thresholds_change_the_verdict_and_same_engines_refused(win, qtbot, gated_models):
    win.segmentation.refresh_models()
    assert win.segmentation.select_model("gated")
    panel = compare_panel(win)
    win.set_volume(gated_volume(), "s")
    panel.set_engines("onnx", "onnx-int8")
    panel.dice_int8.setValue(0.0)
    run(qtbot, panel)
    assert panel.results["s"].result.pairs[0].passed and "PASS" in panel.verdict.text()
    panel.set_engines("onnx", "onnx")
    assert panel.run() is None and "choose two" in str(win.errors.records[-1])


def test_shipped_model_torch_vs_onnx_passes(win, qtbot):
    from compare_fixtures import phantom_volume, shipped_package

    shipped_package()
    assert win.segmentation.select_model("lung-ct-unet")
    panel = compare_panel(win)
    av, _lab, _ = phantom_volume(nz=3)
    vol = Volume(av.voxels, av.spacing, direction=av.direction, meta=VolumeMeta(modality="CT"))
    win.set_volume(vol, "shipped")
    panel.set_engines("torch", "onnx")
    run(qtbot, panel)
    assert not win.errors.records, win.errors.records
    pair = panel.entry.result.pairs[0]
    assert pair.passed and pair.min_dice >= 0.999 and "PASS" in panel.verdict.text()
    assert "ms/slice" in panel.timing.text()
    # optional: the Grad-CAM heatmap (Explain dock) beside the ONNX engine's mask (view B)
    from viewer.state import HeatmapLayer

    heat = HeatmapLayer("gradcam", np.zeros(vol.shape, np.float32))
    win.state.set_layer(heat)
    assert "gradcam" not in panel.views.states[1].layers
    panel.cam_check.setChecked(True)
    assert panel.views.states[1].layers["gradcam"] is heat
    assert "gradcam" not in panel.views.states[0].layers  # torch side: no heatmap
    panel.cam_check.setChecked(False)
    assert "gradcam" not in panel.views.states[1].layers


def test_cancel_keeps_no_result(win, qtbot, gated_models):
    win.segmentation.refresh_models()
    assert win.segmentation.select_model("gated")
    panel = compare_panel(win)
    win.set_volume(gated_volume(), "c")
    panel.set_engines("onnx", "onnx-int8")
    job = panel.run()
    assert panel.cancel_button.isEnabled() and not panel.run_button.isEnabled()
    with qtbot.waitSignal(job.cancelled, timeout=10000):
        panel.cancel()
    qtbot.wait(10)
    assert "c" not in panel.results and panel.entry is None
    assert "cancelled" in panel.verdict.text() and panel.run_button.isEnabled()
    assert not win.errors.records
