"""Never lose work, through the window: autosave while editing, close asks, restore after a crash,
edits kept per series. Real DICOM files, real autosave files in the test's user data folder."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from qt_helpers import SHAPE, mouse, write_phantom

from viewer.autosave import EditSession, SeriesIdentity, find_restorable
from viewer.dicom.load import load_path
from viewer.qt.edit_layers import EDIT_LAYER
from viewer.qt.main_window import MainWindow
from viewer.qt.segmentation_panel import SEG_LAYER
from viewer.state import LabelLayer

pytestmark = pytest.mark.timeout(60)


def ai_map() -> np.ndarray:
    ai = np.zeros(SHAPE, np.uint8)
    ai[:, 20:40, 30:50] = 1
    return ai


def new_window(qtbot) -> MainWindow:
    w = MainWindow(recording_errors=True)
    qtbot.addWidget(w)
    w.resize(1000, 700)
    w.show()
    return w


def open_series(qtbot, w, path, *, with_result=True) -> None:
    with qtbot.waitSignal(w.volume_loaded, timeout=20000):
        w.open_path(path)
    if with_result:
        w.state.set_layer(LabelLayer(SEG_LAYER, ai_map(), {1: (255, 0, 0)}, names={1: "lesion"}))
    qtbot.waitUntil(lambda: not w.edit._sync_pending)


def paint_dab(w, row, col, size=3.0):
    v = w.grid.views[0]
    w.edit_panel.set_size(size)
    w.state.set_tool("brush")
    mouse(v, "press", v.plane_to_screen(row, col))
    mouse(v, "release", v.plane_to_screen(row, col))


@pytest.fixture
def threads():
    before = threading.active_count()
    yield
    assert threading.active_count() <= before + 1  # autosave threads stopped (the runner may idle)


def test_autosave_and_close_asks(qtbot, tmp_path, threads):
    series = write_phantom(tmp_path / "s")
    w = new_window(qtbot)
    open_series(qtbot, w, series)
    assert w.edit.session is None  # editing starts with the first edit
    paint_dab(w, 5, 5)
    seg = w.edit.seg
    assert seg is not None and seg.current[w.state.cursor[0], 5, 5] == 1
    # autosaved within seconds, reported on the GUI thread
    qtbot.waitUntil(lambda: "Autosaved" in w.edit_panel.saved_label.text(), timeout=8000)
    ident = SeriesIdentity.from_volume(w.state.volume)
    assert find_restorable(ident).revision == seg.revision
    # closing with unsaved edits asks; Cancel keeps the window open
    w.edit.prompter.answers["close"] = ["Cancel", "Keep for later"]
    w.close()
    assert w.isVisible() and w.edit.sessions
    rec = w.edit.prompter.records[-1]
    assert rec.kind == "close" and rec.answer == "Cancel" and "not exported" in rec.text
    w.close()
    assert not w.isVisible() and not w.edit.sessions
    assert [r.answer for r in w.edit.prompter.records if r.kind == "close"] == [
        "Cancel",
        "Keep for later",
    ]
    assert find_restorable(ident) is not None  # kept for later


def test_close_series_edits_discard_and_committed_edits_close_silently(qtbot, tmp_path, threads):
    series = write_phantom(tmp_path / "s")
    w = new_window(qtbot)
    try:
        open_series(qtbot, w, series)
        ident = SeriesIdentity.from_volume(w.state.volume)
        paint_dab(w, 5, 5)
        w.edit.session.autosaver.wait_saved()
        w.edit.prompter.answers["close"] = "Discard edits"
        assert w.edit.close_series_edits()
        assert w.edit.session is None and EDIT_LAYER not in w.state.layers
        assert w.state.layers[SEG_LAYER].visible and find_restorable(ident) is None
        # edits that were exported (committed) close without a question
        paint_dab(w, 6, 6)
        w.edit.committed()
        n = len(w.edit.prompter.records)
        assert w.edit.close_series_edits() and len(w.edit.prompter.records) == n
    finally:
        w.close()


def test_restore_offer_after_a_crash(qtbot, tmp_path, threads):
    series = write_phantom(tmp_path / "s")
    # what a killed viewer leaves behind: the autosave of a session that was never closed
    vol = load_path(series)
    crashed = EditSession.start(
        vol, ai_map(), [{"value": 1, "name": "lesion", "color": [255, 0, 0]}], reader="Dr Crash"
    )
    crashed.seg.paint(0, 6, (5.0, 5.0), (5.0, 15.0), label=1, size_mm=3.0)
    crashed.seg.erase(0, 6, (30.0, 40.0), size_mm=4.0)
    crashed.seg.add_label("nodule", (0, 255, 0))
    crashed.autosaver.save_now()
    edited = crashed.seg.current.copy()
    del crashed  # no close(), no discard(): the process died
    # reopen the study (no model run needed): the window offers the edits at once
    w = new_window(qtbot)
    try:
        w.edit.prompter.answers["restore"] = "Restore edits"
        open_series(qtbot, w, series, with_result=False)
        rec = [r for r in w.edit.prompter.records if r.kind == "restore"]
        assert len(rec) == 1 and "Dr Crash" in rec[0].text
        seg = w.edit.seg
        assert seg is not None and w.edit.session.restored
        assert np.array_equal(seg.current, edited) and np.array_equal(seg.ai, ai_map())
        assert seg.labels[2].name == "nodule" and seg.reader == "Dr Crash"
        assert w.state.layers[EDIT_LAYER].labels is seg.current
        assert (
            w.edit.seg.provenance_counts()["added"] > 0
            and w.edit.seg.provenance_counts()["removed"] > 0
        )
        # a different series is not offered those edits
        other = write_phantom(tmp_path / "o", series_description="Other", series_number=2)
        open_series(qtbot, w, other, with_result=False)
        assert (
            len([r for r in w.edit.prompter.records if r.kind == "restore"]) == 1
            and w.edit.seg is None
        )
    finally:
        w.edit.prompter.answers["close"] = "Keep for later"
        w.close()


def test_not_now_keeps_the_autosave_and_discard_deletes_it(qtbot, tmp_path, threads):
    series = write_phantom(tmp_path / "s")
    vol = load_path(series)
    s = EditSession.start(vol, ai_map(), [{"value": 1, "name": "lesion", "color": [255, 0, 0]}])
    s.seg.paint(0, 6, (5.0, 5.0), label=1, size_mm=3.0)
    s.autosaver.save_now()
    ident = SeriesIdentity.from_volume(vol)
    w = new_window(qtbot)
    try:
        w.edit.prompter.answers["restore"] = ["Not now", "Discard them"]
        open_series(qtbot, w, series)
        assert w.edit.seg is None and find_restorable(ident) is not None
        assert w.state.layers[SEG_LAYER].visible  # the AI result is shown unchanged
        paint_dab(w, 50, 70)  # the first click asks again (discard); it does not paint
        assert w.edit.seg is not None and not (w.edit.seg.current != w.edit.seg.ai).any()
        paint_dab(w, 50, 70)  # the next one edits the AI result
        assert (
            find_restorable(ident) is None or find_restorable(ident).revision == w.edit.seg.revision
        )
        seg = w.edit.seg
        assert seg is not None and not w.edit.session.restored
        assert seg.current[6, 5, 5] == 0 and seg.current[w.state.cursor[0], 50, 70] == 1
    finally:
        w.edit.prompter.answers["close"] = "Discard edits"
        w.close()


def test_edits_are_kept_per_series(qtbot, tmp_path, threads):
    a, b = (
        write_phantom(tmp_path / "a"),
        write_phantom(tmp_path / "b", series_description="B", series_number=2),
    )
    w = new_window(qtbot)
    try:
        open_series(qtbot, w, a)
        paint_dab(w, 5, 5)
        seg_a = w.edit.seg
        open_series(qtbot, w, b)
        assert w.edit.seg is None and EDIT_LAYER not in w.state.layers
        paint_dab(w, 50, 70)
        seg_b = w.edit.seg
        assert seg_b is not seg_a and len(w.edit.sessions) == 2
        with qtbot.waitSignal(w.volume_loaded, timeout=20000):
            w.open_path(a)
        qtbot.waitUntil(lambda: not w.edit._sync_pending)
        assert w.edit.seg is seg_a and w.state.layers[EDIT_LAYER].labels is seg_a.current
        w.edit.undo()
        assert not (seg_a.current != seg_a.ai).any() and (seg_b.current != seg_b.ai).any()
        w.edit.prompter.answers["close"] = "Discard edits"
        w.close()
        assert [r.text.split(" ")[0] for r in w.edit.prompter.records if r.kind == "close"] == ["2"]
    finally:
        w.close()


def test_start_empty_and_result_controls_follow(qtbot, tmp_path, threads):
    w = new_window(qtbot)
    try:
        open_series(qtbot, w, write_phantom(tmp_path / "s"), with_result=False)
        panel = w.edit_panel
        assert panel.start_button.isEnabled() and not panel.close_button.isEnabled()
        panel.start_button.click()  # no AI result: draw from scratch on an empty map
        seg = w.edit.seg
        assert seg is not None and not seg.ai.any() and seg.labels == {}
        assert not panel.start_button.isEnabled() and panel.close_button.isEnabled()
        paint_dab(w, 5, 5)  # no label yet: nothing painted, the reader is told why
        assert not seg.current.any() and "label" in w.statusBar().currentMessage()
        w.edit.prompter.answers.update({"label_name": "finding", "label_color": (0, 0, 255)})
        w.actions_by_name["edit_add_label"].trigger()
        paint_dab(w, 5, 5)
        assert seg.current[w.state.cursor[0], 5, 5] == 1 and seg.labels[1].source == "reader"
        w.edit.prompter.answers["close"] = "Discard edits"
        panel.close_button.click()
        assert w.edit.seg is None and EDIT_LAYER not in w.state.layers
    finally:
        w.close()


def test_overlay_settings_of_the_result_apply_to_the_edits(qtbot, tmp_path, threads):
    w = new_window(qtbot)
    try:
        open_series(qtbot, w, write_phantom(tmp_path / "s"))
        paint_dab(w, 5, 5)
        result, edits = w.state.layers[SEG_LAYER], w.state.layers[EDIT_LAYER]
        result.opacity, result.outline = 0.8, True
        result.hidden.add(1)
        w.state.layer_changed(SEG_LAYER)  # what the segmentation dock's controls do
        qtbot.waitUntil(lambda: edits.opacity == 0.8)
        assert edits.outline and edits.hidden == {1} and not result.visible
    finally:
        w.edit.prompter.answers["close"] = "Discard edits"
        w.close()
