"""Agreement metrics on hand-made masks with known answers (no model, no torch)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from inference.compare import compare_labels
from inference.compare_metrics import (
    DIFF_COLORS,
    ONLY_A,
    ONLY_B,
    SWAPPED,
    confusion_per_slice,
    dice_iou,
    difference_classes,
    difference_rgb,
    hausdorff_mm,
    hd95_mm,
    surface_distances,
)

SPACING = (2.5, 0.7, 0.8)  # (sz, sy, sx) mm, anisotropic


def _cube(shape, lo, hi):
    m = np.zeros(shape, bool)
    m[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = True
    return m


def _brute_hd95(a, b, spacing, q=95):
    """Independent reference: boundary by explicit 6-neighbour test, all-pairs distances."""

    def boundary(m):
        p = np.pad(m, 1)
        inner = np.ones_like(m)
        for ax in range(m.ndim):
            for s in (-1, 1):
                inner &= np.roll(p, s, axis=ax)[tuple(slice(1, -1) for _ in range(m.ndim))]
        return m & ~inner

    pa = np.argwhere(boundary(a)) * np.asarray(spacing)
    pb = np.argwhere(boundary(b)) * np.asarray(spacing)
    d = np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1))
    return float(np.percentile(np.concatenate([d.min(1), d.min(0)]), q))


class TestDiceIou:
    def test_shifted_cubes(self):
        a = _cube((20, 20, 20), (2, 2, 2), (10, 10, 10))
        b = _cube((20, 20, 20), (2, 2, 4), (10, 10, 12))  # shifted 2 voxels in x
        conf = confusion_per_slice(a.astype(np.uint8), b.astype(np.uint8), 2).sum(0)
        dice, iou = dice_iou(conf)
        assert dice[1] == pytest.approx(2 * 384 / 1024)
        assert iou[1] == pytest.approx(384 / 640)

    def test_empty_labels_agree(self):
        a = np.zeros((2, 4, 4), np.uint8)
        dice, iou = dice_iou(confusion_per_slice(a, a, 3).sum(0))
        assert dice.tolist() == [1.0, 1.0, 1.0] and iou.tolist() == [1.0, 1.0, 1.0]

    def test_out_of_range_label_rejected(self):
        a = np.full((1, 2, 2), 5, np.uint8)
        with pytest.raises(ValueError, match="outside 0..2"):
            confusion_per_slice(a, a, 3)


class TestHd95:
    def test_parallel_planes_exact(self):
        a = np.zeros((10, 12, 12), bool)
        b = np.zeros_like(a)
        a[3] = True
        b[5] = True  # two slices apart → every surface distance is 2 * sz
        assert hd95_mm(a, b, SPACING) == pytest.approx(2 * SPACING[0])
        dab, dba = surface_distances(a, b, SPACING)
        assert np.allclose(dab, 5.0) and np.allclose(dba, 5.0)

    def test_shift_along_x_uses_x_spacing(self):
        a = np.zeros((10, 12, 12), bool)
        b = np.zeros_like(a)
        a[:, :, 3] = True
        b[:, :, 6] = True
        assert hd95_mm(a, b, SPACING) == pytest.approx(3 * SPACING[2])

    @pytest.mark.parametrize("shift", [(0, 0, 2), (1, 0, 0), (1, 2, 3)])
    def test_matches_brute_force(self, shift):
        a = _cube((16, 16, 16), (3, 3, 3), (9, 10, 8))
        lo = np.add((3, 3, 3), shift)
        b = _cube((16, 16, 16), lo, np.add((9, 10, 8), shift))
        assert hd95_mm(a, b, SPACING) == pytest.approx(_brute_hd95(a, b, SPACING), rel=1e-9)
        assert hausdorff_mm(a, b, SPACING, (50.0, 100.0)) == pytest.approx(
            (_brute_hd95(a, b, SPACING, 50), _brute_hd95(a, b, SPACING, 100)), rel=1e-9
        )

    def test_identical_is_zero_and_empty_conventions(self):
        a = _cube((8, 8, 8), (2, 2, 2), (5, 5, 5))
        assert hd95_mm(a, a, SPACING) == 0.0
        empty = np.zeros_like(a)
        assert hd95_mm(empty, empty, SPACING) == 0.0
        assert hd95_mm(a, empty, SPACING) == math.inf


class TestCompareLabels:
    def test_known_volume_dice_and_verdict(self):
        a = np.zeros((10, 20, 20), np.uint8)
        b = np.zeros_like(a)
        a[2:6, 5:15, 5:15] = 1  # 400 voxels
        b[2:7, 5:15, 5:15] = 1  # 500 voxels: one extra slice (z = 6)
        a[8, 0:2, 0:2] = 2
        b[8, 0:2, 0:2] = 2
        names = {0: "bg", 1: "lung", 2: "lesion"}
        p = compare_labels(a, b, SPACING, names, names=("torch", "onnx"), threshold=0.999)
        lung, lesion = p.labels
        vox_ml = 2.5 * 0.7 * 0.8 / 1000
        assert lung.voxels_a == 400 and lung.voxels_b == 500
        assert lung.volume_a_ml == pytest.approx(400 * vox_ml)
        assert lung.volume_diff_ml == pytest.approx(100 * vox_ml)
        assert lung.volume_diff_pct == pytest.approx(25.0)
        assert lung.dice == pytest.approx(800 / 900)
        assert lung.hd95_mm == pytest.approx(_brute_hd95(a == 1, b == 1, SPACING))
        assert lung.hd_max_mm == pytest.approx(2.5)  # the extra slice is one sz away
        assert lesion.dice == 1.0 and lesion.hd95_mm == 0.0
        assert p.flips == 100 and p.worst_slice == 6
        assert p.slice_flips.tolist() == [0, 0, 0, 0, 0, 0, 100, 0, 0, 0]
        assert p.slice_dice[6] == 0.0 and p.slice_dice[2] == 1.0 and p.slice_dice[0] == 1.0
        assert not p.passed and "lung" in p.reasons[0]
        d = p.to_dict()
        json.dumps(d, allow_nan=False)
        assert d["per_slice"]["flips"][6] == 100 and d["worst_slice"] == 6

    def test_missing_label_gives_null_hd95_in_json(self):
        a = np.zeros((3, 8, 8), np.uint8)
        b = a.copy()
        a[1, 2:4, 2:4] = 2
        p = compare_labels(a, b, SPACING, {0: "bg", 1: "x", 2: "y"})
        assert p.labels[1].hd95_mm == math.inf and p.labels[1].volume_diff_pct == pytest.approx(
            -100.0
        )
        d = p.to_dict()
        assert d["labels"][1]["hd95_mm"] is None
        json.dumps(d, allow_nan=False)

    def test_identical_passes(self):
        a = np.random.default_rng(0).integers(0, 3, (4, 16, 16)).astype(np.uint8)
        p = compare_labels(a, a.copy(), SPACING, {0: "bg", 1: "x", 2: "y"})
        assert p.passed and p.flips == 0 and p.min_dice == 1.0


class TestDifferenceMap:
    def test_classes(self):
        a = np.array([[0, 1, 1, 2, 0]])
        b = np.array([[0, 1, 0, 1, 2]])
        assert difference_classes(a, b).tolist() == [[0, 0, ONLY_A, SWAPPED, ONLY_B]]

    def test_rgb_colours_over_backdrop(self):
        a = np.array([[0, 1, 1, 2, 0]])
        b = np.array([[0, 1, 0, 1, 2]])
        img = np.full((1, 5), 77, np.uint8)
        rgb = difference_rgb(a, b, img)
        assert rgb.shape == (1, 5, 3) and rgb.dtype == np.uint8
        assert rgb[0, 0].tolist() == [77, 77, 77] and rgb[0, 1].tolist() == [77, 77, 77]
        assert rgb[0, 2].tolist() == list(DIFF_COLORS[ONLY_A])
        assert rgb[0, 3].tolist() == list(DIFF_COLORS[SWAPPED])
        assert rgb[0, 4].tolist() == list(DIFF_COLORS[ONLY_B])
        half = difference_rgb(a, b, img, alpha=0.5)
        assert half[0, 2].tolist() == [round(0.5 * c + 0.5 * 77) for c in DIFF_COLORS[ONLY_A]]
