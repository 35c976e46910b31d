"""The optional imagecodecs route decodes what the pydicom route decodes, or defers to it."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless

import viewer.dicom.fastcodecs as fastcodecs
from viewer.dicom.load import load_stack
from viewer.dicom.scan import scan
from viewer.dicom.synth import JPEG_LOSSLESS_SV1, encodable_transfer_syntaxes, write_series

pytest.importorskip("imagecodecs")

SYNTAXES = [
    ts
    for ts in (JPEG_LOSSLESS_SV1, JPEGLSLossless, JPEG2000Lossless)
    if ts in encodable_transfer_syntaxes()
]


def pydicom_route(stack):
    orig = fastcodecs._codecs
    fastcodecs._codecs = lambda: None
    try:
        return load_stack(stack)
    finally:
        fastcodecs._codecs = orig


@pytest.mark.parametrize("ts", SYNTAXES, ids=lambda u: u.name)
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_same_voxels_as_pydicom(tmp_path, ts, signed):
    rng = np.random.default_rng(0)
    v = rng.integers(-1000 if signed else 0, 2000 if signed else 4000, (4, 40, 36))
    write_series(
        tmp_path,
        v,
        transfer_syntax=ts,
        rescale_intercept=0,
        signed=signed,
        modality="MR",
        bits_stored=12 if ts != JPEG2000Lossless else 16,
        window=None,
    )
    st = scan(tmp_path).stacks[0]
    assert all(fastcodecs.fast_codec_ok(f.file) for f in st.frames)
    fast = load_stack(st)
    np.testing.assert_array_equal(fast.voxels, v)
    slow = pydicom_route(st)
    np.testing.assert_array_equal(fast.voxels, slow.voxels)
    assert fast.voxels.dtype == slow.voxels.dtype


def test_corrupt_fragment_falls_back_and_reports(tmp_path):
    v = np.random.default_rng(1).integers(-1024, 2000, (3, 32, 32)).astype(np.int16)
    paths = write_series(tmp_path, v, transfer_syntax=SYNTAXES[0])
    ds = pydicom.dcmread(paths[1])
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8not a codestream\xff\xd9"])
    ds.save_as(paths[1])
    vol = load_stack(scan(tmp_path).stacks[0])
    assert str(paths[1]) in vol.meta.extra["failed_files"]
    np.testing.assert_array_equal(vol.voxels[[0, 2]], v[[0, 2]])


def test_offset_check_refuses_wrong_position(tmp_path):
    write_series(tmp_path, np.zeros((1, 32, 32), np.int16), transfer_syntax=SYNTAXES[0])
    info = scan(tmp_path).stacks[0].first
    info.encapsulated_offset -= 2
    with pytest.raises(ValueError, match="not found at the scanned offset"):
        fastcodecs.decode_fast(info)
