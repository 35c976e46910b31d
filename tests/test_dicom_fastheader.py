"""The fast header reader gives exactly what the pydicom route gives, or declines (None)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian, RLELossless

import viewer.dicom.headers as headers
from viewer.dicom.fastheader import parse_header
from viewer.dicom.records import FileRef
from viewer.dicom.synth import write_multiframe, write_series


def both_routes(path, monkeypatch):
    fast = headers.read_header(FileRef(str(path)))
    with monkeypatch.context() as m:
        m.setattr(headers, "parse_header", lambda buf: None)
        slow = headers.read_header(FileRef(str(path)))
    return fast, slow


def as_plain(result):
    if isinstance(result, tuple):
        info, frames = result
        recs = [dataclasses.asdict(f) for f in frames]
        for r in recs:
            r.pop("file")
        return dataclasses.asdict(info), recs
    return dataclasses.asdict(result)


@pytest.mark.parametrize("ts", ["1.2.840.10008.1.2.1", ImplicitVRLittleEndian, RLELossless])
def test_same_as_pydicom_with_sequences_and_private_tags(tmp_path, monkeypatch, ts):
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "T-D3000", "SRT", "Chest"
    nested = Dataset()
    nested.ReferencedSOPInstanceUID = "1.2.3"
    item.ReferencedImageSequence = Sequence([nested])
    extra = {
        "AnatomicRegionSequence": Sequence([item]),
        "PixelPaddingValue": 0,
        "WindowCenterWidthExplanation": ["A", "B"],
        "WindowCenter": [40, -600],
        "WindowWidth": [400, 1500],
    }
    p = write_series(tmp_path, np.full((1, 8, 8), 7, np.int16), transfer_syntax=ts, extra=extra)[0]
    ds = pydicom.dcmread(p)
    ds.private_block(0x0009, "ACME", create=True).add_new(0x01, "LO", "secret")
    ds.save_as(p)
    assert parse_header(p.read_bytes()) is not None
    fast, slow = both_routes(p, monkeypatch)
    assert as_plain(fast) == as_plain(slow)
    assert fast[1][0].windows == [(40.0, 400.0, "A"), (-600.0, 1500.0, "B")]


def test_declines_what_it_does_not_handle(tmp_path):
    v = np.zeros((2, 8, 8), np.int16)
    be = write_series(tmp_path / "be", v, transfer_syntax=ExplicitVRBigEndian)[0]
    mf = write_multiframe(tmp_path / "mf.dcm", v)
    assert parse_header(be.read_bytes()) is None
    assert parse_header(mf.read_bytes()) is None
    assert parse_header(b"\0" * 200) is None
    good = write_series(tmp_path / "ok", v)[0].read_bytes()
    assert parse_header(good[:400]) is None  # header cut short: pydicom decides the reason


@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_RLE.dcm",
        "693_J2KI.dcm",
        "JPEG2000.dcm",
    ],
)
def test_pydicom_samples_same_both_routes(monkeypatch, name):
    fast, slow = both_routes(get_testdata_file(name), monkeypatch)
    assert as_plain(fast) == as_plain(slow)
