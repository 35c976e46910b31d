"""Real scans from ../shared/data (skipped cleanly when absent), checked against SimpleITK/GDCM
(an independent reader and decoder) where it is installed, and against the documented facts."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.dicom.load import load_path, load_stack
from viewer.dicom.scan import scan

pytestmark = pytest.mark.realdata


def sitk_volume(folder):
    sitk = pytest.importorskip("SimpleITK")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    img = reader.Execute()
    return sitk.GetArrayFromImage(img), img


def assert_same_as_sitk(vol, folder, atol_mm=1e-3):
    arr, img = sitk_volume(folder)
    assert vol.shape == arr.shape
    np.testing.assert_array_equal(vol.voxels, arr)
    np.testing.assert_allclose(vol.origin, img.GetOrigin(), atol=atol_mm)
    np.testing.assert_allclose(vol.spacing[::-1], img.GetSpacing(), atol=atol_mm)
    np.testing.assert_allclose(vol.direction, np.array(img.GetDirection()).reshape(3, 3), atol=1e-4)


class TestChestLungDx:
    @pytest.mark.parametrize("series", ["series2_8mm_B70f", "series3_8mm_B40f"])
    def test_series(self, shared_data, series):
        folder = shared_data / "chest-ct-lungdx-a0002" / series
        vol = load_path(folder)
        assert vol.shape == (30, 512, 512)
        assert vol.voxels.dtype == np.int16
        assert vol.spacing == pytest.approx((8.0, 0.646484375, 0.646484375))
        assert vol.meta.patient_position == "HFS" and vol.meta.units == "HU"
        assert vol.warnings == []
        assert -1100 <= vol.voxels.min() <= -1000  # air
        assert vol.meta.window_presets
        assert_same_as_sitk(vol, folder)

    def test_two_series_in_one_study(self, shared_data):
        res = scan(shared_data / "chest-ct-lungdx-a0002")
        assert len(res.patients) == 1 and len(res.patients[0].studies) == 1
        assert sorted(s.image_count for s in res.stacks) == [30, 30]
        assert all(s.reason.startswith("not a DICOM file") for s in res.skipped)


def test_4dct_phase(shared_data):
    folder = shared_data / "chest-ct-4dct-phase00" / "dicom"
    vol = load_path(folder)
    assert vol.shape == (141, 512, 512)
    assert vol.spacing == pytest.approx((2.0, 0.9765625, 0.9765625))
    assert vol.warnings == []
    assert_same_as_sitk(vol, folder)


def test_abdomen_jpeg2000(shared_data):
    folder = shared_data / "abdomen-ct-lung-free" / "dicom"
    st = scan(folder).stacks
    assert len(st) == 1 and st[0].image_count == 20
    assert st[0].first.transfer_syntax == "1.2.840.10008.1.2.4.90"
    vol = load_stack(st[0], threads=2)
    assert vol.shape == (20, 512, 512) and vol.spacing[0] == pytest.approx(2.0)
    assert any(
        "no SeriesInstanceUID" in w for w in vol.warnings
    )  # the de-identified files blank it
    assert_same_as_sitk(vol, folder)


def test_nine_transfer_syntaxes_identical_and_not_stacked(shared_data):
    res = scan(shared_data / "dcm-qa-transfer-syntaxes" / "In")
    stacks = res.stacks
    assert len(stacks) == 9 and all(s.image_count == 1 for s in stacks)
    assert len({s.first.transfer_syntax for s in stacks}) >= 6
    vols = [load_stack(s) for s in stacks]
    for v in vols[1:]:
        np.testing.assert_array_equal(v.voxels, vols[0].voxels)
    assert vols[0].voxels.max() > 0


def test_12bit_masking_and_sign(shared_data):
    res = scan(shared_data / "dcm-qa-12bit" / "In")
    by_name = {s.first.ref.name: load_stack(s).voxels for s in res.stacks}
    assert len(by_name) == 3
    plain, stripes, signed = (
        by_name[n]
        for n in ("12bitUnsigned.dcm", "12bitUnsigned_0x0F0F.dcm", "12bitSigned_0x0F0F.dcm")
    )
    assert 0 <= plain.min() and plain.max() <= 4095
    assert stripes.max() <= 4095 and {3855, 4095} <= set(np.unique(stripes).tolist())
    assert signed.min() >= -2048 and signed.max() <= 2047
    assert {-241, -1} <= set(np.unique(signed).tolist())
