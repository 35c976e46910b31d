"""SEG round trip: written label map == what highdicom, plain pydicom and read_seg give back."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from viewer.anonymize import Anonymizer
from viewer.dicom.seg_reader import read_seg, read_seg_labels, referenced_series_uids
from viewer.dicom.synth import write_multiframe, write_series
from viewer.errors import DicomError
from viewer.export.seg import SegmentInfo, write_seg
from viewer.volume import Volume, VolumeMeta

SEGS = [
    SegmentInfo(1, "Right lung", (220, 120, 80), algorithm_name="m", algorithm_version="2",
                algorithm_engine="onnxruntime", algorithm_parameters={"sha256": "feed"}),
    SegmentInfo(2, "Left lung", (80, 120, 220), algorithm_name="m", algorithm_version="2"),
    SegmentInfo(3, "Lesion", (255, 230, 0), algorithm_type="MANUAL"),
]


def _series(folder: Path, nz: int = 7, shuffle: bool = True) -> tuple[Volume, list[pydicom.Dataset]]:
    vox = np.full((nz, 24, 30), -700, np.int16)
    paths = write_series(folder, vox, spacing=(3.0, 0.9, 0.6), origin=(5.0, -7.0, -40.0),
                         iop=(1, 0, 0, 0, 0.96, -0.28), shuffle=shuffle, uid_seed=str(folder))
    dss = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    normal = np.cross([1, 0, 0], np.array([0, 0.96, -0.28]) / np.linalg.norm([0, 0.96, -0.28]))
    direction = np.column_stack([[1, 0, 0], np.array([0, 0.96, -0.28]) / np.linalg.norm([0, 0.96, -0.28]), normal])
    meta = VolumeMeta(modality="CT", series_instance_uid=dss[0].SeriesInstanceUID,
                      frame_of_reference_uid=dss[0].FrameOfReferenceUID,
                      sop_instance_uids=[d.SOPInstanceUID for d in dss], frame_numbers=[None] * nz,
                      source_files=[str(p) for p in paths])
    return Volume(vox, (3.0, 0.9, 0.6), origin=(5.0, -7.0, -40.0), direction=direction, meta=meta), dss


def _labels(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lab = np.zeros(shape, np.uint8)
    lab[1:-1, 3:20, 2:13] = 1
    lab[2:-2, 4:18, 16:28] = 2
    lab[rng.random(shape) > 0.97] = 3  # scattered single voxels: exact pixel placement matters
    return lab


def _pydicom_labels(path: Path, sop_uids: list[str], shape: tuple[int, int, int]) -> np.ndarray:
    """Independent decoding with plain pydicom: frame → (segment, source instance) → slice."""
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array.reshape(int(ds.NumberOfFrames), ds.Rows, ds.Columns)
    out = np.zeros(shape, np.uint8)
    for frame, fg in zip(frames, ds.PerFrameFunctionalGroupsSequence, strict=True):
        number = fg.SegmentIdentificationSequence[0].ReferencedSegmentNumber
        uid = fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        out[sop_uids.index(uid)][frame > 0] = number
    return out


class TestRoundTrip:
    def test_three_readers_agree(self, tmp_path: Path) -> None:
        vol, _ = _series(tmp_path / "src")
        lab = _labels(vol.shape)
        out = write_seg(tmp_path / "seg.dcm", vol, lab, SEGS)
        uids = list(vol.meta.sop_instance_uids)
        # highdicom
        seg = hd.seg.segread(out)
        got = seg.get_pixels_by_source_instance(uids, combine_segments=True, skip_overlap_checks=False)
        assert np.array_equal(got.astype(np.uint8), lab)
        # plain pydicom
        assert np.array_equal(_pydicom_labels(out, uids, vol.shape), lab)
        # ours
        r = read_seg(out, vol)
        assert np.array_equal(r.labels, lab) and r.labels.dtype == np.uint8
        assert r.matched_by == "sop-instance" and r.warnings == []
        assert [s.name for s in r.segments] == ["Right lung", "Left lung", "Lesion"]
        s1 = r.segments[0]
        assert (s1.algorithm_name, s1.algorithm_version, s1.algorithm_engine) == ("m", "2", "onnxruntime")
        assert s1.algorithm_parameters == {"sha256": "feed"} and s1.type_modifier[2] == "Right"
        assert all(abs(a - b) <= 2 for a, b in zip(s1.color, (220, 120, 80), strict=True))
        assert [s.algorithm_type for s in r.segments] == ["AUTOMATIC", "AUTOMATIC", "MANUAL"]
        assert referenced_series_uids(out) == [vol.meta.series_instance_uid]
        labels, segments = read_seg_labels(out, vol)
        assert np.array_equal(labels, lab) and len(segments) == 3

    def test_multiframe_source(self, tmp_path: Path) -> None:
        nz, order = 6, [4, 1, 5, 0, 3, 2]  # frames stored out of spatial order
        vox = np.full((nz, 20, 16), -600, np.int16)
        p = write_multiframe(tmp_path / "mf.dcm", vox, spacing=(2.0, 1.0, 1.0), frame_order=order, uid_seed="mf")
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        meta = VolumeMeta(modality="CT", sop_instance_uids=[ds.SOPInstanceUID] * nz,
                          frame_numbers=[order.index(z) + 1 for z in range(nz)], source_files=[str(p)] * nz,
                          frame_of_reference_uid=ds.FrameOfReferenceUID)
        vol = Volume(vox, (2.0, 1.0, 1.0), meta=meta)
        lab = _labels(vol.shape, seed=1)
        out = write_seg(tmp_path / "seg.dcm", vol, lab, SEGS)
        r = read_seg(out, vol)
        assert np.array_equal(r.labels, lab) and r.matched_by == "sop-instance"
        seg = hd.seg.segread(out)
        by_frame = seg.get_pixels_by_source_frame(ds.SOPInstanceUID, list(range(1, nz + 1)), combine_segments=True)
        assert np.array_equal(by_frame.astype(np.uint8), lab[[order[f] for f in range(nz)]])
        import shutil
        import subprocess

        if shutil.which("dciodvfy"):
            r = subprocess.run(["dciodvfy", str(out)], capture_output=True, text=True, timeout=60)
            assert not [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("Error")], r.stderr

    def test_anonymised_seg_on_original_series(self, tmp_path: Path) -> None:
        vol, _ = _series(tmp_path / "src")
        lab = _labels(vol.shape, seed=2)
        anon = Anonymizer()
        out = write_seg(tmp_path / "seg.dcm", vol, lab, SEGS, anonymize=True, anonymizer=anon)
        ds = pydicom.dcmread(out)
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == anon.uid_map(vol.meta.series_instance_uid)
        assert ds.FrameOfReferenceUID == anon.uid_map(vol.meta.frame_of_reference_uid)
        r = read_seg(out, vol)  # UIDs differ: placed by position, with a warning
        assert np.array_equal(r.labels, lab) and r.matched_by == "position"
        assert any("FrameOfReferenceUID" in w for w in r.warnings)
        # ...and on the anonymised metadata by SOP instance UID
        vol_anon = Volume(vol.voxels, vol.spacing, vol.origin, vol.direction, anon.meta(vol.meta))
        r2 = read_seg(out, vol_anon)
        assert np.array_equal(r2.labels, lab) and r2.matched_by == "sop-instance" and not r2.warnings

    def test_loaded_with_dicom_loader(self, tmp_path: Path) -> None:
        load = pytest.importorskip("viewer.dicom.load")
        _series(tmp_path / "study" / "ct", shuffle=True)
        vol = load.load_path(tmp_path / "study" / "ct")
        lab = _labels(vol.shape, seed=3)
        out = write_seg(tmp_path / "study" / "seg" / "seg.dcm", vol, lab, SEGS)
        assert np.array_equal(read_seg(out, vol).labels, lab)


class TestSourcesFromTheLoader:
    def test_series_with_a_gap(self, tmp_path: Path) -> None:
        load = pytest.importorskip("viewer.dicom.load")
        vol0, _ = _series(tmp_path / "ct", nz=7, shuffle=False)
        gap_uid = vol0.meta.sop_instance_uids[3]
        Path(vol0.meta.source_files[3]).unlink()
        vol = load.load_path(tmp_path / "ct")
        assert vol.shape[0] == 7 and vol.meta.sop_instance_uids[3] == ""  # blank slice at the gap
        lab = _labels(vol.shape, seed=4)
        warnings: list[str] = []
        out = write_seg(tmp_path / "seg.dcm", vol, lab, SEGS, warnings=warnings)
        assert warnings and "without a source image" in warnings[0]
        ds = pydicom.dcmread(out)
        refs = {r.ReferencedSOPInstanceUID for r in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
        assert gap_uid not in refs and len(refs) == 6
        expected = lab.copy()
        expected[3] = 0
        assert np.array_equal(read_seg(out, vol).labels, expected)

    def test_series_inside_a_zip(self, tmp_path: Path) -> None:
        import zipfile

        load = pytest.importorskip("viewer.dicom.load")
        vol0, _ = _series(tmp_path / "ct", nz=4)
        with zipfile.ZipFile(tmp_path / "study.zip", "w") as zf:
            for f in vol0.meta.source_files:
                zf.write(f, f"ct/{Path(f).name}")
        vol = load.load_path(tmp_path / "study.zip")
        if "!" not in vol.meta.source_files[0]:
            pytest.skip("the loader does not reference zip members as archive!member")
        lab = _labels(vol.shape, seed=5)
        out = write_seg(tmp_path / "seg.dcm", vol, lab, SEGS)
        assert np.array_equal(read_seg(out, vol).labels, lab)


class TestSegInAStudyFolder:
    def test_scanner_lists_it_and_it_overlays(self, tmp_path: Path) -> None:
        """A SEG written into the study folder: found for its series, shown on it (as the GUI does)."""
        import zipfile

        load = pytest.importorskip("viewer.dicom.load")
        scan = pytest.importorskip("viewer.dicom.scan")
        from viewer.dicom.seg_reader import segs_for_series

        vol0, _ = _series(tmp_path / "study" / "ct", nz=5)
        lab = _labels(vol0.shape, seed=6)
        write_seg(tmp_path / "study" / "seg.dcm", vol0, lab, SEGS)
        result = scan.scan(tmp_path / "study")
        assert len(result.stacks) == 1  # the SEG is not an image stack
        found = segs_for_series(result.non_image, vol0.meta.series_instance_uid)
        assert [Path(p).name for p in found] == ["seg.dcm"]
        assert segs_for_series(result.non_image, "1.2.3.4") == []
        vol = load.load_path(tmp_path / "study" / "ct")
        assert np.array_equal(read_seg(found[0], vol).labels, lab)
        # the same study zipped: the SEG is referenced as archive!member and still readable
        with zipfile.ZipFile(tmp_path / "study.zip", "w") as zf:
            for f in (tmp_path / "study").rglob("*.dcm"):
                zf.write(f, str(f.relative_to(tmp_path)))
        zres = scan.scan(tmp_path / "study.zip")
        zfound = segs_for_series(zres.non_image, vol0.meta.series_instance_uid)
        assert len(zfound) == 1
        assert np.array_equal(read_seg(zfound[0], load.load_path(tmp_path / "study.zip")).labels, lab)


class TestForeignSegs:
    """SEGs written by other tools' conventions: fractional, overlapping binary segments."""

    def _descriptions(self, n: int) -> list:
        from pydicom.sr.codedict import codes

        return [hd.seg.SegmentDescription(i + 1, f"Seg {i + 1}", codes.SCT.Tissue, codes.SCT.Tissue, "MANUAL")
                for i in range(n)]

    def test_fractional(self, tmp_path: Path) -> None:
        vol, dss = _series(tmp_path / "src", nz=4, shuffle=False)
        prob = np.zeros(vol.shape, np.float32)
        prob[1:3, 5:15, 5:15] = 0.8
        prob[1:3, 5:15, 15:20] = 0.3  # below one half: not in the label map
        seg = hd.seg.Segmentation(dss, prob, "FRACTIONAL", self._descriptions(1), hd.UID(), 5, hd.UID(), 1,
                                  "other", "other", "1", "1", max_fractional_value=255)
        seg.save_as(tmp_path / "frac.dcm")
        r = read_seg(tmp_path / "frac.dcm", vol)
        assert np.array_equal(r.labels, (prob > 0.5).astype(np.uint8))

    def test_labelmap_seg(self, tmp_path: Path) -> None:
        """Label Map Segmentation Storage (one frame per slice holding segment numbers)."""
        vol, dss = _series(tmp_path / "src", nz=4, shuffle=False)
        lab = _labels(vol.shape, seed=7)
        seg = hd.seg.Segmentation(dss, lab, "LABELMAP", self._descriptions(3), hd.UID(), 5, hd.UID(), 1,
                                  "other", "other", "1", "1")
        seg.save_as(tmp_path / "lm.dcm")
        assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.7"
        r = read_seg(tmp_path / "lm.dcm", vol)
        assert np.array_equal(r.labels, lab) and r.matched_by == "sop-instance"

    def test_overlapping_binary_segments(self, tmp_path: Path) -> None:
        vol, dss = _series(tmp_path / "src", nz=4, shuffle=False)
        stacked = np.zeros((*vol.shape, 2), np.uint8)
        stacked[1:3, 5:15, 5:15, 0] = 1
        stacked[1:3, 10:20, 10:20, 1] = 1  # overlaps segment 1 on 5 x 5 x 2 voxels
        seg = hd.seg.Segmentation(dss, stacked, "BINARY", self._descriptions(2), hd.UID(), 5, hd.UID(), 1,
                                  "other", "other", "1", "1")
        seg.save_as(tmp_path / "ovl.dcm")
        r = read_seg(tmp_path / "ovl.dcm", vol)
        expected = np.where(stacked[..., 1] > 0, 2, np.where(stacked[..., 0] > 0, 1, 0)).astype(np.uint8)
        assert np.array_equal(r.labels, expected)
        assert any("50 voxels belong to more than one segment" in w for w in r.warnings)
        assert [s.name for s in r.segments] == ["Seg 1", "Seg 2"] and r.segments[0].algorithm_type == "MANUAL"


class TestReadErrors:
    def test_not_a_seg(self, tmp_path: Path) -> None:
        vol, _ = _series(tmp_path / "src", nz=3)
        with pytest.raises(DicomError, match=r"SOPClassUID .* not a DICOM Segmentation"):
            read_seg(vol.meta.source_files[0], vol)
        (tmp_path / "junk.dcm").write_bytes(b"not dicom at all")
        with pytest.raises(DicomError, match="junk.dcm"):
            read_seg(tmp_path / "junk.dcm", vol)

    def test_other_grid(self, tmp_path: Path) -> None:
        vol, _ = _series(tmp_path / "src", nz=3)
        out = write_seg(tmp_path / "seg.dcm", vol, _labels(vol.shape), SEGS)
        other = Volume(np.zeros((3, 10, 10), np.int16), vol.spacing, meta=VolumeMeta())
        with pytest.raises(DicomError, match=r"24x30 .* series is 10x10"):
            read_seg(out, other)

    def test_frames_off_grid_warn(self, tmp_path: Path) -> None:
        vol, _ = _series(tmp_path / "src", nz=4)
        out = write_seg(tmp_path / "seg.dcm", vol, _labels(vol.shape), SEGS)
        shifted = Volume(vol.voxels, vol.spacing, tuple(np.add(vol.origin, (0, 0, 1.5))), vol.direction,
                         VolumeMeta(modality="CT"))
        r = read_seg(out, shifted)
        assert not r.labels.any() and "lie on no slice" in r.warnings[0]


class TestRealData:
    def test_real_chest_ct(self, shared_data: Path, tmp_path: Path) -> None:
        """A real Siemens CT (private tags, real UIDs): SEG valid, exact round trip, anonymised clean."""
        import shutil
        import subprocess

        from scipy import ndimage

        from viewer.anonymize import identifiers_of, scan_files

        load = pytest.importorskip("viewer.dicom.load")
        folder = shared_data / "chest-ct-lungdx-a0002" / "series3_8mm_B40f"
        vol = load.load_path(folder)
        hu = vol.voxels
        body = ndimage.binary_fill_holes(hu > -500, structure=np.ones((1, 3, 3)))
        lung = (hu < -400) & body
        lab = np.zeros(vol.shape, np.uint8)
        half = np.arange(vol.shape[2])[None, None, :] < vol.shape[2] // 2
        lab[lung & half], lab[lung & ~half] = 1, 2
        lab[12:16, 250:300, 160:220][hu[12:16, 250:300, 160:220] > -300] = 3
        out = write_seg(tmp_path / "seg.dcm", vol, lab, SEGS)
        assert np.array_equal(read_seg(out, vol).labels, lab)
        if shutil.which("dciodvfy"):
            r = subprocess.run(["dciodvfy", str(out)], capture_output=True, text=True, timeout=120)
            assert not [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("Error")], r.stderr
        anon = write_seg(tmp_path / "anon" / "seg.dcm", vol, lab, SEGS, anonymize=True)
        src = pydicom.dcmread(vol.meta.source_files[0], stop_before_pixels=True)
        idents = identifiers_of(patient_name=str(src.PatientName), patient_id=src.PatientID,
                                birth_date=str(src.get("PatientBirthDate", "")),
                                extra=[src.StudyInstanceUID, src.SeriesInstanceUID, src.SOPInstanceUID,
                                       str(src.get("InstitutionName", "")), str(src.get("StudyDate", ""))])
        assert scan_files([anon], idents) == {}
        assert scan_files([out], idents)  # the plain SEG does carry them
        assert np.array_equal(read_seg(anon, vol).labels, lab)
