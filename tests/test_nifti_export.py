"""NIfTI export: nibabel reads back the voxels and places every voxel where DICOM says it is."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pydicom
import pytest

from viewer.dicom.load import load_path
from viewer.dicom.synth import write_series
from viewer.errors import ExportError
from viewer.export.nifti import read_nifti, write_nifti

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def ct(shape=(5, 9, 7), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-1024, 3000, shape).astype(np.int16)


def check_against_dicom(nifti_path, vol) -> None:
    img = nib.load(str(nifti_path))
    data = np.asanyarray(img.dataobj)
    assert data.shape == vol.shape[::-1]
    for z, src in enumerate(vol.meta.source_files):
        ds = pydicom.dcmread(src)
        ipp = np.array(ds.ImagePositionPatient, float)
        row, col = (
            np.array(ds.ImageOrientationPatient[:3], float),
            np.array(ds.ImageOrientationPatient[3:], float),
        )
        dr, dc = (float(v) for v in ds.PixelSpacing)  # row spacing (between rows), column spacing
        for i, j in [(0, 0), (data.shape[0] - 1, 0), (0, data.shape[1] - 1), (3, 5)]:
            # nibabel voxel (i=column, j=row, k=slice) -> RAS;
            # DICOM: IPP + i*dc*row + j*dr*col (LPS)
            ras = img.affine @ np.array([i, j, z, 1.0])
            lps = ipp + i * dc * row + j * dr * col
            np.testing.assert_allclose(ras[:3], LPS_TO_RAS @ lps, atol=1e-4)
        expect = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(data[:, :, z].T, expect)


class TestWriteNifti:
    @pytest.mark.parametrize(
        "iop,pp",
        [
            ((1, 0, 0, 0, 1, 0), "HFS"),
            ((-1, 0, 0, 0, 1, 0), "FFS"),
            ((0, 1, 0, 0, 0, -1), "HFS"),
            ((0.8660254, 0.5, 0, -0.4330127, 0.75, -0.5), "HFS"),
        ],
    )
    def test_affine_places_voxels_at_dicom_positions(self, tmp_path, iop, pp):
        write_series(
            tmp_path / "d",
            ct(),
            spacing=(2.5, 0.7, 0.9),
            origin=(12.0, -30.0, 55.0),
            iop=iop,
            patient_position=pp,
        )
        vol = load_path(tmp_path / "d")
        out = write_nifti(vol, tmp_path / "v.nii.gz")
        check_against_dicom(out, vol)
        img = nib.load(str(out))
        assert int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 1
        np.testing.assert_allclose(img.get_qform(), img.affine, atol=1e-4)

    def test_sheared_grid_uses_sform_only(self, tmp_path):
        t = np.radians(12)
        pos = [
            np.array([0.0, 0.0, 0.0]) + k * 3.0 * np.array([0, np.sin(t), np.cos(t)])
            for k in range(5)
        ]
        write_series(tmp_path / "d", ct(), positions=pos)
        vol = load_path(tmp_path / "d")
        out = write_nifti(vol, tmp_path / "tilt.nii")
        check_against_dicom(out, vol)
        assert int(nib.load(str(out)).header["qform_code"]) == 0

    def test_label_map_on_volume_grid_and_round_trip(self, tmp_path):
        write_series(tmp_path / "d", ct())
        vol = load_path(tmp_path / "d")
        labels = (vol.voxels > 0).astype(np.uint8)
        write_nifti(labels, tmp_path / "labels.nii.gz", volume=vol)
        back, affine = read_nifti(tmp_path / "labels.nii.gz")
        np.testing.assert_array_equal(back, labels)
        np.testing.assert_allclose(affine, vol.affine_ras(), atol=1e-5)

    def test_rgb_round_trip(self, tmp_path):
        rgb = np.random.default_rng(1).integers(0, 256, (2, 5, 6, 3)).astype(np.uint8)
        write_series(tmp_path / "d", rgb, modality="OT")
        vol = load_path(tmp_path / "d")
        write_nifti(vol, tmp_path / "rgb.nii")
        np.testing.assert_array_equal(read_nifti(tmp_path / "rgb.nii")[0], rgb)

    def test_errors_leave_nothing_behind(self, tmp_path):
        write_series(tmp_path / "d", ct())
        vol = load_path(tmp_path / "d")
        with pytest.raises(ExportError, match=r"\.nii or \.nii\.gz"):
            write_nifti(vol, tmp_path / "v.png")
        with pytest.raises(ExportError, match="does not match the volume grid"):
            write_nifti(np.zeros((2, 2, 2)), tmp_path / "x.nii", volume=vol)
        with pytest.raises(ExportError, match="needs volume="):
            write_nifti(np.zeros((2, 2, 2)), tmp_path / "x.nii")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
