"""Broken inputs, containers (DICOMDIR, zip), non-image objects, and the job protocol
(progress, cancel, middle slice first, memory refusal, per-file decode failures)."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless

from viewer.dicom.load import load_path, load_stack
from viewer.dicom.scan import scan
from viewer.dicom.synth import write_series
from viewer.errors import Cancelled, DicomError
from viewer.jobs import CancelToken


def ct(shape=(6, 16, 16), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-1024, 3000, shape).astype(np.int16)


@pytest.fixture
def good(tmp_path):
    v = ct()
    write_series(tmp_path / "good", v, spacing=(2, 1, 1))
    return tmp_path, v


def reason_for(result, name: str) -> str:
    hits = [s.reason for s in result.skipped if s.path.endswith(name)]
    assert hits, f"{name} not reported as skipped: {[s.path for s in result.skipped]}"
    return hits[0]


class TestBrokenFiles:
    def test_each_broken_file_has_a_reason_and_the_series_still_loads(self, good):
        root, v = good
        src = sorted((root / "good").iterdir())[0]
        bad = root / "bad"
        bad.mkdir()
        (bad / "random.bin").write_bytes(np.random.default_rng(1).bytes(4000))
        (bad / "empty").write_bytes(b"")
        data = src.read_bytes()
        (bad / "truncated_pixels.dcm").write_bytes(data[: len(data) - 100])
        (bad / "truncated_header.dcm").write_bytes(data[:300])
        ds = pydicom.dcmread(src)
        del ds.Rows
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(bad / "no_rows.dcm")
        ds = pydicom.dcmread(src)
        ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
        ds.save_as(bad / "short_pixels.dcm")
        ds = pydicom.dcmread(src, stop_before_pixels=True)
        ds.save_as(bad / "no_pixels.dcm")
        res = scan(root)
        assert "not a DICOM file" in reason_for(res, "random.bin")
        assert "not a DICOM file" in reason_for(res, "empty")
        assert "truncated" in reason_for(res, "truncated_pixels.dcm")
        assert "unreadable DICOM header" in reason_for(
            res, "truncated_header.dcm"
        ) or "no pixel data" in reason_for(res, "truncated_header.dcm")
        assert "Rows" in reason_for(res, "no_rows.dcm")
        assert "PixelData holds" in reason_for(res, "short_pixels.dcm")
        assert "no pixel data" in reason_for(res, "no_pixels.dcm")
        assert len(res.stacks) == 1
        np.testing.assert_array_equal(load_stack(res.stacks[0]).voxels, v)
        json.dumps(res.to_dict())  # serialisable, no pixel data

    def test_unsupported_transfer_syntax_is_a_reason(self, good):
        root, _ = good
        ds = pydicom.dcmread(sorted((root / "good").iterdir())[0])
        ds.file_meta.TransferSyntaxUID = "1.2.826.0.1.3680043.99.1"  # private, no decoder anywhere
        ds.PixelData = encapsulate([b"\x00" * 64])
        ds.SeriesInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(root / "private_ts.dcm", implicit_vr=False, little_endian=True)
        res = scan(root)
        assert "transfer syntax" in reason_for(res, "private_ts.dcm")

    def test_decode_failure_blanks_one_slice_and_names_the_file(self, tmp_path):
        v = ct()
        paths = write_series(tmp_path, v, transfer_syntax=RLELossless)
        ds = pydicom.dcmread(paths[1])
        ds.PixelData = encapsulate([b"\x01\x02garbage-not-rle" * 4])
        ds.save_as(paths[1])
        vol = load_path(tmp_path)
        np.testing.assert_array_equal(np.delete(vol.voxels, 1, axis=0), np.delete(v, 1, axis=0))
        assert (vol.voxels[1] == -1024).all()
        msg = [w for w in vol.warnings if "could not be decoded" in w]
        assert msg and paths[1].name in msg[0]
        assert str(paths[1]) in vol.meta.extra["failed_files"]

    def test_nothing_loadable_is_a_clear_error(self, tmp_path):
        (tmp_path / "notes.txt").write_text("hello")
        with pytest.raises(
            DicomError, match="no loadable DICOM images.*notes.txt.*not a DICOM file"
        ):
            load_path(tmp_path)

    def test_missing_path_and_unknown_series(self, good, tmp_path):
        with pytest.raises(DicomError, match="no such file or folder"):
            scan(tmp_path / "nope")
        with pytest.raises(DicomError, match="series '1.2.999' not found"):
            load_path(good[0], "1.2.999")

    def test_absurd_size_refused_before_allocating(self, good):
        st = scan(good[0]).stacks[0]
        with pytest.raises(DicomError, match="need .* GiB"):
            load_stack(st, max_bytes=1000)


class TestContainers:
    def test_dicomdir(self):
        res = scan(get_testdata_file("DICOMDIR"))
        mods = {s.modality for s in res.stacks}
        assert {"CT", "MR", "CR"} <= mods
        assert sum(s.image_count for s in res.stacks) + len(res.skipped) + len(res.non_image) == 31

    def test_zip_and_zip_inside_folder(self, good, tmp_path_factory):
        root, v = good
        z = tmp_path_factory.mktemp("z") / "series.zip"
        with zipfile.ZipFile(z, "w") as zf:
            for p in sorted((root / "good").iterdir()):
                zf.write(p, f"DICOM/{p.stem.upper()}")
            zf.writestr("README.txt", "not dicom")
        res = scan(z)
        assert len(res.stacks) == 1 and res.stacks[0].image_count == 6
        assert any("README.txt" in s.path for s in res.skipped)
        np.testing.assert_array_equal(load_stack(res.stacks[0]).voxels, v)
        shutil.copy(z, root / "archive.zip")
        res2 = scan(root)
        assert sorted(s.image_count for s in res2.stacks) == [
            6,
            6,
        ]  # folder copy + zip copy, kept apart

    def test_non_image_objects_listed(self, good):
        root, _ = good
        for name in ("test-SR.dcm", "rtstruct.dcm"):
            shutil.copy(get_testdata_file(name), root / name)
        res = scan(root)
        names = {n.sop_class_name for n in res.non_image}
        assert "Comprehensive SR Storage" in names and "RT Structure Set Storage" in names
        assert len(res.stacks) == 1


class TestJobProtocol:
    def test_progress_reaches_total(self, good):
        calls = []
        load_path(good[0], progress=lambda d, t, m: calls.append((d, t)))
        assert calls[-1] == (6, 6)
        assert [d for d, _ in calls] == sorted(d for d, _ in calls)

    def test_cancel_load(self, good):
        token = CancelToken()
        st = scan(good[0]).stacks[0]
        with pytest.raises(Cancelled):
            load_stack(st, progress=lambda d, t, m: token.cancel(), cancel=token)

    def test_cancel_scan(self, good):
        token = CancelToken()
        token.cancel()
        with pytest.raises(Cancelled):
            scan(good[0], cancel=token)

    @pytest.mark.parametrize("threads", [1, 3])
    def test_middle_slice_first(self, tmp_path, threads):
        v = ct((9, 16, 16), seed=3)
        write_series(
            tmp_path, v, transfer_syntax=RLELossless if threads > 1 else "1.2.840.10008.1.2.1"
        )
        events = []
        vol = load_path(
            tmp_path,
            threads=threads,
            progress=lambda d, t, m: events.append("p"),
            first_slice_callback=lambda z, a: events.append((z, a.copy())),
        )
        first = events[0]
        assert isinstance(first, tuple), "the first slice must arrive before any other progress"
        z, arr = first
        assert z == 4
        np.testing.assert_array_equal(arr, v[4])
        np.testing.assert_array_equal(vol.voxels, v)


class TestChangesAndChoice:
    def test_file_changed_after_scan_is_reread(self, good):
        root, v = good
        st = scan(root).stacks[0]
        z = 2
        ds = pydicom.dcmread(st.frames[z].file.ref.path)
        ds.PixelData = (np.full((16, 16), 1000 + 1024, np.uint16)).tobytes()
        ds.PatientComments = "x" * 333  # header grows: the scanned pixel offset is stale
        ds.save_as(st.frames[z].file.ref.path)
        vol = load_stack(st)
        assert (vol.voxels[z] == 1000).all()
        np.testing.assert_array_equal(np.delete(vol.voxels, z, 0), np.delete(v, z, 0))

    def test_cancel_with_thread_pool(self, tmp_path):
        write_series(tmp_path, ct((12, 16, 16)), transfer_syntax=RLELossless)
        token = CancelToken()
        st = scan(tmp_path).stacks[0]
        with pytest.raises(Cancelled):
            load_stack(
                st, threads=3, cancel=token, first_slice_callback=lambda z, a: token.cancel()
            )

    def test_pick_by_stack_id(self, tmp_path):
        write_series(tmp_path / "a", ct((3, 8, 8)), series_description="A")
        write_series(tmp_path / "b", ct((5, 8, 8)), series_description="B")
        res = scan(tmp_path)
        small = min(res.stacks, key=lambda s: s.image_count)
        vol = load_path(tmp_path, small.stack_id)
        assert vol.shape[0] == 3 and vol.meta.series_description == "A"
        assert vol.meta.extra["stack_id"] == small.stack_id
        assert load_path(tmp_path).meta.series_description == "B"  # default: the largest stack


class TestImplausibleHeaders:
    def _one(self, tmp_path, **extra):
        return write_series(tmp_path, ct((1, 8, 8)), extra=extra)[0]

    @pytest.mark.parametrize("slope", ["NaN", "inf", "0"])
    def test_unusable_rescale_is_a_reason(self, tmp_path, slope):
        p = self._one(tmp_path, RescaleSlope=slope)
        res = scan(tmp_path)
        assert not res.stacks
        assert "RescaleSlope (0028,1053)" in reason_for(res, p.name)

    @pytest.mark.parametrize(
        "iop", [[0, 0, 0, 0, 1, 0], ["NaN", 0, 0, 0, 1, 0], [1, 0, 0, 1, 0, 0]]
    )
    def test_degenerate_orientation_loads_as_2d_with_warning(self, tmp_path, iop):
        self._one(tmp_path, ImageOrientationPatient=iop)
        vol = load_path(tmp_path)
        assert vol.shape == (1, 8, 8)
        assert any("ImageOrientationPatient (0020,0037) is degenerate" in w for w in vol.warnings)

    def test_nan_position_and_zero_spacing(self, tmp_path):
        self._one(tmp_path, ImagePositionPatient=["NaN", 0, 0], PixelSpacing=[0, -1])
        vol = load_path(tmp_path)
        assert any("ImagePositionPatient (0020,0032)" in w for w in vol.warnings)
        assert any("1 mm pixels assumed" in w for w in vol.warnings)
        assert vol.spacing[1:] == (1.0, 1.0)
        json.dumps(scan(tmp_path).to_dict(), allow_nan=False)

    @pytest.mark.parametrize(
        "field,value,msg",
        [
            ("NumberOfFrames", 10**9, "NumberOfFrames (0028,0008)"),
            ("BitsStored", 40, "BitsStored (0028,0101)"),
            ("SamplesPerPixel", 4, "SamplesPerPixel (0028,0002)"),
        ],
    )
    def test_impossible_pixel_module(self, tmp_path, field, value, msg):
        p = self._one(tmp_path)
        ds = pydicom.dcmread(p)
        setattr(ds, field, value)
        ds.save_as(p)
        assert msg in reason_for(scan(tmp_path), p.name)

    def test_zip_bomb_member_refused_without_inflating(self, tmp_path, good):
        root, _ = good
        z = tmp_path / "bomb.zip"
        with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("huge.dcm", b"\0" * (64 << 20))  # 64 MiB of zeros -> ~64 KiB compressed
            for p in sorted((root / "good").iterdir()):
                zf.write(p, p.name)
        res = scan(z)
        assert "zip bomb" in reason_for(res, "huge.dcm")
        assert res.stacks[0].image_count == 6


def test_first_slice_callback_errors_propagate(tmp_path):
    write_series(tmp_path, ct((3, 8, 8)))

    def broken(z, a):
        raise RuntimeError("viewer bug")

    with pytest.raises(RuntimeError, match="viewer bug"):
        load_path(tmp_path, first_slice_callback=broken)


def test_first_slice_shows_padding_as_air(tmp_path):
    v = ct((3, 8, 8))
    v[:, 0, :] = -3024
    write_series(tmp_path, v, signed=True, extra={"PixelPaddingValue": -2000})
    got = []
    vol = load_path(tmp_path, first_slice_callback=lambda z, a: got.append(a))
    np.testing.assert_array_equal(got[0], vol.voxels[1])
    assert (got[0][0] == -1024).all()


def test_lying_transfer_syntaxes(tmp_path):
    v = ct((2, 16, 16))
    comp = write_series(tmp_path / "c", v, transfer_syntax=RLELossless, series_uid="1.2.3.70")
    nat = write_series(tmp_path / "n", v, series_uid="1.2.3.71")
    data = comp[0].read_bytes()  # says native, holds RLE fragments
    comp[0].write_bytes(data.replace(b"1.2.840.10008.1.2.5\0", b"1.2.840.10008.1.2.1\0", 1))
    data = nat[0].read_bytes()  # says RLE, holds native bytes (same-length UID swap in the meta)
    nat[0].write_bytes(data.replace(b"1.2.840.10008.1.2.1\0", b"1.2.840.10008.1.2.5\0", 1))
    res = scan(tmp_path)
    assert "transfer syntax is wrong" in reason_for(res, f"c/{comp[0].name}")
    for st in res.stacks:
        vol = load_stack(st)  # the lying RLE file is one blank slice with a reason
        if st.series_uid == "1.2.3.71":
            assert str(nat[0]) in vol.meta.extra["failed_files"]
            np.testing.assert_array_equal(vol.voxels[1], v[1])
