"""Pixel encodings: transfer syntaxes, bit depths, rescale, padding, photometric, multi-frame,
and the files pydicom ships. Everything is decoded by the real loader and compared exactly."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import (
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from viewer.dicom.load import load_path, load_stack
from viewer.dicom.scan import scan
from viewer.dicom.synth import (
    JPEG_LOSSLESS_SV1,
    encodable_transfer_syntaxes,
    write_multiframe,
    write_series,
)


def ct(shape=(5, 16, 20), seed=0, lo=-1024, hi=3000) -> np.ndarray:
    return np.random.default_rng(seed).integers(lo, hi, shape).astype(np.int16)


LOSSLESS = [
    ts
    for ts in (
        ImplicitVRLittleEndian,
        ExplicitVRBigEndian,
        RLELossless,
        JPEGLSLossless,
        JPEG2000Lossless,
        JPEG_LOSSLESS_SV1,
    )
    if ts in (ImplicitVRLittleEndian, ExplicitVRBigEndian) or ts in encodable_transfer_syntaxes()
]


class TestTransferSyntaxes:
    @pytest.mark.parametrize("ts", LOSSLESS, ids=lambda u: u.name)
    def test_lossless_roundtrip(self, tmp_path, ts):
        v = ct((5, 32, 36), seed=1)  # openjpeg's default 6 resolutions need >= 32 pixels
        write_series(tmp_path, v, transfer_syntax=ts, spacing=(2, 1, 1))
        st = scan(tmp_path).stacks[0]
        assert st.first.transfer_syntax == ts
        vol = load_stack(st, threads=2)
        np.testing.assert_array_equal(vol.voxels, v)
        assert vol.meta.extra["transfer_syntaxes"] == [str(ts)]

    def test_compressed_enhanced_multiframe(self, tmp_path):
        v = ct((6, 16, 16), seed=2)
        write_multiframe(
            tmp_path / "mf.dcm", v, transfer_syntax=RLELossless, spacing=(1.5, 0.5, 0.5)
        )
        vol = load_path(tmp_path)
        np.testing.assert_array_equal(vol.voxels, v)


class TestStoredValues:
    def test_uint16_above_int16_range_stays_int16_when_result_fits(self, tmp_path):
        v = ct(lo=-1000, hi=3000, seed=3)
        write_series(tmp_path, v, rescale_intercept=-32768, signed=False)  # stored 31768..35767
        assert int(pydicom.dcmread(next(tmp_path.iterdir())).pixel_array.max()) > 32767
        vol = load_path(tmp_path)
        assert vol.voxels.dtype == np.int16
        np.testing.assert_array_equal(vol.voxels, v)

    def test_intercept_outside_int16_range(self, tmp_path):
        v = np.random.default_rng(13).integers(0, 4000, (3, 8, 8))
        write_series(
            tmp_path, v, modality="MR", rescale_intercept=-40000, signed=False, window=None
        )
        vol = load_path(tmp_path)
        assert vol.voxels.dtype == np.int16
        np.testing.assert_array_equal(vol.voxels, v)

    def test_result_outside_int16_becomes_float32(self, tmp_path):
        v = np.random.default_rng(4).integers(0, 60000, (3, 8, 8)).astype(np.int32)
        write_series(tmp_path, v, modality="MR", rescale_intercept=0, signed=False)
        vol = load_path(tmp_path)
        assert vol.voxels.dtype == np.float32
        np.testing.assert_array_equal(vol.voxels, v.astype(np.float32))
        assert vol.meta.units == ""

    def test_fractional_rescale_float32(self, tmp_path):
        stored = np.random.default_rng(5).integers(0, 4000, (3, 8, 8))
        hu = stored * 0.5 - 1000.25
        write_series(tmp_path, hu, rescale_slope=0.5, rescale_intercept=-1000.25)
        vol = load_path(tmp_path)
        assert vol.voxels.dtype == np.float32
        np.testing.assert_allclose(vol.voxels, hu, atol=1e-3)

    def test_12bit_unsigned_high_bits_masked(self, tmp_path):
        v = ct(lo=-1024, hi=3071, seed=6)
        paths = write_series(tmp_path, v, bits_stored=12)
        for p in paths:  # garbage above BitsStored (e.g. overlay bits) must be ignored
            ds = pydicom.dcmread(p)
            ds.PixelData = (ds.pixel_array.astype(np.uint16) | 0xF000).tobytes()
            ds.save_as(p)
        vol = load_path(tmp_path)
        np.testing.assert_array_equal(vol.voxels, v)

    def test_12bit_signed_sign_extended(self, tmp_path):
        v = ct(lo=-2048, hi=2047, seed=7)
        paths = write_series(tmp_path, v, bits_stored=12, rescale_intercept=0, signed=True)
        for p in paths:  # stored without sign extension: bits 12-15 are zero
            ds = pydicom.dcmread(p)
            raw = np.frombuffer(ds.PixelData, dtype=np.int16) & 0x0FFF
            ds.PixelData = raw.astype(np.int16).tobytes()
            ds.save_as(p)
        vol = load_path(tmp_path)
        np.testing.assert_array_equal(vol.voxels, v)

    def test_pixel_padding_becomes_air(self, tmp_path):
        v = ct(lo=-1000, hi=2000, seed=8)
        v[:, :3, :] = -3024  # stored -2000 = padding outside the field of view
        write_series(tmp_path, v, signed=True, extra={"PixelPaddingValue": -2000})
        vol = load_path(tmp_path)
        assert (vol.voxels[:, :3, :] == -1024).all()
        np.testing.assert_array_equal(vol.voxels[:, 3:, :], v[:, 3:, :])
        assert any(f"{5 * 3 * 20} padding voxels" in w for w in vol.warnings)


class TestPhotometric:
    def test_monochrome1_flagged_not_inverted(self, tmp_path):
        v = ct(lo=0, hi=4000, seed=9)
        write_series(
            tmp_path, v, modality="MR", photometric="MONOCHROME1", rescale_intercept=0, window=None
        )
        vol = load_path(tmp_path)
        assert vol.meta.invert is True and vol.meta.photometric == "MONOCHROME1"
        np.testing.assert_array_equal(vol.voxels, v)

    def test_rgb(self, tmp_path):
        rgb = np.random.default_rng(10).integers(0, 256, (3, 10, 12, 3)).astype(np.uint8)
        write_series(tmp_path, rgb, modality="OT", transfer_syntax=RLELossless)
        vol = load_path(tmp_path)
        assert vol.is_rgb and vol.voxels.dtype == np.uint8
        np.testing.assert_array_equal(vol.voxels, rgb)

    def test_window_presets_from_header(self, tmp_path):
        write_series(tmp_path, ct((2, 8, 8)), window=[(40, 400, "SOFT"), (-600, 1500, "LUNG")])
        presets = load_path(tmp_path).meta.window_presets
        assert [(p.name, p.center, p.width) for p in presets] == [
            ("SOFT", 40, 400),
            ("LUNG", -600, 1500),
        ]


class TestMultiFrame:
    def test_enhanced_ct_frames_out_of_order(self, tmp_path):
        v = ct((5, 12, 10), seed=11)
        order = [3, 0, 4, 1, 2]
        write_multiframe(
            tmp_path / "e.dcm",
            v,
            spacing=(1.5, 0.6, 0.7),
            origin=(3, 4, -50),
            frame_order=order,
            window=(50, 350),
        )
        st = scan(tmp_path).stacks[0]
        assert st.first.number_of_frames == 5
        vol = load_stack(st)
        np.testing.assert_array_equal(vol.voxels, v)
        assert vol.spacing == pytest.approx((1.5, 0.6, 0.7))
        assert vol.origin == pytest.approx((3, 4, -50))
        # slice z came from the stored frame that holds it (1-based)
        assert vol.meta.frame_numbers == [order.index(z) + 1 for z in range(5)]
        assert vol.meta.window_presets[0].center == 50

    def test_enhanced_mr_no_rescale_units(self, tmp_path):
        v = ct((3, 8, 8), lo=0, hi=1000, seed=12)
        write_multiframe(tmp_path / "mr.dcm", v, modality="MR", rescale_intercept=0)
        vol = load_path(tmp_path)
        np.testing.assert_array_equal(vol.voxels, v)
        assert vol.meta.modality == "MR" and vol.meta.units == ""


class TestPydicomSamples:
    def test_ct_small_matches_pydicom(self):
        p = get_testdata_file("CT_small.dcm")
        ds = pydicom.dcmread(p)
        vol = load_path(p)
        expect = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(vol.voxels[0], expect)
        assert vol.origin == pytest.approx(tuple(float(x) for x in ds.ImagePositionPatient))
        assert vol.meta.modality == "CT" and vol.meta.units == "HU"

    @pytest.mark.parametrize(
        "name",
        [
            "MR_small_RLE.dcm",
            "MR_small_jpeg_ls_lossless.dcm",
            "MR_small_jp2klossless.dcm",
            "MR_small_bigendian.dcm",
            "MR_small_implicit.dcm",
        ],
    )
    def test_mr_small_variants_decode_identically(self, name):
        ref = load_path(get_testdata_file("MR_small.dcm")).voxels
        np.testing.assert_array_equal(load_path(get_testdata_file(name)).voxels, ref)

    def test_deflated(self):
        p = get_testdata_file("image_dfl.dcm")
        vol = load_path(p)
        np.testing.assert_array_equal(vol.voxels[0], pydicom.dcmread(p).pixel_array)

    def test_legacy_multiframe_without_geometry(self):
        vol = load_path(get_testdata_file("examples_ybr_color.dcm"))
        assert vol.shape == (30, 240, 320) and vol.is_rgb
        assert vol.meta.frame_numbers == list(range(1, 31))
        assert any("no ImagePositionPatient" in w for w in vol.warnings)

    def test_ybr_and_palette_become_rgb(self):
        for name in ("examples_ybr_color.dcm", "examples_palette.dcm"):
            vol = load_path(get_testdata_file(name))
            assert vol.is_rgb and vol.voxels.dtype == np.uint8 and vol.voxels.max() > 0
