"""Geometry of loaded stacks: ordering, spacing, origin, direction, gaps, tilt, duplicates, splits.

Series are written with pydicom (viewer.dicom.synth) in tmp_path and read back through the real
scan + load path; every check compares against the positions written into the files.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from viewer.dicom.geometry import analyse_positions, orientation_label
from viewer.dicom.load import load_path, load_stack
from viewer.dicom.scan import scan
from viewer.dicom.synth import write_series


def ct(shape=(8, 12, 10), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-1024, 3000, shape).astype(np.int16)


def assert_positions_match_files(vol) -> None:
    """Every loaded slice sits exactly at the IPP of the file it came from."""
    for z, src in enumerate(vol.meta.source_files):
        if not src:
            continue
        ipp = np.array(pydicom.dcmread(src, stop_before_pixels=True).ImagePositionPatient, float)
        np.testing.assert_allclose(vol.index_to_lps(z, 0, 0), ipp, atol=1e-4)


class TestAxial:
    def test_hfs_exact(self, tmp_path):
        v = ct()
        write_series(
            tmp_path,
            v,
            spacing=(2.5, 0.7, 0.8),
            origin=(-10.0, -20.0, 30.0),
            patient_position="HFS",
        )
        vol = load_path(tmp_path)
        assert vol.voxels.dtype == np.int16
        np.testing.assert_array_equal(vol.voxels, v)
        assert vol.spacing == pytest.approx((2.5, 0.7, 0.8))
        assert vol.origin == pytest.approx((-10.0, -20.0, 30.0))
        np.testing.assert_allclose(vol.direction, np.eye(3), atol=1e-9)
        assert vol.meta.patient_position == "HFS"
        assert vol.warnings == []
        assert_positions_match_files(vol)
        # pixel (row 3, col 4) of slice 2 lies at origin + 4*sx*row + 3*sy*col + 2*sz*normal
        np.testing.assert_allclose(
            vol.index_to_lps(2, 3, 4), [-10 + 4 * 0.8, -20 + 3 * 0.7, 30 + 2 * 2.5]
        )

    def test_ffs_reversed_order(self, tmp_path):
        v = ct(seed=1)
        iop = (-1, 0, 0, 0, 1, 0)  # feet first: row axis points to patient right
        normal = np.cross(iop[:3], iop[3:])
        pos = [
            np.array([5.0, -3.0, 100.0]) - k * 3.0 * normal for k in range(len(v))
        ]  # instance 1 highest
        write_series(
            tmp_path, v, spacing=(3.0, 0.5, 0.5), iop=iop, positions=pos, patient_position="FFS"
        )
        vol = load_path(tmp_path)
        np.testing.assert_array_equal(vol.voxels, v[::-1])  # sorted along +normal
        np.testing.assert_allclose(vol.direction[:, 2], normal, atol=1e-9)
        np.testing.assert_allclose(vol.origin, pos[-1], atol=1e-6)
        assert vol.spacing[0] == pytest.approx(3.0)
        assert vol.meta.patient_position == "FFS"
        assert_positions_match_files(vol)

    def test_shuffled_file_names_and_no_extension(self, tmp_path):
        v = ct(seed=2)
        write_series(tmp_path, v, spacing=(1.25, 1, 1), file_names="IM{:04d}", shuffle=True)
        for p in list(tmp_path.iterdir())[:3]:
            p.rename(p.with_name(p.name.upper() + "X"))
        vol = load_path(tmp_path)
        np.testing.assert_array_equal(vol.voxels, v)
        assert_positions_match_files(vol)


class TestOrientation:
    def test_sagittal(self, tmp_path):
        v = ct(seed=3)
        iop = (0, 1, 0, 0, 0, -1)
        write_series(tmp_path, v, spacing=(4.0, 0.9, 0.9), origin=(-40.0, -100.0, 80.0), iop=iop)
        vol = load_path(tmp_path)
        np.testing.assert_array_equal(vol.voxels, v)
        np.testing.assert_allclose(
            vol.direction, np.array([[0, 1, 0], [0, 0, -1], [-1, 0, 0]]).T, atol=1e-9
        )
        assert any("non-axial stack (sagittal)" in w for w in vol.warnings)
        assert_positions_match_files(vol)

    def test_oblique(self, tmp_path):
        a = np.radians(25)
        row = (np.cos(a), np.sin(a), 0.0)
        b = 0.3
        col = (-np.sin(a) * np.cos(b), np.cos(a) * np.cos(b), -np.sin(b))  # orthogonal to row
        v = ct(seed=4)
        write_series(tmp_path, v, spacing=(2.0, 0.8, 0.6), origin=(1.0, 2.0, 3.0), iop=(*row, *col))
        vol = load_path(tmp_path)
        np.testing.assert_array_equal(vol.voxels, v)
        assert orientation_label((*row, *col)) == "oblique"
        assert any("oblique" in w for w in vol.warnings)
        assert vol.spacing[0] == pytest.approx(2.0, abs=1e-5)
        assert_positions_match_files(vol)


class TestSpacingProblems:
    def test_gap_inserts_blank_slice_at_true_position(self, tmp_path):
        v = ct((6, 8, 8), seed=5)
        keep = [0, 1, 2, 4, 5]  # slice 3 missing
        pos = [(0.0, 0.0, 10.0 + 2.5 * k) for k in keep]
        write_series(tmp_path, v[keep], spacing=(2.5, 1, 1), positions=pos)
        vol = load_path(tmp_path)
        assert vol.shape == (6, 8, 8)
        assert vol.spacing[0] == pytest.approx(2.5)
        np.testing.assert_array_equal(vol.voxels[keep], v[keep])
        assert (vol.voxels[3] == -1024).all()
        assert vol.meta.extra["missing_slices"] == [3]
        assert vol.meta.source_files[3] == ""
        assert any("missing slices: 1" in w for w in vol.warnings)
        assert_positions_match_files(vol)

    def test_irregular_spacing_warns_with_error_bound(self, tmp_path):
        v = ct((5, 8, 8), seed=6)
        z = [0.0, 2.0, 4.0, 7.1, 9.1]
        write_series(tmp_path, v, positions=[(0, 0, q) for q in z])
        vol = load_path(tmp_path)
        assert vol.shape[0] == 5
        w = [w for w in vol.warnings if "irregular slice spacing" in w]
        assert w and "2.000 to 3.100" in w[0]
        assert vol.spacing[0] == pytest.approx(9.1 / 4)

    def test_gantry_tilt_keeps_true_slice_vector(self, tmp_path):
        v = ct((6, 8, 8), seed=7)
        tilt = np.radians(15)
        step = (
            np.array([0.0, np.sin(tilt), np.cos(tilt)]) * 2.0
        )  # slices shift along y (column axis)
        pos = [np.array([-5.0, -6.0, 7.0]) + k * step for k in range(6)]
        write_series(tmp_path, v, positions=pos, extra={"GantryDetectorTilt": 15.0})
        vol = load_path(tmp_path)
        np.testing.assert_array_equal(vol.voxels, v)
        np.testing.assert_allclose(vol.direction[:, 2], step / 2.0, atol=1e-6)
        assert vol.spacing[0] == pytest.approx(2.0, abs=1e-6)
        assert any("gantry tilt" in w and "15.00°" in w for w in vol.warnings)
        assert_positions_match_files(vol)

    def test_single_slice(self, tmp_path):
        write_series(tmp_path, ct((1, 8, 8)), spacing=(5.0, 1, 1))
        vol = load_path(tmp_path)
        assert vol.shape == (1, 8, 8)
        assert vol.spacing[0] == 5.0
        assert any("single slice" in w for w in vol.warnings)

    def test_analyse_positions_rejects_duplicates(self):
        with pytest.raises(ValueError, match="share one position"):
            analyse_positions(np.array([[0, 0, 0], [0, 0, 0.0]]), (1, 0, 0, 0, 1, 0))


class TestSplitting:
    def test_duplicates_never_stacked(self, tmp_path):
        v = ct((4, 8, 8), seed=8)
        write_series(tmp_path / "a", v, series_uid="1.2.3.4", uid_seed="a")
        write_series(tmp_path / "b", v + 1, series_uid="1.2.3.4", uid_seed="b")
        res = scan(tmp_path)
        assert len(res.series) == 1
        stacks = res.stacks
        assert [s.image_count for s in stacks] == [4, 4]
        assert len({s.stack_id for s in stacks}) == 2
        assert all("duplicates are kept apart" in " ".join(s.warnings) for s in stacks)
        got = sorted(int(load_stack(s).voxels[0, 0, 0]) for s in stacks)
        assert got == sorted([int(v[0, 0, 0]), int(v[0, 0, 0]) + 1])

    def test_near_identical_positions_are_duplicates(self, tmp_path):
        v = ct((3, 8, 8), seed=10)
        write_series(
            tmp_path / "a", v, series_uid="1.2.3.7", positions=[(0, 0, z) for z in (0.0, 2.0, 4.0)]
        )
        write_series(
            tmp_path / "b",
            v,
            series_uid="1.2.3.7",
            positions=[(0, 0, z) for z in (0.006, 2.0, 4.006)],
        )
        stacks = scan(tmp_path).stacks
        assert [s.image_count for s in stacks] == [3, 3]
        for s in stacks:
            assert load_stack(s).shape == (3, 8, 8)

    def test_duplicates_split_by_acquisition_number(self, tmp_path):
        v = ct((3, 8, 8), seed=9)
        write_series(tmp_path / "a", v, series_uid="1.2.3.5", extra={"AcquisitionNumber": 1})
        write_series(tmp_path / "b", v, series_uid="1.2.3.5", extra={"AcquisitionNumber": 2})
        stacks = scan(tmp_path).stacks
        assert [s.image_count for s in stacks] == [3, 3]
        assert all("AcquisitionNumber differs" in " ".join(s.warnings) for s in stacks)
        assert {s.frames[0].acquisition for s in stacks} == {"1", "2"}

    def test_acquisition_number_per_slice_does_not_split(self, tmp_path):
        v = ct((4, 8, 8), seed=11)
        paths = write_series(tmp_path, v)
        for k, p in enumerate(paths):  # step-and-shoot CT: one acquisition per slice
            ds = pydicom.dcmread(p)
            ds.AcquisitionNumber = k + 1
            ds.save_as(p)
        stacks = scan(tmp_path).stacks
        assert len(stacks) == 1
        np.testing.assert_array_equal(load_stack(stacks[0]).voxels, v)

    def test_mixed_sizes_and_orientations_split(self, tmp_path):
        write_series(tmp_path / "a", ct((3, 8, 8)), series_uid="1.2.3.6")
        write_series(tmp_path / "b", ct((2, 10, 12)), series_uid="1.2.3.6", origin=(0, 0, 50))
        write_series(tmp_path / "c", ct((2, 8, 8)), series_uid="1.2.3.6", iop=(0, 1, 0, 0, 0, -1))
        res = scan(tmp_path)
        assert len(res.series) == 1
        assert sorted((s.image_count, s.rows, s.columns, s.orientation) for s in res.stacks) == [
            (2, 8, 8, "sagittal"),
            (2, 10, 12, "axial"),
            (3, 8, 8, "axial"),
        ]
        vol = load_path(tmp_path, "1.2.3.6")  # a series UID with several stacks: the largest
        assert vol.shape == (3, 8, 8)
        assert "3 stacks match" in vol.warnings[0]

    def test_stack_id_is_stable(self, tmp_path):
        write_series(tmp_path, ct((3, 8, 8)), uid_seed="stable")
        assert scan(tmp_path).stacks[0].stack_id == scan(tmp_path).stacks[0].stack_id
