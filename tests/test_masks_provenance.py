"""Provenance (as AI / added / removed / relabelled) and AI-vs-final volumes after known edits."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.masks import Box, Decision, EditableSegmentation, LabelSource, Provenance, ReviewState

SPACING = (2.0, 0.5, 0.5)  # one voxel = 0.5 mm3 = 0.0005 mL
ML = 0.0005


@pytest.fixture
def seg() -> EditableSegmentation:
    ai = np.zeros((10, 40, 40), np.uint8)
    ai[2:6, 10:20, 10:20] = 1  # 400 voxels
    ai[2:6, 30:35, 30:35] = 2  # 100 voxels
    labels = [{"value": 1, "name": "lung", "color": [255, 0, 0]},
              {"value": 2, "name": "mass", "color": [0, 255, 0]}]
    return EditableSegmentation(ai, SPACING, labels, reader="Dr Test")


def known_edits(seg: EditableSegmentation) -> None:
    # 1. the reader removes 80 lung voxels
    seg.paint_mask(np.ones((4, 10, 2), bool), label=0, box=Box(2, 6, 10, 20, 10, 12))
    # 2. ... and adds 80 lung voxels where the AI had background
    seg.paint_mask(np.ones((4, 2, 10), bool), label=1, box=Box(2, 6, 20, 22, 10, 20))
    # 3. relabels the mass on axial slice 3 as lung (25 voxels)
    seg.relabel(2, 1, axis=0, index=3)
    # 4. a new finding: 1 mm brush on 0.5 mm pixels = centre + 4 neighbours = 5 voxels
    seg.add_label("nodule", (255, 255, 0))
    seg.paint(0, 8, (20, 20), label=3, size_mm=1.0)
    # 5. relabel 4 lung voxels as mass, then change the mind (undo)
    seg.paint_mask(np.ones((1, 2, 2), bool), label=2, box=Box(4, 5, 12, 14, 12, 14))
    seg.undo()


def test_counts_and_volumes_after_known_sequence(seg):
    known_edits(seg)
    st = {s.value: s for s in seg.label_stats()}
    assert (st[1].ai_voxels, st[1].removed_voxels, st[1].added_voxels, st[1].final_voxels,
            st[1].kept_voxels) == (400, 80, 105, 425, 320)
    assert (st[2].ai_voxels, st[2].removed_voxels, st[2].added_voxels, st[2].final_voxels) == (100, 25, 0, 75)
    assert (st[3].ai_voxels, st[3].added_voxels, st[3].final_voxels, st[3].source) == (0, 5, 5, "reader")
    assert st[1].ai_ml == pytest.approx(400 * ML) and st[1].final_ml == pytest.approx(425 * ML)
    assert st[2].removed_ml == pytest.approx(25 * ML) and st[3].added_ml == pytest.approx(5 * ML)
    prov = seg.provenance_counts()
    assert prov == {"as_ai": 16000 - 85 - 80 - 25, "added": 85, "removed": 80, "relabelled": 25}
    # the same figures from a full-volume recount (no touched-box shortcut)
    full = np.bincount(seg.provenance_map().ravel(), minlength=4)
    assert list(full) == [prov["as_ai"], 85, 80, 25]
    for v, s in st.items():
        assert s.final_voxels == int((seg.current == v).sum())
        assert s.ai_voxels == int((seg.ai == v).sum())


def test_provenance_plane_codes(seg):
    known_edits(seg)
    codes = seg.provenance_plane(0, 3)
    assert (codes[10:20, 10:12] == Provenance.REMOVED).all()
    assert (codes[20:22, 10:20] == Provenance.ADDED).all()
    assert (codes[30:35, 30:35] == Provenance.RELABELLED).all()
    assert (codes[12:18, 12:18] == Provenance.AS_AI).all()
    assert np.bincount(codes.ravel(), minlength=4)[1:].tolist() == [20, 20, 25]
    assert (seg.provenance_plane(0, 0) == Provenance.AS_AI).all()


def test_untouched_segmentation_has_no_reader_voxels(seg):
    assert seg.touched is None
    prov = seg.provenance_counts()
    assert prov == {"as_ai": 16000, "added": 0, "removed": 0, "relabelled": 0}
    assert [(s.value, s.ai_voxels, s.final_voxels) for s in seg.label_stats()] == [(1, 400, 400), (2, 100, 100)]


def test_undo_of_everything_restores_as_ai(seg):
    known_edits(seg)
    while seg.undo() is not None:
        pass
    assert seg.provenance_counts()["as_ai"] == 16000
    assert np.array_equal(seg.current, seg.ai)


def test_decisions_and_review_state(seg):
    seg.set_decision(1, Decision.ACCEPTED)
    seg.set_decision(2, "rejected")
    seg.set_review_state(ReviewState.NEEDS_ATTENTION)
    seg.update_label(2, name="tumour", color=(1, 2, 3))
    labels = seg.labels
    assert labels[1].decision == Decision.ACCEPTED and labels[2].decision == Decision.REJECTED
    assert labels[2].name == "tumour" and labels[2].color == (1, 2, 3) and labels[2].source == LabelSource.AI
    assert seg.review_state == ReviewState.NEEDS_ATTENTION and seg.reader == "Dr Test"
    st = {s.value: s for s in seg.label_stats()}
    assert st[2].decision == "rejected" and st[2].name == "tumour"
    with pytest.raises(ValueError):
        seg.set_review_state("done")


def test_ai_map_is_read_only_and_copied():
    ai = np.zeros((2, 4, 4), np.uint8)
    seg = EditableSegmentation(ai, (1, 1, 1), [])
    ai[0, 0, 0] = 7
    assert seg.ai[0, 0, 0] == 0
    with pytest.raises(ValueError):
        seg.ai[0, 0, 0] = 1
