"""Post-processing (inference.postprocess) on hand-made label maps, and through segment_volume."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from inference.package import PackageError, load_package
from inference.pipeline import segment_volume
from inference.postprocess import postprocess_labels, resolve_settings
from inference.preprocess_input import ArrayVolume
from tests.test_engines import band_package

SP = (2.0, 1.0, 1.0)  # mm; one voxel = 2 mm³


def _labels() -> np.ndarray:
    lab = np.zeros((6, 40, 60), np.uint8)
    lab[1:5, 5:35, 5:25] = 1  # right lung, 4*30*20 voxels
    lab[2:4, 18:22, 12:16] = 0  # a hole (a vessel the net missed), enclosed in every slice
    lab[2, 10:13, 10:13] = 3  # a lesion inside the lung: 9 voxels = 18 mm³
    lab[1:5, 5:35, 35:55] = 2  # left lung
    lab[0, 0:2, 58:60] = 2  # a stray left-lung island (4 voxels) not touching the lung
    lab[5, 38:40, 0:2] = 3  # a tiny lesion: 4 voxels = 8 mm³
    return lab


class TestPostprocess:
    def test_each_step(self) -> None:
        lab = _labels()
        s = resolve_settings(
            {
                "largest_component_labels": [1, 2],
                "fill_holes_labels": [1, 2],
                "min_component_mm3": {"3": 10.0},
            },
            None,
        )
        out, rec = postprocess_labels(lab, SP, s)
        assert (lab == _labels()).all(), "input must not be modified"
        assert out[5, 38:40, 0:2].sum() == 0  # 8 mm³ lesion removed
        assert (out[2, 10:13, 10:13] == 3).all()  # 18 mm³ lesion kept, lung not painted over it
        assert (out[2:4, 18:22, 12:16] == 1).all()  # hole filled
        assert (out[0, 0:2, 58:60] == 0).all()  # island removed
        assert rec["changed_voxels"] == {
            "removed_small_3": 4,
            "largest_component_1": 0,
            "largest_component_2": 4,
            "filled_holes_1": 32,
            "filled_holes_2": 0,
        }
        assert rec["min_component_mm3"] == {"3": 10.0}

    def test_lesion_without_lung_contact_removed(self) -> None:
        lab = _labels()
        lab[3, 36:39, 40:44] = 3  # a "lesion" on the table: 12 voxels, 2 rows below the left lung
        lab[3, 15:18, 25:27] = 3  # juxtapleural: touches the right lung's edge (x = 24) → kept
        s = resolve_settings({"require_contact": {"3": [1, 2]}}, None)
        out, rec = postprocess_labels(lab, SP, s)
        assert (out[3, 36:39, 40:44] == 0).all()
        assert (out[3, 15:18, 25:27] == 3).all() and (out[2, 10:13, 10:13] == 3).all()
        assert (out[5, 38:40, 0:2] == 0).all()  # the far corner lesion touches no lung either
        assert rec["changed_voxels"] == {"removed_without_contact_3": 12 + 4}
        assert rec["require_contact"] == {"3": [1, 2]}
        with pytest.raises(PackageError, match="postprocess settings malformed"):
            resolve_settings({"require_contact": {"3": ["lung"]}}, None)

    def test_contact_judged_per_slice_in_2d_mode(self) -> None:
        lab = np.zeros((3, 20, 20), np.uint8)
        lab[0, 2:10, 2:10] = 1  # lung on slice 0 only
        lab[0, 10:13, 4:7] = 3  # lesion touching that lung in-plane
        lab[1, 11:14, 4:7] = 3  # the same 3-D component one slice below, no lung on its slice
        lab[2, 15:18, 15:18] = 3  # isolated, no lung anywhere near
        for mode, kept_below in (("3d", True), ("2d", False)):
            s = resolve_settings({"require_contact": {"3": [1, 2]}, "contact_mode": mode}, None)
            out, rec = postprocess_labels(lab, SP, s)
            assert (out[0, 10:13, 4:7] == 3).all()
            assert (out[1, 11:14, 4:7] == 3).all() == kept_below
            assert not (out[2] == 3).any()
            assert rec["contact_mode"] == mode
            assert rec["changed_voxels"]["removed_without_contact_3"] == 9 + (0 if kept_below else 9)
        with pytest.raises(PackageError, match="contact_mode"):
            resolve_settings({"contact_mode": "4d"}, None)

    def test_removed_lesion_inside_lung_becomes_lung(self) -> None:
        lab = _labels()
        s = resolve_settings({"fill_holes_labels": [1], "min_component_mm3": {"3": 100.0}}, None)
        out, _ = postprocess_labels(lab, SP, s)
        assert (out[2, 10:13, 10:13] == 1).all()

    def test_disabled_and_overrides(self) -> None:
        lab = _labels()
        s = resolve_settings({"largest_component_labels": [1, 2]}, {"enabled": False})
        out, rec = postprocess_labels(lab, SP, s)
        assert (out == lab).all() and rec["enabled"] is False and rec["changed_voxels"] == {}
        s2 = resolve_settings(
            {"largest_component_labels": [1, 2]}, {"largest_component_labels": []}
        )
        assert s2["largest_component_labels"] == []

    def test_fill_3d_vs_2d(self) -> None:
        lab = np.zeros((5, 20, 20), np.uint8)
        lab[:, 2:18, 2:18] = 1
        lab[1:4, 8:12, 8:12] = 0  # a cavity closed in 3-D; open toward no side in 2-D either
        lab[0, 8:12, 8:12] = 0  # ...now open through the top slice: 3-D hole no longer enclosed
        out2, _ = postprocess_labels(lab, SP, resolve_settings({"fill_holes_labels": [1]}, None))
        out3, _ = postprocess_labels(
            lab, SP, resolve_settings({"fill_holes_labels": [1], "fill_holes_mode": "3d"}, None)
        )
        assert (out2 == 1)[:, 2:18, 2:18].all()  # per slice every hole is enclosed
        assert (out3[1:4, 8:12, 8:12] == 0).all()  # connected to the outside through slice 0

    def test_bad_settings(self) -> None:
        with pytest.raises(PackageError, match="unknown key.*'keep_largest'"):
            resolve_settings({"keep_largest": [1]}, None)
        with pytest.raises(PackageError, match="fill_holes_mode must be '2d' or '3d'"):
            resolve_settings(None, {"fill_holes_mode": "4d"})


def test_segment_volume_applies_and_records(tmp_path: Path) -> None:
    pkg = load_package(band_package(tmp_path / "pp", postprocess={"largest_component_labels": [1]}))
    vox = np.full((3, 256, 256), -1050, np.int16)
    vox[:, 50:200, 40:120] = -600  # big component of label 1
    vox[1, 220:224, 200:204] = -600  # small island of label 1
    vol = ArrayVolume(vox, (2.0, 1.0, 1.0), np.eye(3), SimpleNamespace(modality="CT", body_part=""))
    res = segment_volume(vol, pkg)
    assert (res.labels_raw[1, 220:224, 200:204] == 1).all()
    assert (res.labels[1, 220:224, 200:204] == 0).all()
    assert res.postprocess["changed_voxels"]["largest_component_1"] == 16
    off = segment_volume(vol, pkg, postprocess={"enabled": False})
    assert (off.labels == off.labels_raw).all() and off.postprocess["enabled"] is False
    assert set(res.timings) >= {"preprocess", "inference", "resample_back", "postprocess", "total"}


def test_cancel_between_steps() -> None:
    from inference.jobs import Cancelled

    s = resolve_settings({"largest_component_labels": [1, 2]}, None)
    with pytest.raises(Cancelled):
        postprocess_labels(_labels(), SP, s, cancel=lambda: True)


def test_holes_filled_per_axial_slice_for_a_sagittal_stack(tmp_path: Path) -> None:
    """A ring open toward the feet but closed in every axial plane: filled per axial slice even when
    the stack is sagittal (array axis 0 = left-right)."""
    pkg = load_package(band_package(tmp_path / "sag", postprocess={"fill_holes_labels": [1]}))
    # canonical (axial) volume [S->I, P, L]: a square tube of label-1 HU along the feet axis
    ax = np.full((40, 300, 300), -1050, np.int16)
    ax[:, 100:200, 100:200] = -600
    ax[:, 130:170, 130:170] = -1050  # the tube's bore: a hole in each axial slice, open in 3-D
    sag = np.ascontiguousarray(ax.transpose(2, 1, 0))  # [L (slices), P (rows), I (columns)]
    # array x (columns) runs toward the feet (-S), y toward P, z (slices) toward L
    direction = np.array([[0, 0, -1], [0, 1, 0], [1, 0, 0]], float).T
    vol = ArrayVolume(sag, (1.0, 1.0, 1.0), direction, SimpleNamespace(modality="CT", body_part=""))
    res = segment_volume(vol, pkg, force_domain=True)
    assert res.postprocess["changed_voxels"]["filled_holes_1"] == 40 * 40 * 40
    assert (res.labels[130:170, 130:170, :] == 1).all()
