"""The viewer window, headless: open real synthetic DICOM, scroll, window, MPR, measure, cancel."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from qt_helpers import SHAPE, SPACING, drag, mouse, wheel, write_phantom

from viewer.errors import DicomError
from viewer.qt.main_window import MainWindow

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def win(qtbot):
    threads_before = threading.active_count()
    w = MainWindow(recording_errors=True)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    yield w
    w.close()
    assert w.runner.threads_alive() == 0
    qtbot.waitUntil(lambda: threading.active_count() <= threads_before, timeout=5000)


def open_and_wait(qtbot, w: MainWindow, path) -> None:
    with qtbot.waitSignal(w.volume_loaded, timeout=20000):
        w.open_path(path)


@pytest.fixture
def loaded(qtbot, win, tmp_path):
    open_and_wait(qtbot, win, write_phantom(tmp_path / "series"))
    return win


def test_open_generated_series_shows_middle_slice(loaded):
    w = loaded
    assert w.state.volume.shape == SHAPE
    assert w.state.cursor == (SHAPE[0] // 2, SHAPE[1] // 2, SHAPE[2] // 2)
    assert w.state.volume.spacing == pytest.approx(SPACING)
    texts = w.browser.all_texts()
    assert "#1 Phantom" in texts and str(SHAPE[0]) in texts
    v = w.grid.views[0]
    img = v.render_frame()
    assert img is not None and (img.width(), img.height()) == (SHAPE[2], SHAPE[1])
    assert v._rgb[30, 40, 0] > v._rgb[5, 5, 0]  # the 100 HU square is brighter than air
    assert not w.errors.records


def test_scroll_with_wheel_keys_and_slider(qtbot, loaded):
    w = loaded
    v = w.grid.views[0]
    z0 = w.state.cursor[0]
    wheel(v, QPointF(50, 50), -120)
    assert w.state.cursor[0] == z0 + 1
    qtbot.keyClick(v, Qt.Key.Key_Up)
    assert w.state.cursor[0] == z0
    qtbot.keyClick(v, Qt.Key.Key_PageDown)
    assert w.state.cursor[0] == SHAPE[0] - 1  # clamped
    qtbot.keyClick(v, Qt.Key.Key_Home)
    assert w.state.cursor[0] == 0
    w.grid.slider.setValue(7)
    assert w.state.cursor[0] == 7
    v.render_frame()
    assert int(v.geom.volume.voxels[7, 0, 0]) == 70  # the slice shown is slice 7


def test_right_drag_changes_window_live(loaded):
    w = loaded
    v = w.grid.views[0]
    c0, w0 = w.state.window
    before = v.render_frame() and v._rgb[30, 40].copy()
    drag(v, QPointF(100, 100), QPointF(160, 40), Qt.MouseButton.RightButton)
    c1, w1 = w.state.window
    assert w1 > w0 and c1 < c0  # right: wider, up: lower level
    v.render_frame()
    assert not np.array_equal(before, v._rgb[30, 40])


def test_presets_and_shortcut(qtbot, loaded):
    w = loaded
    w.actions_by_name["window_lung"].trigger()
    assert w.state.window == (-600.0, 1500.0)
    w.actions_by_name["window_bone"].trigger()
    assert w.state.window == (400.0, 1800.0)


def test_mpr_click_moves_other_views(qtbot, loaded):
    w = loaded
    w.state.set_layout("2x2")
    qtbot.wait(10)
    ax, cor, sag = w.grid.views
    assert all(v.isVisible() for v in w.grid.views)
    mouse(ax, "press", ax.plane_to_screen(10, 20))
    mouse(ax, "release", ax.plane_to_screen(10, 20))
    z = w.state.cursor[0]
    assert w.state.cursor[1:] == (10, 20)
    assert cor.index() == 10 and sag.index() == 20
    # click in the coronal view: rows are z (head up), columns x
    r, c = cor.geom.voxel_to_display(3, 10, 60)
    mouse(cor, "press", cor.plane_to_screen(r, c))
    assert w.state.cursor == (3, 10, 60)
    assert ax.index() == 3 and z != 3
    # slice spacing respected: the coronal image has the physical aspect ratio
    rect = cor.image_rect()
    assert rect.height() / rect.width() == pytest.approx(
        (SHAPE[0] * SPACING[0]) / (SHAPE[2] * SPACING[2]), rel=1e-6
    )


def test_orientation_letters_and_corner_text(loaded):
    w = loaded
    from viewer.qt.view_paint import corner_texts

    ax, cor, sag = w.grid.views
    assert ax.geom.letters() == {"right": "L", "left": "R", "bottom": "P", "top": "A"}
    assert cor.geom.letters()["top"] == "H" and cor.geom.letters()["bottom"] == "F"
    assert sag.geom.letters()["left"] == "A"
    t = corner_texts(ax)
    assert "Demo Patient" in t["tl"] and "W: 400" in t["bl"]
    w.actions_by_name["hide_identity"].trigger()
    t = corner_texts(ax)
    assert "Demo" not in t["tl"] and "hidden" in t["tl"]
    assert "Demo" not in w.windowTitle()


def test_ruler_of_known_length_and_roi(qtbot, loaded):
    w = loaded
    v = w.grid.views[0]
    w.state.set_tool("ruler")
    drag(v, v.plane_to_screen(20, 30), v.plane_to_screen(20, 70))
    (m,) = w.state.measurements
    assert m.kind == "ruler" and m.index == w.state.cursor[0]
    # 40 columns x 0.8 mm; screen rounding can move each end by < 1/10 pixel
    assert m.result["length_mm"] == pytest.approx(40 * SPACING[2], abs=0.1)
    w.state.set_tool("rect")
    drag(v, v.plane_to_screen(22, 32), v.plane_to_screen(37, 47))
    roi = w.state.measurements[-1].result
    assert roi["mean"] == pytest.approx(100.0) and roi["sd"] == pytest.approx(0.0)
    assert roi["area_mm2"] == pytest.approx(16 * 16 * SPACING[1] * SPACING[2])
    w.state.set_tool("ellipse")
    drag(v, v.plane_to_screen(5, 5), v.plane_to_screen(15, 25))
    assert w.state.measurements[-1].result["max"] == -1000
    # measurements stay on their slice
    here = w.state.cursor[0]
    assert len(w.state.measurements_on(0, here)) == 3
    w.state.step_slice(0, 1)
    assert w.state.measurements_on(0, w.state.cursor[0]) == []
    # and can be deleted (panel button and Del shortcut)
    assert w.measurements.tree.topLevelItemCount() == 3
    w.measurements.tree.setCurrentItem(w.measurements.tree.topLevelItem(0))
    w.measurements.delete_button.click()
    assert len(w.state.measurements) == 2
    w.state.set_slice(0, here)
    w.measurements.tree.setCurrentItem(None)
    w.actions_by_name["delete_measurement"].trigger()
    assert len(w.state.measurements) == 1


def test_zoom_fit_pan_and_one_to_one(qtbot, loaded):
    w = loaded
    v = w.grid.views[0]
    z0 = v.zoom_percent()
    wheel(v, QPointF(60, 60), 120, Qt.KeyboardModifier.ControlModifier)
    assert v.zoom_percent() == pytest.approx(z0 * 1.15, rel=1e-3)
    w.actions_by_name["one_to_one"].trigger()
    assert v.zoom_percent() == pytest.approx(100.0, rel=1e-3)
    drag(v, QPointF(50, 50), QPointF(80, 70), Qt.MouseButton.MiddleButton)
    assert w.state.pan[0] == (30.0, 20.0)
    w.actions_by_name["fit"].trigger()
    assert w.state.pan[0] == (0.0, 0.0) and v.zoom_percent() == pytest.approx(z0)


def test_hover_reports_hu_and_lps(qtbot, loaded):
    w = loaded
    v = w.grid.views[0]
    with qtbot.waitSignal(v.hovered, timeout=1000) as sig:
        mouse(v, "move", v.plane_to_screen(30, 40), None)
    info = sig.args[0]
    assert info["index"][1:] == (30, 40) and int(info["value"]) == 100
    assert info["lps"][0] == pytest.approx(40 * SPACING[2]) and info["lps"][1] == pytest.approx(
        30 * SPACING[1]
    )
    assert "100 HU" in w.hover_label.text()


def test_tag_browser_search(qtbot, loaded):
    w = loaded
    w.docks["DICOM tags"].raise_()
    w.docks["DICOM tags"].show()
    w._on_cursor()
    assert w.tags.tree.topLevelItemCount() > 20
    n = w.tags.apply_filter("PixelSpacing")
    assert n >= 1
    visible = [
        w.tags.tree.topLevelItem(i)
        for i in range(w.tags.tree.topLevelItemCount())
        if not w.tags.tree.topLevelItem(i).isHidden()
    ]
    assert any(it.text(1) == "PixelSpacing" for it in visible)
    assert all(
        "spacing" in " ".join(it.text(c) for c in range(4)).lower() or it.childCount()
        for it in visible
    )


def test_cine_advances(qtbot, loaded):
    w = loaded
    z0 = w.state.cursor[0]
    w.set_cine_fps(50)
    w.toggle_cine()
    qtbot.waitUntil(lambda: w.state.cursor[0] != z0, timeout=2000)
    w.toggle_cine()
    assert not w.cine.isActive()


def test_first_slice_shown_before_volume(qtbot, win, tmp_path):
    path = write_phantom(tmp_path / "s", shape=(40, 64, 64))
    order = []
    win.loader._first.connect(lambda *_: order.append("first"))
    win.volume_loaded.connect(lambda _v: order.append("volume"))
    open_and_wait(qtbot, win, path)
    assert order == ["first", "volume"]


def test_cancel_a_load(qtbot, win, tmp_path):
    path = write_phantom(tmp_path / "big", shape=(150, 128, 128))
    with qtbot.waitSignal(win.scan_finished, timeout=20000):
        win.loader.cancel()  # nothing running: harmless
        from viewer.dicom.scan import scan

        result = scan(path)
        win.browser.set_result(result)
        win.scan_finished.emit(result)
    job = win.loader.load_stack(result.stacks[0])
    win.cancel_button.click()
    with qtbot.waitSignal(job.finished, timeout=10000):
        pass
    assert job.state == "cancelled"
    assert win.state.volume is None and not win.errors.records
    assert "cancelled" in win.statusBar().currentMessage().lower()
    assert not win.progress.isVisible()


def test_broken_files_listed_with_reasons(qtbot, win, tmp_path):
    folder = write_phantom(tmp_path / "mixed")
    (folder / "garbage.dcm").write_bytes(b"not dicom at all" * 20)
    good = sorted(folder.glob("slice*.dcm"))[0].read_bytes()
    (folder / "truncated.dcm").write_bytes(good[:400])
    open_and_wait(qtbot, win, folder)
    text = "\n".join(win.browser.all_texts())
    assert "Skipped files (2)" in text
    assert "garbage.dcm: " in text and "truncated.dcm: " in text
    assert win.state.volume.shape == SHAPE


def test_only_broken_files_reports_one_error(qtbot, win, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.dcm").write_bytes(b"junk" * 50)
    with qtbot.waitSignal(win.errors.presented, timeout=20000):
        win.open_path(folder)
    (rec,) = win.errors.records
    assert isinstance(rec.exception, DicomError)
    assert "No loadable DICOM" in rec.message and "a.dcm" in rec.details


def test_missing_path_goes_to_error_presenter(qtbot, win, tmp_path):
    with qtbot.waitSignal(win.errors.presented, timeout=10000):
        win.open_path(tmp_path / "does-not-exist")
    assert "does-not-exist" in win.errors.records[0].message
    assert win.errors.records[0].details  # traceback behind Details


def test_settings_are_temporary_and_persist(qtbot, loaded, tmp_path):
    import os

    w = loaded
    home = os.environ["CLINICAL_VIEWER_HOME"]
    assert w.settings.fileName().startswith(home)
    from viewer.qt.settings import recent_paths

    assert str(tmp_path / "series") in recent_paths(w.settings)
    w.state.set_layout("2x2")
    w.close()
    w2 = MainWindow(recording_errors=True)
    qtbot.addWidget(w2)
    assert w2.state.layout == "2x2"
    assert str(tmp_path / "series") in [
        a.text()
        for a in w2.findChild(type(w2.menuBar().actions()[0].menu()), "menu_recent").actions()
    ]
    w2.close()


def test_shortcuts_are_listed(win):
    from viewer.qt.actions import shortcut_table

    keys = dict(shortcut_table(win.actions_by_name))
    assert keys["Ctrl+O"].startswith("Open folder")
    assert "Ruler (mm)" in keys.values() and "Hide patient identity" in keys.values()


def test_monochrome1_is_inverted(qtbot, win, tmp_path):
    from viewer.dicom.synth import write_series

    hu = np.zeros((3, 16, 16), np.int16)
    hu[:, :, 8:] = 1000
    write_series(
        tmp_path / "m1",
        hu,
        spacing=(1, 1, 1),
        modality="MR",
        photometric="MONOCHROME1",
        window=(500.0, 1000.0),
    )
    open_and_wait(qtbot, win, tmp_path / "m1")
    v = win.grid.views[0]
    v.render_frame()
    assert win.state.volume.meta.invert
    assert v._rgb[4, 2, 0] > 200 and v._rgb[4, 12, 0] < 50  # low values bright


def test_drop_a_folder_opens_it(qtbot, win, tmp_path):
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QDropEvent

    path = write_phantom(tmp_path / "dropped")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    ev = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(win.volume_loaded, timeout=20000):
        win.dropEvent(ev)
    assert win.state.volume.shape == SHAPE


def test_thumbnail_and_focus_after_load(qtbot, loaded):
    w = loaded
    sid = w.loader.scan_result.stacks[0].stack_id
    item = w.browser.stack_item(sid)
    qtbot.waitUntil(lambda: not item.icon(0).isNull(), timeout=5000)
    assert w.grid.views[0].hasFocus() or w.focusWidget() is w.grid.views[0]


def test_non_square_pixels_keep_their_aspect(loaded):
    v = loaded.grid.views[0]
    r = v.image_rect()
    # 64 rows x 0.6 mm high, 80 columns x 0.8 mm wide
    assert r.height() / r.width() == pytest.approx(
        (SHAPE[1] * SPACING[1]) / (SHAPE[2] * SPACING[2])
    )


def test_startup_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys\nfrom viewer.qt.app import create_app\n"
        "from viewer.qt.main_window import MainWindow\n"
        "app = create_app(); w = MainWindow(recording_errors=True); w.show(); app.processEvents()\n"
        "bad = [m for m in ('torch', 'torchvision', 'pytorch_grad_cam') if m in sys.modules]\n"
        "print(bad); w.close(); sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_real_chest_ct(qtbot, win, shared_data):
    """A real scan (Siemens, 8 mm, 30 slices): header window, HU of air, orientation, aspect."""
    open_and_wait(qtbot, win, shared_data / "chest-ct-lungdx-a0002")
    vol = win.state.volume
    assert vol.shape[1:] == (512, 512) and vol.meta.modality == "CT"
    assert win.state.window == (vol.meta.window_presets[0].center, vol.meta.window_presets[0].width)
    assert int(vol.voxels[vol.shape[0] // 2, 5, 5]) < -900  # air outside the patient
    assert win.grid.views[0].geom.letters() == {
        "right": "L",
        "left": "R",
        "bottom": "P",
        "top": "A",
    }
    cor = win.grid.views[1]
    r = cor.image_rect()
    assert r.height() / r.width() == pytest.approx(
        vol.shape[0] * vol.spacing[0] / (512 * vol.spacing[2])
    )
    assert any(
        "not a DICOM" in t for t in win.browser.all_texts()
    )  # the README/CSV files are listed


def test_load_warnings_shown_in_browser(qtbot, win, tmp_path):
    """Irregular slice spacing: the loader's warning appears under the series, not only in a log."""
    from qt_helpers import phantom

    from viewer.dicom.synth import write_series

    z = [0.0, 3.0, 6.0, 9.0, 15.0, 18.0, 21.0, 24.0, 27.0, 30.0, 33.0, 36.0]  # a 6 mm gap
    write_series(tmp_path / "gap", phantom(), spacing=SPACING, positions=[(0.0, 0.0, p) for p in z])
    open_and_wait(qtbot, win, tmp_path / "gap")
    warnings = list(win.state.volume.warnings)
    sid = win.loader.scan_result.stacks[0].stack_id
    item = win.browser.stack_item(sid)
    shown = [item.child(i).text(3) for i in range(item.childCount())]
    assert any("missing slices" in w for w in warnings)
    assert all(w in shown for w in warnings)  # each once, whether found by the scan or the load
    assert len(shown) == len(set(shown))
    assert win.state.volume.shape[0] == SHAPE[0] + 1  # a blank slice keeps positions true


def test_hide_identity_in_tag_browser(qtbot, loaded):
    w = loaded
    w.docks["DICOM tags"].raise_()
    w._on_cursor()
    w.state.set_hide_identity(True)
    rows = {
        w.tags.tree.topLevelItem(i).text(1): w.tags.tree.topLevelItem(i).text(3)
        for i in range(w.tags.tree.topLevelItemCount())
    }
    assert rows["PatientName"] == "(hidden)" and rows["StudyDate"] == "(hidden)"
    assert rows["Rows"] == str(SHAPE[1])  # technical tags stay readable
    assert not any("Demo" in v for v in rows.values())


def test_rgb_series_shows_and_measures(qtbot, win, tmp_path):
    from viewer.dicom.synth import write_series

    rgb = np.zeros((2, 32, 48, 3), np.uint8)
    rgb[:, :, :24] = (255, 0, 0)
    rgb[:, :, 24:] = (0, 0, 255)
    write_series(tmp_path / "rgb", rgb, spacing=(1, 0.5, 0.5), modality="OT")
    open_and_wait(qtbot, win, tmp_path / "rgb")
    v = win.grid.views[0]
    v.render_frame()
    assert tuple(v._rgb[10, 5]) == (255, 0, 0) and tuple(v._rgb[10, 40]) == (
        0,
        0,
        255,
    )  # RGB order kept
    m = v.add_measurement("rect", (0, 0), (31, 23))
    assert m.result["mean"] == pytest.approx(85.0)  # (255 + 0 + 0) / 3


def test_tag_browser_survives_a_malformed_private_element(qtbot, tmp_path):
    """A private FD element of 4 bytes (a real Philips CT has one): its row says so; rest shown."""
    import pydicom
    from pydicom.uid import ImplicitVRLittleEndian

    from viewer.dicom.synth import write_series
    from viewer.qt.tag_browser import TagBrowser

    (path,) = write_series(
        tmp_path / "p",
        np.zeros((1, 4, 4), np.int16),
        spacing=(1, 1, 1),
        transfer_syntax=ImplicitVRLittleEndian,
    )
    ds = pydicom.dcmread(path)
    ds.add_new(0x01F10010, "LO", "ELSCINT1")  # pydicom's private dictionary: (01F1,xx26) is FD
    ds.add_new(0x01F11026, "OB", b"0.15")  # implicit VR: read back as FD with 4 bytes
    ds.save_as(path, implicit_vr=True, little_endian=True)
    tb = TagBrowser()
    qtbot.addWidget(tb)
    tb.show_file(str(path))
    rows = {
        tb.tree.topLevelItem(i).text(0): tb.tree.topLevelItem(i)
        for i in range(tb.tree.topLevelItemCount())
    }
    assert "(01F1,1026)" in rows and "cannot decode" in rows["(01F1,1026)"].text(3)
    assert rows["(0028,0010)"].text(3) == "4"


def test_help_lists_shortcuts_in_a_dialog(qtbot, win):
    from PySide6.QtWidgets import QApplication, QDialog, QTableWidget

    win.actions_by_name["shortcuts"].trigger()
    dialogs = [
        w for w in QApplication.topLevelWidgets() if isinstance(w, QDialog) and w.isVisible()
    ]
    assert len(dialogs) == 1 and dialogs[0].windowTitle() == "Keyboard shortcuts"
    table = dialogs[0].findChild(QTableWidget)
    keys = [table.item(r, 0).text() for r in range(table.rowCount())]
    assert "Ctrl+O" in keys and "Space" in keys and "Right-drag" in keys
    dialogs[0].close()
