"""segment statistics on hand-made masks whose volumes, HU and diameters are known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from viewer.segstats import feret_diameter_mm, lesion_labels_from_names, segment_statistics

NAMES = {0: "background", 1: "right lung", 2: "left lung", 3: "lesion"}
SP = (2.0, 0.5, 0.8)  # sz, sy, sx mm → voxel 0.8 mm³


def _case() -> tuple[np.ndarray, np.ndarray]:
    lab = np.zeros((10, 100, 120), np.uint8)
    hu = np.full(lab.shape, 40, np.int16)
    lab[2:8, 10:60, 10:50] = 1  # 6*50*40 = 12000 voxels
    hu[2:8, 10:60, 10:50] = -850
    hu[2:8, 10:60, 10] = -750  # 1 column of 6*50 voxels at -750 → mean/SD known
    lab[2:8, 10:60, 60:100] = 2
    hu[2:8, 10:60, 60:100] = -800
    lab[4:7, 20:30, 20:35] = 3  # lesion A: 3*10*15 = 450 voxels, inside the right lung
    hu[4:7, 20:30, 20:35] = 30
    lab[5, 80:82, 5:8] = 3  # lesion B: 2x3 pixels on one slice
    return lab, hu


class TestSegmentStatistics:
    def test_volumes_and_hu(self) -> None:
        lab, hu = _case()
        st = segment_statistics(lab, hu, SP, label_names=NAMES)
        by = {e["name"]: e for e in st["labels"]}
        assert by["right lung"]["voxels"] == 12000 - 450
        assert by["right lung"]["volume_ml"] == pytest.approx((12000 - 450) * 0.8 / 1000)
        r = hu[lab == 1].astype(float)
        assert by["right lung"]["hu"]["mean"] == pytest.approx(r.mean(), abs=0.01)
        assert by["right lung"]["hu"]["sd"] == pytest.approx(r.std(), abs=0.01)
        assert (by["right lung"]["hu"]["min"], by["right lung"]["hu"]["max"]) == (-850, -750)
        assert by["left lung"]["hu"] == {"mean": -800.0, "sd": 0.0, "min": -800.0, "max": -800.0}
        assert by["lesion"]["voxels"] == 456
        json.dumps(st)  # serialisable

    def test_lesion_components(self) -> None:
        lab, hu = _case()
        les = segment_statistics(lab, hu, SP, label_names=NAMES)["lesions"]["3"]
        assert les["count"] == 2
        a, b = les["components"]
        assert a["id"] == 1 and a["voxels"] == 450 and a["volume_ml"] == pytest.approx(0.36)
        # 10 rows x 15 columns of 0.5 x 0.8 mm pixels: diagonal of a 5 mm x 12 mm rectangle = 13 mm
        assert a["longest_axial_diameter_mm"] == pytest.approx(13.0, abs=0.01)
        assert a["slice_index"] in (4, 5, 6) and a["z_range"] == [4, 6] and a["centroid_slice"] == 5
        assert a["centroid_zyx"] == pytest.approx([5.0, 24.5, 27.0])
        assert a["hu_mean"] == 30.0
        ends = np.array(a["diameter_endpoints_yx"])
        assert sorted(ends[:, 0]) == [19.5, 29.5] and sorted(ends[:, 1]) == [19.5, 34.5]
        assert b["slice_index"] == 5 and b["longest_axial_diameter_mm"] == pytest.approx(
            np.hypot(1.0, 2.4), abs=0.01
        )

    def test_largest_slice_is_measured(self) -> None:
        lab = np.zeros((5, 64, 64), np.uint8)
        yy, xx = np.mgrid[:64, :64]
        for z, r in zip(range(5), (3, 8, 14, 6, 2), strict=True):
            lab[z][(yy - 32) ** 2 + (xx - 32) ** 2 <= r * r] = 3
        c = segment_statistics(lab, None, (1.0, 1.0, 1.0), label_names=NAMES)["lesions"]["3"][
            "components"
        ][0]
        assert c["slice_index"] == 2
        # a digital disc of radius 14 px: edge-to-edge between 29 px and 29 * sqrt(2)-ish bounds
        assert 29.0 <= c["longest_axial_diameter_mm"] <= 29.0 + np.sqrt(2)

    def test_no_hu_and_empty(self) -> None:
        lab = np.zeros((2, 8, 8), np.uint8)
        st = segment_statistics(lab, None, (1, 1, 1), label_names=NAMES)
        assert all(e["voxels"] == 0 and e["hu"] is None for e in st["labels"])
        assert st["lesions"]["3"] == {
            "name": "lesion",
            "count": 0,
            "total_volume_ml": 0.0,
            "components": [],
            "components_listed": 0,
        }

    def test_shape_mismatch(self) -> None:
        with pytest.raises(ValueError, match="differ in shape"):
            segment_statistics(
                np.zeros((2, 8, 8), np.uint8), np.zeros((2, 8, 9)), (1, 1, 1), label_names=NAMES
            )


def test_feret_single_pixel_and_line() -> None:
    m = np.zeros((9, 9), np.uint8)
    m[4, 4] = 1
    assert feret_diameter_mm(m, (0.5, 2.0))[0] == pytest.approx(np.hypot(0.5, 2.0))
    m[4, 2:8] = 1  # 6 pixels in a row
    assert feret_diameter_mm(m, (1.0, 1.0))[0] == pytest.approx(np.hypot(6, 1))
    assert feret_diameter_mm(np.zeros((4, 4), np.uint8), (1, 1)) == (0.0, [])


def test_lesion_names() -> None:
    assert lesion_labels_from_names(
        {0: "background", 1: "right lung", 3: "Lesion", 4: "nodule"}
    ) == [3, 4]


def test_component_cap_counts_all() -> None:
    from viewer.segstats import lesion_components

    lab = np.zeros((3, 20, 20), np.uint8)
    lab[0, 0, 0] = lab[1, 10, 10] = 3
    lab[2, 5:8, 5:8] = 3
    comps, count = lesion_components(lab, 3, (1.0, 1.0, 1.0), max_components=2)
    assert (
        count == 3
        and len(comps) == 2
        and comps[0]["voxels"] == 9
        and [c["id"] for c in comps] == [1, 2]
    )
