"""Edit dock and edit tools through the real window (headless): real mouse events on the views,
real shortcuts, the real engine (viewer.masks) underneath."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt
from qt_helpers import SHAPE, SPACING, drag, mouse, write_phantom

from viewer.masks_labels import Provenance
from viewer.qt.edit_layers import EDIT_LAYER, PROV_COLORS, PROV_LAYER
from viewer.qt.main_window import MainWindow
from viewer.qt.segmentation_panel import SEG_LAYER
from viewer.state import LabelLayer

pytestmark = pytest.mark.timeout(60)

SQUARE = (
    slice(20, 40),
    slice(30, 50),
)  # the phantom's 100 HU square on every slice (rows y, cols x)


@pytest.fixture
def win(qtbot, tmp_path):
    threads_before = threading.active_count()
    w = MainWindow(recording_errors=True)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    with qtbot.waitSignal(w.volume_loaded, timeout=20000):
        w.open_path(write_phantom(tmp_path / "series"))
    # what the segmentation dock does with a result: an "AI" label map covering the square
    ai = np.zeros(SHAPE, np.uint8)
    ai[(slice(None), *SQUARE)] = 1
    w.state.set_layer(
        LabelLayer(SEG_LAYER, ai, {1: (255, 0, 0)}, names={0: "background", 1: "lesion"})
    )
    qtbot.waitUntil(lambda: w.edit_panel.label_box.count() == 1)
    yield w
    w.edit.prompter.answers["close"] = "Discard edits"
    w.close()
    assert not w.isVisible() and not w.edit.sessions
    qtbot.waitUntil(lambda: threading.active_count() <= threads_before, timeout=5000)


def disk(shape, center, r_mm, spacing, p1=None):
    """Pixels whose centre lies within r_mm of the segment center→p1 (spacing (row, col) mm)."""
    rr, cc = np.mgrid[: shape[0], : shape[1]].astype(float)
    a = np.asarray(center, float)
    b = a if p1 is None else np.asarray(p1, float)
    d = b - a
    t = (
        np.zeros_like(rr)
        if not d.any()
        else np.clip(((rr - a[0]) * d[0] + (cc - a[1]) * d[1]) / (d @ d), 0, 1)
    )
    dy, dx = (rr - a[0] - t * d[0]) * spacing[0], (cc - a[1] - t * d[1]) * spacing[1]
    return dy**2 + dx**2 <= r_mm**2


def changed(w):
    seg = w.edit.seg
    return seg.current != seg.ai


def test_brush_drag_on_anisotropic_axial_view(qtbot, win):
    w = win
    v = w.grid.views[0]
    z = w.state.cursor[0]
    w.edit_panel.set_size(4.4)  # diameter mm; pixels are 0.6 (rows) x 0.8 (cols) mm
    w.edit_panel.tool_buttons["brush"].click()
    assert w.state.tool == "brush" and w.actions_by_name["tool_brush"].isChecked()
    a, b = (8.0, 10.0), (8.0, 22.0)  # above the square, on background
    drag(v, v.plane_to_screen(*a), v.plane_to_screen(*b), steps=3)
    expected = disk(SHAPE[1:], a, 2.2, SPACING[1:], b)
    diff = changed(w)
    assert np.array_equal(diff[z], expected) and diff.sum() == expected.sum()
    assert (w.edit.seg.current[z][expected] == 1).all()
    assert w.edit.seg.history.undo_names() == ["brush"]  # one drag = one undo step
    # the view shows the edit layer (the AI result layer is hidden) with the painted pixels
    assert EDIT_LAYER in w.state.layers and not w.state.layers[SEG_LAYER].visible
    v.render_frame()
    r, c = 8, 16
    rgb = v._rgb[r, c]
    assert rgb[0] > rgb[1] + 40  # red overlay on the painted background
    # a dab in the square's inside: already label 1, nothing changes, no undo step added
    mouse(v, "press", v.plane_to_screen(30, 40))
    mouse(v, "release", v.plane_to_screen(30, 40))
    assert w.edit.seg.history.undo_names() == ["brush"]


def test_brush_on_coronal_mpr_view(qtbot, win):
    w = win
    w.state.set_layout("2x2")
    qtbot.wait(10)
    cor = w.grid.views[1]
    y = 10  # coronal plane through the background above the square
    w.state.set_cursor(6, y, 40)
    w.edit_panel.set_size(8.8)  # coronal rows are z (3 mm), columns x (0.8 mm)
    w.state.set_tool("brush")
    zc, xc = 5.0, 40.0
    r, c = cor.geom.voxel_to_display(zc, y, xc)
    mouse(cor, "press", cor.plane_to_screen(r, c))
    mouse(cor, "release", cor.plane_to_screen(r, c))
    expected = disk((SHAPE[0], SHAPE[2]), (zc, xc), 4.4, (SPACING[0], SPACING[2]))
    diff = changed(w)
    assert np.array_equal(diff[:, y, :], expected) and diff.sum() == expected.sum()
    assert (
        expected.sum(axis=1).max() == 11 and expected.any(axis=1).sum() == 3
    )  # ellipse: 3 rows, 11 cols


def test_eraser_undo_redo_shortcuts_and_provenance(qtbot, win):
    w = win
    v = w.grid.views[0]
    z = w.state.cursor[0]
    w.edit_panel.set_size(3.0)
    qtbot.keyClick(v, Qt.Key.Key_E, Qt.KeyboardModifier.ShiftModifier)  # Shift+E: eraser
    assert w.state.tool == "eraser"
    center = (30.0, 40.0)  # inside the AI square
    mouse(v, "press", v.plane_to_screen(*center))
    mouse(v, "release", v.plane_to_screen(*center))
    removed = disk(SHAPE[1:], center, 1.5, SPACING[1:])
    seg = w.edit.seg
    assert np.array_equal(changed(w)[z], removed) and (seg.current[z][removed] == 0).all()
    # paint outside the square: added
    w.state.set_tool("brush")
    mouse(v, "press", v.plane_to_screen(5.0, 5.0))
    mouse(v, "release", v.plane_to_screen(5.0, 5.0))
    added = disk(SHAPE[1:], (5.0, 5.0), 1.5, SPACING[1:])
    counts = seg.provenance_counts()
    assert counts["removed"] == removed.sum() and counts["added"] == added.sum()
    panel = w.edit_panel.review
    qtbot.waitUntil(lambda: f"Voxels added {added.sum()} " in panel.counts.text())
    assert f"removed {removed.sum()} " in panel.counts.text()
    # AI vs final volume per label in the table
    ml = float(np.prod(SPACING)) / 1000.0
    ai_ml = 20 * 20 * SHAPE[0] * ml
    final_ml = ai_ml + (added.sum() - removed.sum()) * ml
    assert (
        panel.table.item(0, 1).text() == f"{ai_ml:.2f}"
        and panel.table.item(0, 2).text() == f"{final_ml:.2f}"
    )
    # provenance overlay: added green, removed red, AI blue
    panel.provenance.setChecked(True)
    assert w.state.layers[PROV_LAYER].visible and not w.state.layers[EDIT_LAYER].visible
    codes = seg.provenance_plane(0, z)
    assert (codes[removed] == Provenance.REMOVED).all() and (codes[added] == Provenance.ADDED).all()
    v.render_frame()
    for (rr, cc), code in (((5, 5), 2), ((30, 40), 3), ((22, 32), 1)):
        px = v._rgb[rr, cc].astype(int)
        assert int(np.argmax(px)) == int(np.argmax(PROV_COLORS[code])), (rr, cc, px)
    panel.provenance.setChecked(False)
    # undo / redo with the keyboard, exact arrays
    after = seg.current.copy()
    qtbot.keyClick(v, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(changed(w)[z], removed)
    qtbot.keyClick(v, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not changed(w).any()
    assert not w.actions_by_name["undo"].isEnabled()
    qtbot.keyClick(v, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(changed(w)[z], removed)
    qtbot.keyClick(
        v, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    assert np.array_equal(seg.current, after)
    assert w.errors.records == []


def test_add_label_fill_islands_clear_and_review(qtbot, win):
    w = win
    v = w.grid.views[0]
    z = w.state.cursor[0]
    p = w.edit.prompter
    p.answers.update({"label_name": "nodule", "label_color": (0, 255, 0)})
    value = w.edit_panel.add_label()
    seg = w.edit.seg
    assert value == 2 and seg.labels[2].name == "nodule" and seg.labels[2].source == "reader"
    assert w.edit_panel.label_box.currentData() == 2 and w.edit.options.label == 2
    # an outline ring of label 2 on background, then fill its inside
    w.edit_panel.set_size(1.0)
    w.state.set_tool("brush")
    ring = [(5, 60), (5, 75), (15, 75), (15, 60), (5, 60)]
    mouse(v, "press", v.plane_to_screen(*ring[0]))
    for pt in ring[1:]:
        mouse(v, "move", v.plane_to_screen(*pt))
    mouse(v, "release", v.plane_to_screen(*ring[-1]))
    assert seg.current[z, 10, 67] == 0
    w.state.set_tool("fill")
    mouse(v, "press", v.plane_to_screen(10, 67))
    mouse(v, "release", v.plane_to_screen(10, 67))
    assert (seg.current[z, 6:15, 61:75] == 2).all()
    # fill on an open region (the background touching the border): a typed error, nothing changes
    before = seg.current.copy()
    mouse(v, "press", v.plane_to_screen(60, 5))
    mouse(v, "release", v.plane_to_screen(60, 5))
    assert np.array_equal(seg.current, before) and len(w.errors.records) == 1
    w.errors.records.clear()
    # a speck of label 2 elsewhere on the slice, removed by "remove small islands" on this slice
    w.state.set_tool("brush")
    mouse(v, "press", v.plane_to_screen(55, 10))
    mouse(v, "release", v.plane_to_screen(55, 10))
    assert seg.current[z, 55, 10] == 2
    w.edit_panel.scope.setCurrentIndex(0)
    w.edit_panel.min_size.setValue(5.0)  # mm²: the speck is ~1 mm², the filled ring ~70 mm²
    w.edit_panel.remove_islands_button.click()
    assert seg.current[z, 55, 10] == 0 and seg.current[z, 10, 67] == 2
    # keep largest island in 3-D (worker) for label 1 after adding a blob on another slice
    w.edit_panel.label_box.setCurrentIndex(w.edit_panel.label_box.findData(1))
    w.state.set_cursor(0, 32, 40)
    mouse(v, "press", v.plane_to_screen(5, 5))
    mouse(v, "release", v.plane_to_screen(5, 5))
    assert seg.current[0, 5, 5] == 1
    w.edit_panel.scope.setCurrentIndex(1)
    job = w.edit_panel.islands(keep_largest=True)
    with qtbot.waitSignal(job.finished, timeout=10000):
        pass
    assert seg.current[0, 5, 5] == 0 and (seg.current[:, 20:40, 30:50] == 1).all()
    # clear label 2 on the whole series: asks first ("Cancel" keeps it)
    w.edit_panel.label_box.setCurrentIndex(w.edit_panel.label_box.findData(2))
    p.answers["clear"] = ["Cancel", "Clear"]
    w.edit_panel.clear_label()
    assert (seg.current == 2).any()
    w.edit_panel.clear_label()
    assert not (seg.current == 2).any() and [r.answer for r in p.records if r.kind == "clear"] == [
        "Cancel",
        "Clear",
    ]
    # accept / reject per label and the review state go to the engine
    review = w.edit_panel.review
    review.refresh()
    box = review.table.cellWidget(0, 5)
    box.setCurrentIndex(box.findData("accepted"))
    assert str(seg.labels[1].decision) == "accepted"
    review.review.setCurrentIndex(review.review.findData("needs_attention"))
    assert str(seg.review_state) == "needs_attention"
    review.reader.setText("Dr Test")
    review.reader.editingFinished.emit()
    assert seg.reader == "Dr Test"
    assert w.errors.records == []


def test_threshold_paint_protection_and_brush_cursor(qtbot, win):
    w = win
    v = w.grid.views[0]
    z = w.state.cursor[0]
    panel = w.edit_panel
    w.edit.prompter.answers.update({"label_name": "rim", "label_color": (0, 255, 0)})
    assert panel.add_label() == 2
    # threshold paint: only voxels within -100..300 HU (the 100 HU square, not the -1000 HU air)
    panel.hu_check.setChecked(True)
    panel.set_size(6.0)
    w.state.set_tool("brush")
    a, b = (30.0, 25.0), (30.0, 55.0)  # across the square's left and right edges (cols 30 and 49)
    drag(v, v.plane_to_screen(*a), v.plane_to_screen(*b))
    under = disk(SHAPE[1:], a, 3.0, SPACING[1:], b)
    square = np.zeros(SHAPE[1:], bool)
    square[SQUARE] = True
    seg = w.edit.seg
    assert np.array_equal(seg.current[z] == 2, under & square) and (under & ~square).any()
    seg.undo()
    # overwrite protection: with "do not paint over other labels" only background changes
    panel.hu_check.setChecked(False)
    panel.protect.setChecked(True)
    drag(v, v.plane_to_screen(*a), v.plane_to_screen(*b))
    assert (
        np.array_equal(seg.current[z] == 2, under & ~square) and (seg.current[z][square] == 1).all()
    )
    # the brush cursor: a circle of the brush size in mm on screen, whatever the pixel spacing
    from viewer.qt.edit_tools import screen_radii

    rx, ry = screen_radii(v, 6.0)
    px_per_mm = v.image_rect().width() / (SHAPE[2] * SPACING[2])
    assert rx == pytest.approx(3.0 * px_per_mm) and ry == pytest.approx(rx)
    cor = w.grid.views[1]
    w.state.set_layout("2x2")
    qtbot.wait(10)
    crx, cry = screen_radii(cor, 6.0)
    assert cry == pytest.approx(crx, rel=1e-6)
    mouse(v, "move", v.plane_to_screen(30, 40), button=None)
    assert v.mouse_pos is not None
    v.repaint()  # paints the cursor through the handler without errors
    assert w.errors.records == []


def test_many_signal_emits_do_not_abort_the_app():
    """PySide6 6.12 on Python 3.11: each Signal.emit dropped a reference to True, so ~5000 mouse
    moves over a view (``hovered`` is emitted per move) or brush steps aborted the app with
    ``bool_dealloc``; pyproject pins PySide6 < 6.12 and viewer.qt._pyside_check refuses the build. Run in a subprocess: an abort must fail
    this test, not kill the test session."""
    import subprocess
    import sys

    code = (
        "import viewer.qt\n"
        "from PySide6.QtCore import QObject, Signal\n"
        "class O(QObject):\n    s = Signal(object)\n"
        "o = O()\no.s.connect(lambda _v: None)\n"
        "for i in range(20000):\n    o.s.emit(i)\n"
        "print('alive')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]),
    )
    assert out.returncode == 0 and "alive" in out.stdout, out.stderr[-2000:]


def test_only_views_whose_plane_cuts_the_edit_redraw(qtbot, win):
    w = win
    w.state.set_layout("2x2")
    w.state.set_cursor(6, 32, 40)
    qtbot.wait(20)
    ax, cor, sag = w.grid.views
    w.edit.start_editing()  # showing the edit layer (once) redraws every view
    for v in (ax, cor, sag):
        v.render_frame()
    w.state.set_tool("brush")
    w.edit_panel.set_size(3.0)
    mouse(ax, "press", ax.plane_to_screen(5, 10))  # box rows (y) 2..8, cols (x) 8..12
    assert ax._dirty and not cor._dirty and not sag._dirty
    for v in (ax, cor, sag):
        v.render_frame()
    mouse(ax, "move", ax.plane_to_screen(5, 40))  # now the stroke crosses the sagittal plane x = 40
    mouse(ax, "release", ax.plane_to_screen(5, 40))
    assert ax._dirty and sag._dirty and not cor._dirty
    sag.render_frame()
    r, c = sag.geom.voxel_to_display(6, 5, 40)
    assert sag._rgb[int(r), int(c)][0] > sag._rgb[int(r), int(c)][1] + 40  # the new label shows
