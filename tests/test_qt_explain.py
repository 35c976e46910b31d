"""Explain dock (issue 6) headless: preprocessing previews, Grad-CAM, model-input replay."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from viewer.volume import Volume, VolumeMeta

pytestmark = pytest.mark.timeout(120)


def phantom_series(nz: int = 4) -> Volume:
    from compare_fixtures import phantom_volume

    av, _lab, _info = phantom_volume(nz=nz)
    meta = VolumeMeta(modality="CT", body_part="CHEST", series_description="phantom")
    hu = np.rint(av.voxels).astype(np.int16)
    return Volume(hu, av.spacing, direction=av.direction, meta=meta)


@pytest.fixture
def win(qtbot):
    from viewer.qt.main_window import MainWindow

    w = MainWindow(recording_errors=True)
    qtbot.addWidget(w)
    w.resize(1300, 850)
    w.show()
    yield w
    w.close()
    assert w.runner.threads_alive() == 0


@pytest.fixture
def explain(win, qtbot):
    from viewer.qt.explain_panel import install_explain

    panel = getattr(win, "explain", None) or install_explain(win)
    win.set_volume(phantom_series(), "phantom")
    return panel


def idle(qtbot, win, ms: int = 20000) -> None:
    """Wait past the debounce timers, then until no job runs and results are delivered."""
    qtbot.wait(60)
    qtbot.waitUntil(lambda: win.runner.active() == 0, timeout=ms)
    qtbot.wait(20)


def test_start_up_imports_no_torch():
    code = (
        "import sys; import viewer.qt.explain_panel, viewer.qt.compare_panel; "
        "bad = [m for m in ('torch', 'pytorch_grad_cam') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_clahe_drag_only_latest_preview_applied(win, explain, qtbot):
    from viewer.preprocess import apply_filter, windowed_uint8
    from viewer.qt.analysis_preprocess import PREVIEW_LAYER

    pre = explain.preprocess
    explain.show_tab("preprocess")
    pre.filter_box.setCurrentIndex(pre.filter_box.findData("clahe"))
    pre.mode_box.setCurrentText("side by side")
    idle(qtbot, win)
    slider = pre.sliders["clip_limit"].slider
    # a fast drag: many moves inside the debounce interval → one request, the last value
    before_req, before_applied = pre.requests, pre.applied
    for v in range(5, 80, 5):
        slider.setValue(v)
    idle(qtbot, win)
    qtbot.waitUntil(lambda: pre.requests > before_req, timeout=2000)
    idle(qtbot, win)
    assert pre.requests - before_req == 1
    assert pre.applied - before_applied == 1
    assert pre.displayed["params"]["clip_limit"] == pytest.approx(pre.params()["clip_limit"])
    # requests issued faster than the worker: only the newest is ever shown
    before_applied = pre.applied
    tiles = pre.sliders["tile_grid"].slider
    for v in (2, 3, 4, 5, 6, 7):
        tiles.setValue(v)
        pre._request()
    idle(qtbot, win)
    assert pre.displayed["params"]["tile_grid"] == 8  # slider index 7 ↔ 8 tiles (min 1)
    assert pre.applied - before_applied <= 2  # the final one (+ at most the debounced repeat)
    # the preview on screen is exactly OpenCV's CLAHE of the windowed slice
    z = win.state.cursor[0]
    c, w = win.state.window
    img = windowed_uint8(win.state.volume.voxels[z], c, w)
    want = apply_filter("clahe", img, **pre.params())
    layer = pre.linked_state.layers[PREVIEW_LAYER]
    assert layer.z == z
    np.testing.assert_array_equal(layer.rgba[..., 0], want)
    views = pre.current_views()
    assert views["filter"] == "clahe" and views["params"] == pre.params()
    assert views["mode"] == "side by side"
    # remembered in the settings: a new panel starts with the same parameters
    from viewer.qt.analysis_preprocess import PreprocessPanel

    again = PreprocessPanel(win)
    try:
        assert again.filter_name() == "clahe" and again.params() == pre.params()
    finally:
        again.detach()
        again.deleteLater()
    assert not win.errors.records


def test_linked_view_follows_scroll_zoom_window(win, explain, qtbot):
    pre = explain.preprocess
    explain.show_tab("preprocess")
    st, ls = win.state, pre.linked_state
    st.set_slice(0, 1)
    assert ls.cursor[0] == 1
    ls.set_slice(0, 3)  # scrolling in the linked view moves the main views
    assert st.cursor[0] == 3
    st.set_zoom(0, 2.5, (10.0, -4.0))
    assert ls.zoom[0] == 2.5 and ls.pan[0] == (10.0, -4.0)
    ls.set_window(-600, 1500)
    assert st.window == (-600.0, 1500.0)
    idle(qtbot, win)
    assert pre.displayed["slice"] == 3 and pre.displayed["window"] == (-600.0, 1500.0)


def test_canny_overlay_is_an_image_layer_in_colour(win, explain, qtbot):
    from viewer.preprocess import apply_filter, windowed_uint8
    from viewer.qt.analysis_preprocess import EDGE_COLORS, OVERLAY_LAYER

    pre = explain.preprocess
    explain.show_tab("preprocess")
    pre.filter_box.setCurrentIndex(pre.filter_box.findData("canny"))
    pre.mode_box.setCurrentText("overlay")
    idle(qtbot, win)
    qtbot.waitUntil(lambda: OVERLAY_LAYER in win.state.layers, timeout=3000)
    layer = win.state.layers[OVERLAY_LAYER]
    z = win.state.cursor[0]
    c, w = win.state.window
    edges = apply_filter("canny", windowed_uint8(win.state.volume.voxels[z], c, w), **pre.params())
    assert edges.any()
    np.testing.assert_array_equal(layer.rgba[..., 3] > 0, edges > 0)
    assert tuple(layer.rgba[edges > 0][0, :3]) == EDGE_COLORS[pre.color_box.currentData()]
    pre.mode_box.setCurrentText("off")
    assert OVERLAY_LAYER not in win.state.layers


def test_gradcam_button_makes_a_heatmap_on_the_slice(win, explain, qtbot):
    from compare_fixtures import shipped_package

    from viewer.qt.analysis_gradcam import CAM_LAYER
    from viewer.state import HeatmapLayer

    shipped_package()
    assert win.segmentation.select_model("lung-ct-unet")
    cam = explain.gradcam
    explain.show_tab("gradcam")
    cam.refresh_package()
    cam.label_box.setCurrentIndex(cam.label_box.findText("right lung"))
    cam.method_box.setCurrentIndex(cam.method_box.findData("gradcam++"))
    win.state.set_slice(0, 2)
    cam.slice_button.click()
    idle(qtbot, win, 60000)
    assert not win.errors.records, win.errors.records
    layer = win.state.layers[CAM_LAYER]
    assert isinstance(layer, HeatmapLayer) and layer.z == 2
    assert layer.heat.shape == win.state.volume.shape[1:]
    assert 0.0 <= layer.heat.min() and layer.heat.max() <= 1.0 and layer.heat.max() > 0.5
    # right lung evidence sits on the image's left half (radiological display)
    nx = layer.heat.shape[1]
    assert layer.heat[:, : nx // 2].sum() > layer.heat[:, nx // 2 :].sum()
    assert cam.last["method"] == "gradcam++" and cam.last["label_name"] == "right lung"
    assert cam.linked_state.layers[CAM_LAYER] is layer  # beside the mask in the linked view
    # every candidate layer can be chosen; the default comes from model.json
    job = cam.load_layers()
    with qtbot.waitSignal(job.finished, timeout=30000):
        pass
    names = [cam.layer_box.itemData(i) for i in range(cam.layer_box.count())]
    assert names[0] is None and "decoder.3" in names and len(names) > 5
    assert cam.layer_box.itemText(0) == "default (decoder.3)"
    # rectangle region without a rectangle: a clear error, nothing run
    cam.region_box.setCurrentIndex(cam.region_box.findData("rect"))
    assert cam.run() is None
    assert "Rect tool" in str(win.errors.records[-1])


def test_model_input_replay_is_the_network_input(win, explain, qtbot):
    from compare_fixtures import shipped_package

    from inference.preprocess_input import model_input_for_slice

    pkg = shipped_package()
    assert win.segmentation.select_model("lung-ct-unet")
    mi = explain.model_input
    explain.show_tab("model_input")
    win.state.set_slice(0, 1)
    idle(qtbot, win)
    qtbot.waitUntil(lambda: mi.last is not None, timeout=5000)
    idle(qtbot, win)
    x, info = mi.last
    want, _ = model_input_for_slice(win.state.volume, 1, pkg)
    np.testing.assert_array_equal(x, want)
    text = mi.text.text()
    assert str(list(want.shape)) in text and "1.500×1.500 mm" in text
    assert mi.image.pixmap() is not None and not mi.image.pixmap().isNull()


def test_gradcam_series_rect_region_and_per_series(win, explain, qtbot):
    from compare_fixtures import shipped_package

    from viewer.qt.analysis_gradcam import CAM_LAYER

    shipped_package()
    assert win.segmentation.select_model("lung-ct-unet")
    cam = explain.gradcam
    explain.show_tab("gradcam")
    cam.refresh_package()
    cam.label_box.setCurrentIndex(cam.label_box.findText("left lung"))
    # whole series in the background: one heatmap per slice on the volume grid
    job = cam.run(series=True)
    with qtbot.waitSignal(job.finished, timeout=60000):
        pass
    layer = win.state.layers[CAM_LAYER]
    assert layer.heat.shape == win.state.volume.shape and layer.z is None
    assert all(layer.heat[z].max() > 0.5 for z in range(layer.heat.shape[0]))
    nx = layer.heat.shape[2]
    assert layer.heat[..., nx // 2 :].sum() > layer.heat[..., : nx // 2].sum()  # patient left
    # a drawn rectangle as the target region (the reader's own question)
    z = win.state.cursor[0]
    ny = layer.heat.shape[1]
    win.grid.views[0].add_measurement("rect", (ny * 0.3, nx * 0.55), (ny * 0.7, nx * 0.85))
    cam.region_box.setCurrentIndex(cam.region_box.findData("rect"))
    job = cam.run()
    with qtbot.waitSignal(job.finished, timeout=60000):
        pass
    assert not win.errors.records, win.errors.records
    rect_layer = win.state.layers[CAM_LAYER]
    assert rect_layer.z == z and cam.last["region"] == "rect" and rect_layer.heat.max() > 0
    # kept per series: another series clears it, coming back restores it
    vol = win.state.volume
    win.set_volume(phantom_series(), "other")
    assert CAM_LAYER not in win.state.layers
    win.set_volume(vol, "phantom")
    assert win.state.layers[CAM_LAYER] is rect_layer
