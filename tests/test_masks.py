"""Edit operations of viewer.masks: brush geometry in mm, strokes, threshold, fill, islands,
clear, relabel, new labels, protection, errors. Expected voxels are computed independently here
(explicit loops over pixels), never with the code under test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from viewer.masks import Box, EditableSegmentation, EditError, LabelSource
from viewer.masks_tools import BrushSettings, BrushTool, brush_radii_px

LABELS = [{"value": 0, "name": "background", "color": [0, 0, 0]},
          {"value": 1, "name": "lung", "color": [200, 60, 60]},
          {"value": 2, "name": "heart", "color": [60, 200, 60]}]


def make(shape=(6, 40, 48), spacing=(3.0, 0.5, 1.0), ai=None, image=None) -> EditableSegmentation:
    ai = np.zeros(shape, np.uint8) if ai is None else ai
    return EditableSegmentation(ai, spacing, LABELS, image=image)


def expected_capsule(shape2, p0, p1, diameter, sr, sc) -> np.ndarray:
    """Pixels whose centre is within diameter/2 mm of segment p0-p1 (explicit loop, test-side)."""
    out = np.zeros(shape2, bool)
    r = diameter / 2
    a = (p0[0] * sr, p0[1] * sc)
    b = (p1[0] * sr, p1[1] * sc)
    for i in range(shape2[0]):
        for j in range(shape2[1]):
            p = (i * sr, j * sc)
            d = (b[0] - a[0], b[1] - a[1])
            den = d[0] ** 2 + d[1] ** 2
            t = 0.0 if den == 0 else max(0.0, min(1.0, ((p[0] - a[0]) * d[0] + (p[1] - a[1]) * d[1]) / den))
            q = (a[0] + t * d[0], a[1] + t * d[1])
            if (p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 <= r * r + 1e-9:
                out[i, j] = True
    return out


class TestBrushGeometry:
    def test_axial_dab_on_anisotropic_pixels_is_an_ellipse_of_exact_voxels(self):
        seg = make()  # axial pixels: 0.5 mm rows (y) x 1.0 mm columns (x)
        box = seg.paint(0, 2, (20, 20), label=1, size_mm=4.0)
        changed = np.argwhere(seg.current != 0)
        # radius 2 mm: 4 rows either way (0.5 mm), 2 columns either way (1.0 mm)
        # column offset 0: |dr| <= 4 -> 9; +-1: (0.5 dr)^2 <= 3 -> |dr| <= 3 -> 7 each; +-2: dr = 0 -> 1 each
        assert len(changed) == 9 + 2 * 7 + 2 * 1
        assert set(changed[:, 0]) == {2}
        exp = expected_capsule((40, 48), (20, 20), (20, 20), 4.0, 0.5, 1.0)
        np.testing.assert_array_equal(seg.current[2] != 0, exp)
        assert seg.current[[0, 1, 3, 4, 5]].max() == 0
        assert box == Box(2, 3, 16, 25, 18, 23)

    @pytest.mark.parametrize("axis,spacing2", [(1, (3.0, 1.0)), (2, (3.0, 0.5))])
    def test_mpr_planes_use_their_own_pixel_spacing(self, axis, spacing2):
        seg = make(shape=(12, 40, 48))
        seg.paint(axis, 20, (6, 15), label=2, size_mm=7.0)
        plane = seg.current[:, 20, :] if axis == 1 else seg.current[:, :, 20]
        exp = expected_capsule(plane.shape, (6, 15), (6, 15), 7.0, *spacing2)
        np.testing.assert_array_equal(plane == 2, exp)
        assert (seg.current == 2).sum() == exp.sum()  # nothing outside the plane
        ry, rx = brush_radii_px(seg.spacing, axis, 7.0)
        assert (ry, rx) == (7.0 / 2 / spacing2[0], 7.0 / 2 / spacing2[1])

    def test_segment_is_the_exact_union_of_circles_along_it(self):
        seg = make()
        seg.paint(0, 1, (5.3, 3.0), (33.7, 41.2), label=1, size_mm=3.0)
        exp = expected_capsule((40, 48), (5.3, 3.0), (33.7, 41.2), 3.0, 0.5, 1.0)
        np.testing.assert_array_equal(seg.current[1] == 1, exp)

    def test_fast_drag_leaves_no_gap_and_is_one_undo_step(self):
        seg = make()
        tool = BrushTool(seg, BrushSettings(label=1, size_mm=1.0))
        tool.press(0, 3, (2, 2))
        for p in [(2, 45), (37, 45), (37, 2)]:  # huge jumps between mouse events
            tool.move(p)
        box = tool.release()
        m = seg.current[3] == 1
        # the path is connected and covers every column of the top edge and every row of the right edge
        assert m[2, 2:46].all() and m[2:38, 45].all() and m[37, 2:46].all()
        assert ndimage.label(m)[1] == 1
        assert len(seg.history) == 1 and box is not None
        seg.undo()
        assert not seg.current.any()

    def test_thin_brush_still_draws_connected_diagonal(self):
        seg = make()
        seg.paint(0, 0, (0, 0), (39, 47), label=1, size_mm=0.1)
        m = seg.current[0] == 1
        assert ndimage.label(m, structure=np.ones((3, 3)))[1] == 1
        assert m[0, 0] and m[39, 47]

    def test_brush_outside_the_slice_is_clipped_or_ignored(self):
        seg = make()
        assert seg.paint(0, 0, (-50, -50), label=1, size_mm=4.0) is None
        box = seg.paint(0, 0, (0, 0), label=1, size_mm=4.0)
        assert box is not None and box.y0 == 0 and box.x0 == 0
        with pytest.raises(IndexError, match="outside"):
            seg.paint(0, 6, (0, 0), label=1, size_mm=4.0)
        with pytest.raises(ValueError, match="> 0 mm"):
            seg.paint(0, 0, (5, 5), label=1, size_mm=0)


class TestPaintOptions:
    def test_threshold_paint_changes_only_voxels_in_hu_range(self):
        img = np.tile(np.arange(48, dtype=np.int16) * 50 - 1000, (6, 40, 1))  # HU rises along x
        seg = make(image=img)
        seg.paint(0, 2, (20, 24), label=1, size_mm=30.0, hu_range=(-200, 100))
        m = seg.current[2] == 1
        disc = expected_capsule((40, 48), (20, 24), (20, 24), 30.0, 0.5, 1.0)
        inrange = (img[2] >= -200) & (img[2] <= 100)
        np.testing.assert_array_equal(m, disc & inrange)
        assert m.any() and (disc & ~inrange).any()

    def test_threshold_without_image_is_a_clear_error(self):
        with pytest.raises(EditError, match="image"):
            make().paint(0, 0, (5, 5), label=1, size_mm=2, hu_range=(0, 1))

    def test_overwrite_protection_paints_only_into_allowed_labels(self):
        ai = np.zeros((6, 40, 48), np.uint8)
        ai[2, 15:25, 15:25] = 1
        seg = make(ai=ai)
        seg.paint(0, 2, (20, 20), label=2, size_mm=20.0, editable={0})
        assert (seg.current[2, 15:25, 15:25] == 1).all()
        assert (seg.current == 2).sum() > 0
        seg.paint(0, 2, (20, 20), label=2, size_mm=20.0)  # no protection: overwrites
        assert (seg.current[2, 15:25, 15:25] == 2).sum() > 0

    def test_eraser_removes_only_the_given_label(self):
        ai = np.zeros((6, 40, 48), np.uint8)
        ai[1, 10:30, 10:20] = 1
        ai[1, 10:30, 20:30] = 2
        seg = make(ai=ai)
        seg.erase(1, 20, (1, 20), size_mm=200.0, label=1)  # coronal plane y=20, whole row
        assert (seg.current[1, 20, 10:20] == 0).all() and (seg.current[1, 20, 20:30] == 2).all()
        seg.erase(0, 1, (20, 25), size_mm=200.0)  # all labels on the axial slice
        assert not seg.current[1].any()


class TestFill:
    def ring(self):
        seg = make()
        yy, xx = np.mgrid[0:40, 0:48]
        d = np.hypot((yy - 20) * 0.5, (xx - 24) * 1.0)
        ring = (d >= 6) & (d <= 8)
        seg.paint_mask(ring[None], label=1, box=Box(3, 4, 0, 40, 0, 48))
        return seg, ring

    def test_fill_closed_region_fills_exactly_the_hole(self):
        seg, ring = self.ring()
        box = seg.fill(0, 3, (20, 24), label=2)
        hole = ndimage.binary_fill_holes(ring) & ~ring
        np.testing.assert_array_equal(seg.current[3] == 2, hole)
        assert box is not None and box.z0 == 3 and box.z1 == 4

    def test_open_region_is_refused_and_nothing_changes(self):
        seg, _ = self.ring()
        rev, before = seg.revision, seg.current.copy()
        with pytest.raises(EditError, match="not closed"):
            seg.fill(0, 3, (1, 1), label=2)
        assert seg.revision == rev
        np.testing.assert_array_equal(seg.current, before)


class TestIslands:
    def blobs(self):
        ai = np.zeros((10, 30, 30), np.uint8)
        ai[1:8, 2:12, 2:12] = 1  # 700 voxels
        ai[2:4, 20:23, 20:23] = 1  # 18 voxels
        ai[6, 25, 25] = 1  # 1 voxel
        ai[6, 20:22, 2:4] = 2  # another label, untouched
        return make(shape=(10, 30, 30), spacing=(2.0, 1.0, 1.0), ai=ai), ai

    def test_remove_small_islands_3d_in_mm3(self):
        seg, ai = self.blobs()
        seg.remove_small_islands(1, 36.0)  # 2 mm3 voxels: 18 voxels = 36 mm3 kept, 1 voxel removed
        exp = ai.copy()
        exp[6, 25, 25] = 0
        np.testing.assert_array_equal(seg.current, exp)
        seg.remove_small_islands(1, 37.0)
        exp[2:4, 20:23, 20:23] = 0
        np.testing.assert_array_equal(seg.current, exp)

    def test_keep_largest_island_3d_and_2d(self):
        seg, ai = self.blobs()
        seg.keep_largest_island(1, axis=0, index=6)  # slice 6: big blob + single voxel
        assert seg.current[6, 25, 25] == 0 and (seg.current[2:4, 20:23, 20:23] == 1).all()
        seg.keep_largest_island(1)
        exp = np.where(ai == 1, 0, ai)
        exp[1:8, 2:12, 2:12] = 1
        np.testing.assert_array_equal(seg.current, exp)

    def test_islands_report_progress_and_cancel(self):
        seg, ai = self.blobs()
        seen = []
        seg.keep_largest_island(1, progress=lambda d, t, m: seen.append((d, t)))
        assert seen[-1] == (3, 3)
        seg2, _ = self.blobs()
        from viewer.jobs import Cancelled

        with pytest.raises(Cancelled):
            seg2.keep_largest_island(1, cancel=lambda: True)
        np.testing.assert_array_equal(seg2.current, ai)


class TestClearRelabelLabels:
    def test_clear_on_slice_and_whole_series(self):
        ai = np.zeros((5, 20, 20), np.uint8)
        ai[:, 5:10, 5:10] = 1
        ai[:, 12:15, 12:15] = 2
        seg = make(shape=(5, 20, 20), ai=ai)
        box = seg.clear_label(1, axis=0, index=2)
        assert box == Box(2, 3, 5, 10, 5, 10)
        assert (seg.current[2] == 1).sum() == 0 and (seg.current == 1).sum() == 4 * 25
        seg.clear_label(1)
        assert (seg.current == 1).sum() == 0 and (seg.current == 2).sum() == 5 * 9

    def test_relabel_and_new_label(self):
        ai = np.zeros((5, 20, 20), np.uint8)
        ai[1:3, 5:10, 5:10] = 1
        seg = make(shape=(5, 20, 20), ai=ai)
        info = seg.add_label("nodule", (255, 255, 0))
        assert info.value == 3 and info.source == LabelSource.READER
        seg.relabel(1, 3, axis=1, index=7)  # coronal slice y = 7
        assert (seg.current[:, 7, :] == 3).sum() == 10 and (seg.current == 1).sum() == 40
        seg.paint(0, 4, (10, 10), label=3, size_mm=2.0)
        stats = {s.value: s for s in seg.label_stats()}
        assert stats[3].ai_voxels == 0 and stats[3].source == "reader" and stats[3].final_voxels > 10

    def test_label_errors_are_clear(self):
        seg = make()
        with pytest.raises(EditError, match="label 9 is not in the label table"):
            seg.paint(0, 0, (5, 5), label=9, size_mm=2)
        with pytest.raises(EditError, match="background"):
            seg.paint(0, 0, (5, 5), label=0, size_mm=2)
        with pytest.raises(EditError, match="already used"):
            seg.add_label("again", (1, 2, 3), value=1)
        with pytest.raises(EditError, match="colour"):
            seg.add_label("bad", (1, 2))
        with pytest.raises(EditError, match="uint8"):
            EditableSegmentation(np.zeros((2, 3, 4), np.int16), (1, 1, 1))

    def test_change_callbacks_get_the_box_and_revision_counts(self):
        seg = make()
        got = []
        seg.on_change.append(got.append)
        box = seg.paint(0, 1, (10, 10), label=1, size_mm=2.0)
        seg.set_decision(1, "accepted")
        seg.set_review_state("needs_attention")
        assert got == [box, None, None] and seg.revision == 3 and seg.has_unsaved_edits
        assert box.intersects_plane(0, 1) and not box.intersects_plane(0, 2)
        seg.mark_committed()
        assert not seg.has_unsaved_edits and seg.revision == 4 and got[-1] is None
        assert seg.paint(0, 1, (10, 10), label=1, size_mm=2.0) is None  # no change, no revision
        assert seg.revision == 4 and len(got) == 4 and not seg.has_unsaved_edits


def test_brush_radius_in_pixels_matches_geometry():
    # a 5 mm brush on 0.7 x 0.7 mm pixels covers the pixels within 2.5 mm of the centre
    seg = make(spacing=(1.0, 0.7, 0.7))
    seg.paint(0, 0, (20, 20), label=1, size_mm=5.0)
    n = sum(1 for i in range(-5, 6) for j in range(-5, 6) if math.hypot(i * 0.7, j * 0.7) <= 2.5)
    assert (seg.current == 1).sum() == n


def test_brush_tool_erase_mode_and_failed_press_closes_the_stroke():
    ai = np.zeros((6, 40, 48), np.uint8)
    ai[2, 10:30, 10:30] = 1
    seg = make(ai=ai)
    tool = BrushTool(seg, BrushSettings(label=1, size_mm=2.0, mode="erase"))
    tool.press(0, 2, (20, 12))
    tool.move((20, 28))
    assert tool.active and seg.in_stroke
    box = tool.release()
    assert not tool.active and not seg.in_stroke and box is not None
    assert (seg.current[2, 20, 12:29] == 0).all() and len(seg.history) == 1
    bad = BrushTool(seg, BrushSettings(label=9, size_mm=2.0))
    with pytest.raises(EditError):
        bad.press(0, 2, (5, 5))
    assert not bad.active and not seg.in_stroke
    assert bad.move((6, 6)) is None
