"""PS3.15 basic-profile de-identification of datasets and metadata; identifier scanning."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from viewer.anonymize import Anonymizer, UidMap, identifiers_of, scan_files, scan_for_identifiers
from viewer.dicom.synth import write_series
from viewer.volume import VolumeMeta

NAME, PID, BIRTH = "Zyxwvutsky^Quintessa", "PID-8831-XQ", "19431127"
IDENTS = identifiers_of(patient_name=NAME, patient_id=PID, birth_date=BIRTH)


def _source(tmp_path: Path) -> pydicom.Dataset:
    paths = write_series(tmp_path / "src", np.zeros((2, 8, 8), np.int16), patient_name=NAME, patient_id=PID,
                         birth_date=BIRTH, uid_seed="anon")
    ds = pydicom.dcmread(paths[0])
    ds.InstitutionName = "St Elsewhere Hospital"
    ds.ReferringPhysicianName = "Doctor^Who"
    ds.OperatorsName = "Tech^Nician"
    ds.PatientAddress = "1 Main Street"
    ds.OtherPatientIDs = "OTHER-ID-77"
    ds.add_new(0x00091001, "LO", "private secret")
    ds.add_new(0x00091010, "LO", "Zyxwvutsky private")
    ref = Dataset()
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    ref.VerifyingObserverName = "Some^Body"
    ds.ReferencedImageSequence = [ref]
    ds.AcquisitionDateTime = "20240101120000"
    ds.add_new(0x60000010, "US", 8)  # OverlayRows
    return ds


class TestUidMap:
    def test_consistent_and_distinct(self) -> None:
        m = UidMap()
        a, b = "1.2.3.4", "1.2.3.5"
        assert m(a) == m(a) and m(a) != m(b) and m(a) != a
        assert pydicom.uid.UID(m(a)).is_valid

    def test_idempotent_on_outputs(self) -> None:
        m = UidMap()
        new = m("1.2.3.4")
        assert m(new) == new and len(m) == 1

    def test_secret_decides(self) -> None:
        assert UidMap(b"k" * 16)("1.2.3") == UidMap(b"k" * 16)("1.2.3")
        assert UidMap(b"k" * 16)("1.2.3") != UidMap(b"j" * 16)("1.2.3")
        assert UidMap()("1.2.3") != UidMap()("1.2.3")  # fresh random secret per session


class TestAnonymizeDataset:
    def test_basic_profile(self, tmp_path: Path) -> None:
        src = _source(tmp_path)
        before = src.to_json()
        anon = Anonymizer()
        out = anon.dataset(src)
        assert src.to_json() == before, "the caller's dataset must not change"
        assert out.PatientIdentityRemoved == "YES"
        assert "PS3.15 E.1 Basic Profile" in out.DeidentificationMethod
        assert out.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert out.LongitudinalTemporalInformationModified == "REMOVED"
        assert str(out.PatientName).startswith("ANONYMOUS^") and out.PatientID.startswith("ANON-")
        assert out.PatientBirthDate == "" and out.StudyDate == "19000101" and out.ReferringPhysicianName == ""
        for kw in ("InstitutionName", "OperatorsName", "PatientAddress", "OtherPatientIDs", "SeriesDate",
                   "StudyDescription", "SeriesDescription", "AcquisitionDateTime", "DeviceSerialNumber"):
            assert kw not in out, kw
        assert not [e for e in out if e.tag.is_private]
        assert 0x60000010 not in out
        # UIDs mapped consistently; SOP class (DICOM-defined) kept; geometry kept
        for kw in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
            assert out[kw].value == anon.uid_map(src[kw].value) != src[kw].value
        assert out.SOPClassUID == src.SOPClassUID
        assert out.ReferencedImageSequence[0].ReferencedSOPInstanceUID == out.SOPInstanceUID
        assert out.ReferencedImageSequence[0].VerifyingObserverName == "ANONYMOUS"
        assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
        assert out.ImagePositionPatient == src.ImagePositionPatient
        assert out.PixelData == src.PixelData

    def test_no_identifier_in_saved_bytes(self, tmp_path: Path) -> None:
        out = Anonymizer().dataset(_source(tmp_path))
        out.save_as(tmp_path / "a.dcm", enforce_file_format=True)
        raw = (tmp_path / "a.dcm").read_bytes()
        assert scan_for_identifiers(raw, IDENTS + ["St Elsewhere", "Who", "OTHER-ID-77"]) == []
        # and the source itself does contain them (the scan can fail)
        assert NAME.encode() in (tmp_path / "src" / "slice0000.dcm").read_bytes()

    def test_same_patient_same_pseudonym(self, tmp_path: Path) -> None:
        anon = Anonymizer()
        a = anon.dataset(_source(tmp_path))
        assert anon.pseudonym(PID) == (str(a.PatientName), a.PatientID)
        assert anon.pseudonym("other")[1] != a.PatientID
        assert anon.pseudonym(PID)[1] != Anonymizer().pseudonym(PID)[1]

    def test_explicit_pseudonyms(self, tmp_path: Path) -> None:
        out = Anonymizer(patient_name="Case^001", patient_id="CASE001").dataset(_source(tmp_path))
        assert (str(out.PatientName), out.PatientID) == ("Case^001", "CASE001")


class TestAnonymizeMeta:
    def test_meta(self) -> None:
        meta = VolumeMeta(modality="CT", patient_name=NAME, patient_id=PID, patient_birth_date=BIRTH,
                          study_instance_uid="1.2.3", series_instance_uid="1.2.4", frame_of_reference_uid="1.2.5",
                          study_description="Chest of Zyxwvutsky", source_files=[f"/data/{NAME}/1.dcm"],
                          sop_instance_uids=["1.2.6", "1.2.7"], frame_numbers=[None, None])
        anon = Anonymizer()
        out = anon.meta(meta)
        assert out.modality == "CT" and out.patient_birth_date == "" and out.source_files == []
        assert out.series_instance_uid == anon.uid_map("1.2.4")
        assert out.sop_instance_uids == [anon.uid_map("1.2.6"), anon.uid_map("1.2.7")]
        assert not scan_for_identifiers(repr(out).encode(), IDENTS)
        assert meta.patient_name == NAME  # original untouched


class TestScan:
    def test_identifier_spellings(self) -> None:
        ids = identifiers_of(patient_name="Doe^John", patient_id="X1", birth_date="19700102")
        for s in ("Doe^John", "Doe John", "John Doe", "Doe_John", "DoeJohn", "1970-01-02", "02/01/1970",
                  "01/02/1970", "X1"):
            assert s in ids

    def test_finds_inside_flate_stream_and_utf16(self, tmp_path: Path) -> None:
        blob = b"%PDF-1.4\nstream\n" + zlib.compress(b"BT (Quintessa) Tj ET") + b"\nendstream\n"
        assert scan_for_identifiers(blob, IDENTS) == ["Quintessa"]
        assert scan_for_identifiers("x PID-8831-XQ y".encode("utf-16-le"), IDENTS) == [PID]
        assert scan_for_identifiers(b"1943-11-27", IDENTS) == ["1943-11-27"]
        p = tmp_path / "Zyxwvutsky.png"
        p.write_bytes(b"clean")
        assert scan_files([p], IDENTS) == {str(p): ["Zyxwvutsky"]}

    @pytest.mark.parametrize("clean", [b"", b"ANON-ABCDEFGH", b"ordinary bytes 20240101"])
    def test_clean(self, clean: bytes) -> None:
        assert scan_for_identifiers(clean, IDENTS) == []


class TestAnonymisedExportsEndToEnd:
    """Every byte of every anonymised export (SEG, PDF, PNG, NIfTI, JSON) is free of the identifiers."""

    def test_segment_cli_anonymize(self, tmp_path: Path) -> None:
        import json
        import os
        import shutil
        import subprocess

        from tests.test_engines import band_package
        from viewer.anonymize import session_anonymizer
        from viewer.cli import main
        from viewer.dicom.load import load_path
        from viewer.dicom.seg_reader import read_seg
        from viewer.export.png import compose_key_image, write_png

        band_package(Path(os.environ["CLINICAL_VIEWER_MODELS"]) / "band-anon", (0.0, 0.5, 0.75, 1.0),
                     labels=[{"value": 0, "name": "background", "color": [0, 0, 0]},
                             {"value": 1, "name": "right lung", "color": [220, 80, 60]},
                             {"value": 2, "name": "left lung", "color": [60, 120, 220]},
                             {"value": 3, "name": "lesion", "color": [250, 210, 40]}])
        hu = np.full((6, 64, 64), -1050, np.int16)
        hu[1:5, 10:50, 6:30] = -600
        hu[1:5, 10:50, 34:60] = -225
        hu[2:4, 20:26, 12:18] = 150
        series = tmp_path / "dicom" / "ct"
        write_series(series, hu, spacing=(2.5, 1.0, 1.0), patient_name=NAME, patient_id=PID, birth_date=BIRTH,
                     series_description="Zyxwvutsky chest", extra={"InstitutionName": "St Elsewhere Hospital",
                                                                    "ReferringPhysicianName": "Doctor^Who"})
        out = tmp_path / "out"
        assert main(["segment", str(series), "--model", "band-anon", "--threads", "1", "--anonymize", "--force",
                     "--out", str(out)]) == 0
        doc = json.loads((out / "stats.json").read_text())
        assert doc["export_problems"] == []
        assert {"seg.dcm", "labels.nii.gz", "report.pdf", "stats.json"} <= {p.name for p in out.iterdir()}
        # key image via the PNG writer (what the GUI's "export key image" does)
        vol = load_path(series)
        write_png(out / "key_001.png", compose_key_image(vol.voxels[2], caption=["axial 3/6"]))
        src = pydicom.dcmread(sorted(series.iterdir())[0])
        idents = IDENTS + ["St Elsewhere", "Doctor^Who", "Zyxwvutsky chest", src.StudyInstanceUID,
                           src.SeriesInstanceUID, src.SOPInstanceUID, src.FrameOfReferenceUID]
        files = sorted(p for p in out.rglob("*") if p.is_file())
        assert len(files) >= 5
        assert scan_files(files, idents) == {}  # raw bytes, inflated PDF streams, gunzipped NIfTI, names
        if shutil.which("pdftotext"):
            text = subprocess.run(["pdftotext", str(out / "report.pdf"), "-"], capture_output=True,
                                  check=True).stdout
            assert b"anonymised" in text
            assert scan_for_identifiers(text, idents) == []
            assert scan_for_identifiers(b" ".join(text.split()), idents) == []
        # the anonymised SEG still works: it overlays the original series by position,
        # and the report quotes the SEG's (replaced) series UID from the same session
        seg = pydicom.dcmread(out / "seg.dcm")
        assert seg.PatientIdentityRemoved == "YES"
        assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == session_anonymizer().uid_map(src.SeriesInstanceUID)
        if shutil.which("pdftotext"):
            assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID.encode() in b"".join(text.split())
        r = read_seg(out / "seg.dcm", vol)
        assert r.labels.max() == 3 and r.matched_by == "position"
        # positive control: the source files do contain what the scan looks for
        assert scan_files(sorted(series.iterdir())[:1], idents)
