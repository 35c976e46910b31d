"""DICOM SEG writer: dciodvfy-clean, coded segments, algorithm identification, references, errors."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from viewer.dicom.synth import write_series
from viewer.errors import ExportError
from viewer.export.seg import SegmentInfo, default_codes, write_seg
from viewer.volume import Volume, VolumeMeta

SEGMENTS = [
    SegmentInfo(1, "Right lung", (220, 120, 80), algorithm_name="lungseg-unet", algorithm_version="1.2.0",
                algorithm_engine="onnxruntime CPU fp32", algorithm_parameters={"sha256": "0123abcd"}),
    SegmentInfo(2, "Left lung", (80, 120, 220), algorithm_type="SEMIAUTOMATIC", algorithm_name="lungseg-unet",
                algorithm_version="1.2.0", algorithm_engine="onnxruntime CPU fp32"),
    SegmentInfo(3, "Lesion", (255, 230, 0), algorithm_type="MANUAL"),
]


def make_series(folder: Path, nz: int = 6, ny: int = 32, nx: int = 40, **kw) -> tuple[Volume, list[Path]]:
    """A synthetic CT series on disk and the Volume a loader would build from it (z sorted)."""
    vox = np.full((nz, ny, nx), -800, np.int16)
    kw.setdefault("uid_seed", folder.name)
    paths = write_series(folder, vox, spacing=(2.5, 0.7, 0.8), origin=(-10.0, -20.0, 30.0), **kw)
    dss = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    meta = VolumeMeta(
        modality="CT", patient_name=str(dss[0].PatientName), patient_id=dss[0].PatientID,
        patient_birth_date=dss[0].PatientBirthDate, study_instance_uid=dss[0].StudyInstanceUID,
        series_instance_uid=dss[0].SeriesInstanceUID, frame_of_reference_uid=dss[0].FrameOfReferenceUID,
        sop_instance_uids=[d.SOPInstanceUID for d in dss], frame_numbers=[None] * nz,
        source_files=[str(p) for p in paths])
    return Volume(vox, (2.5, 0.7, 0.8), origin=(-10.0, -20.0, 30.0), meta=meta), paths


def make_labels(shape: tuple[int, int, int]) -> np.ndarray:
    lab = np.zeros(shape, np.uint8)
    lab[1:4, 5:15, 5:15] = 1
    lab[2:5, 18:28, 22:34] = 2
    lab[shape[0] // 2, 8:12, 8:12] = 3  # inside the right lung: the lesion wins in the label map
    return lab


def dciodvfy_errors(path: Path) -> tuple[list[str], list[str]]:
    r = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    lines = (r.stdout + r.stderr).splitlines()
    return [ln for ln in lines if ln.startswith("Error")], [ln for ln in lines if ln.startswith("Warning")]


needs_dciodvfy = pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) missing")


class TestWriteSeg:
    @needs_dciodvfy
    @pytest.mark.parametrize("anonymize", [False, True])
    def test_dciodvfy_clean(self, tmp_path: Path, anonymize: bool) -> None:
        vol, _ = make_series(tmp_path / "src")
        out = write_seg(tmp_path / "seg.dcm", vol, make_labels(vol.shape), SEGMENTS, anonymize=anonymize)
        errors, warnings = dciodvfy_errors(out)
        assert errors == [], errors
        assert warnings == [], warnings
        # dciodvfy really checks: a broken SEG is reported
        ds = pydicom.dcmread(out)
        del ds.SegmentSequence[0].SegmentedPropertyCategoryCodeSequence
        ds.save_as(tmp_path / "broken.dcm")
        assert dciodvfy_errors(tmp_path / "broken.dcm")[0]

    def test_segments_codes_and_algorithms(self, tmp_path: Path) -> None:
        vol, _ = make_series(tmp_path / "src")
        ds = pydicom.dcmread(write_seg(tmp_path / "seg.dcm", vol, make_labels(vol.shape), SEGMENTS))
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and ds.SegmentationType == "BINARY"
        s1, s2, s3 = ds.SegmentSequence
        assert (s1.SegmentLabel, s1.SegmentAlgorithmType) == ("Right lung", "AUTOMATIC")
        t1 = s1.SegmentedPropertyTypeCodeSequence[0]
        assert (t1.CodeValue, t1.CodingSchemeDesignator) == ("39607008", "SCT")
        assert t1.SegmentedPropertyTypeModifierCodeSequence[0].CodeValue == "24028007"  # right
        assert s2.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence[0].CodeValue == "7771000"
        assert s1.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "123037004"
        assert s3.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
        alg = s1.SegmentationAlgorithmIdentificationSequence[0]
        assert (alg.AlgorithmName, alg.AlgorithmVersion) == ("lungseg-unet", "1.2.0")
        assert alg.AlgorithmFamilyCodeSequence[0].CodeMeaning == "Artificial Intelligence"
        assert "engine=onnxruntime CPU fp32" in alg.AlgorithmParameters and "sha256=0123abcd" in alg.AlgorithmParameters
        assert s2.SegmentAlgorithmType == "SEMIAUTOMATIC" and "SegmentationAlgorithmIdentificationSequence" in s2
        assert s3.SegmentAlgorithmType == "MANUAL" and "SegmentationAlgorithmIdentificationSequence" not in s3
        assert ds.SeriesDescription == "AI segmentation"

    def test_references_source_series(self, tmp_path: Path) -> None:
        vol, paths = make_series(tmp_path / "src")
        ds = pydicom.dcmread(write_seg(tmp_path / "seg.dcm", vol, make_labels(vol.shape), SEGMENTS))
        assert ds.FrameOfReferenceUID == vol.meta.frame_of_reference_uid
        assert ds.StudyInstanceUID == vol.meta.study_instance_uid
        assert ds.PatientID == vol.meta.patient_id
        ref = ds.ReferencedSeriesSequence[0]
        assert ref.SeriesInstanceUID == vol.meta.series_instance_uid
        assert {r.ReferencedSOPInstanceUID for r in ref.ReferencedInstanceSequence} == set(vol.meta.sop_instance_uids)
        # every stored frame points at the source slice it lies on
        for fg in ds.PerFrameFunctionalGroupsSequence:
            src = fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
            z = vol.meta.sop_instance_uids.index(src)
            assert np.allclose(fg.PlanePositionSequence[0].ImagePositionPatient, vol.index_to_lps(z, 0, 0), atol=1e-4)

    def test_empty_frames_omitted(self, tmp_path: Path) -> None:
        vol, _ = make_series(tmp_path / "src")
        lab = make_labels(vol.shape)
        ds = pydicom.dcmread(write_seg(tmp_path / "seg.dcm", vol, lab, SEGMENTS))
        expected = sum(int((lab[z] == v).any()) for z in range(vol.shape[0]) for v in (1, 2, 3))
        assert int(ds.NumberOfFrames) == expected < 3 * vol.shape[0]

    def test_all_empty_map_still_valid(self, tmp_path: Path) -> None:
        vol, _ = make_series(tmp_path / "src", nz=3)
        out = write_seg(tmp_path / "seg.dcm", vol, np.zeros(vol.shape, np.uint8), SEGMENTS[:1])
        ds = pydicom.dcmread(out)
        assert int(ds.NumberOfFrames) == 3 and not ds.pixel_array.any()

    def test_non_consecutive_values_are_renumbered(self, tmp_path: Path) -> None:
        vol, _ = make_series(tmp_path / "src", nz=3)
        lab = np.zeros(vol.shape, np.uint8)
        lab[1, 2:5, 2:5] = 7
        segs = [SegmentInfo(7, "Nodule", algorithm_name="m")]
        ds = pydicom.dcmread(write_seg(tmp_path / "seg.dcm", vol, lab, segs))
        assert ds.SegmentSequence[0].SegmentNumber == 1
        assert ds.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue == "27925004"

    def test_caller_data_untouched_and_atomic(self, tmp_path: Path) -> None:
        vol, _ = make_series(tmp_path / "src", nz=3)
        lab = make_labels(vol.shape)
        before = lab.copy()
        write_seg(tmp_path / "out" / "seg.dcm", vol, lab, SEGMENTS)
        assert np.array_equal(lab, before)
        assert [p.name for p in (tmp_path / "out").iterdir()] == ["seg.dcm"]


class TestJobProtocol:
    def test_progress_and_cancel(self, tmp_path: Path) -> None:
        from viewer.errors import Cancelled

        vol, _ = make_series(tmp_path / "src", nz=20)
        lab = np.zeros(vol.shape, np.uint8)
        lab[5:15, 4:20, 4:20] = 1
        calls: list[tuple[int, int, str]] = []
        write_seg(tmp_path / "seg.dcm", vol, lab, SEGMENTS[:1], progress=lambda d, t, m: calls.append((d, t, m)))
        assert calls[-1][0] == calls[-1][1] and [c[0] for c in calls] == sorted(c[0] for c in calls)
        assert any("source headers" in c[2] for c in calls)
        n = {"k": 0}

        def cancel_after_two() -> bool:
            n["k"] += 1
            return n["k"] > 2

        with pytest.raises(Cancelled):
            write_seg(tmp_path / "c.dcm", vol, lab, SEGMENTS[:1], cancel=cancel_after_two)
        assert not (tmp_path / "c.dcm").exists()


class TestErrors:
    def test_label_without_segment(self, tmp_path: Path) -> None:
        vol, _ = make_series(tmp_path / "src", nz=3)
        lab = make_labels(vol.shape)
        with pytest.raises(ExportError, match=r"label values \[3\] have no segment description"):
            write_seg(tmp_path / "seg.dcm", vol, lab, SEGMENTS[:2])
        assert not (tmp_path / "seg.dcm").exists()

    def test_shape_mismatch(self, tmp_path: Path) -> None:
        vol, _ = make_series(tmp_path / "src", nz=3)
        with pytest.raises(ExportError, match="does not match the volume"):
            write_seg(tmp_path / "seg.dcm", vol, np.zeros((3, 5, 5), np.uint8), SEGMENTS)

    def test_automatic_needs_algorithm(self, tmp_path: Path) -> None:
        vol, _ = make_series(tmp_path / "src", nz=3)
        with pytest.raises(ExportError, match="algorithm_name"):
            write_seg(tmp_path / "seg.dcm", vol, np.zeros(vol.shape, np.uint8), [SegmentInfo(1, "Lung")])

    def test_missing_source_files(self, tmp_path: Path) -> None:
        vol, paths = make_series(tmp_path / "src", nz=3)
        paths[1].unlink()
        with pytest.raises(ExportError, match="cannot read source header"):
            write_seg(tmp_path / "seg.dcm", vol, np.zeros(vol.shape, np.uint8), SEGMENTS)
        bare = Volume(vol.voxels, vol.spacing)
        with pytest.raises(ExportError, match="needs the source DICOM series"):
            write_seg(tmp_path / "seg.dcm", bare, np.zeros(vol.shape, np.uint8), SEGMENTS)


class TestSegmentInfos:
    def test_from_edits(self, tmp_path: Path) -> None:
        from viewer.export.seg import segment_infos

        table = [{"value": 0, "name": "background", "color": (0, 0, 0)},
                 {"value": 1, "name": "Right lung", "color": (1, 2, 3), "source": "ai"},
                 {"value": 2, "name": "Left lung", "color": (4, 5, 6), "source": "ai"},
                 {"value": 4, "name": "Nodule (reader)", "color": (7, 8, 9), "source": "reader"}]
        stats = [{"value": 1, "added_voxels": 0, "removed_voxels": 0},
                 {"value": 2, "added_voxels": 12, "removed_voxels": 0}]
        infos = segment_infos(table, label_stats=stats, model={"name": "m", "version": "3", "sha256": "ab"},
                              engine="onnx CPU")
        assert [(i.value, i.algorithm_type) for i in infos] == [(1, "AUTOMATIC"), (2, "SEMIAUTOMATIC"), (4, "MANUAL")]
        assert infos[0].algorithm_parameters == {"sha256": "ab"} and infos[0].algorithm_engine == "onnx CPU"
        assert infos[2].algorithm_name == "" and infos[1].color == (4, 5, 6)
        vol, _ = make_series(tmp_path / "src", nz=3)
        lab = np.zeros(vol.shape, np.uint8)
        lab[1, 2:6, 2:6], lab[1, 10:14, 10:14], lab[2, 3:5, 3:5] = 1, 2, 4
        ds = pydicom.dcmread(write_seg(tmp_path / "seg.dcm", vol, lab, infos))
        assert [s.SegmentAlgorithmType for s in ds.SegmentSequence] == ["AUTOMATIC", "SEMIAUTOMATIC", "MANUAL"]

    def test_with_the_editable_segmentation(self) -> None:
        masks = pytest.importorskip("viewer.masks")
        from viewer.export.seg import segment_infos

        ai = np.zeros((3, 8, 8), np.uint8)
        ai[1, 2:5, 2:5] = 1
        try:
            ed = masks.EditableSegmentation(ai, (1.0, 1.0, 1.0), [{"value": 1, "name": "Lesion", "color": (9, 9, 9)}])
        except TypeError:
            pytest.skip("EditableSegmentation has another constructor")
        infos = segment_infos(ed.labels.values(), label_stats=ed.label_stats(), model={"name": "m"})
        assert [(i.value, i.name, i.algorithm_type) for i in infos] == [(1, "Lesion", "AUTOMATIC")]
        mask = np.zeros(ai.shape, bool)
        mask[2, 2:4, 2:4] = True
        ed.paint_mask(mask, label=1)  # the reader extends the AI lesion
        infos = segment_infos(ed.labels.values(), label_stats=ed.label_stats(), model={"name": "m"})
        assert [i.algorithm_type for i in infos] == ["SEMIAUTOMATIC"]


class TestDefaultCodes:
    @pytest.mark.parametrize(("name", "type_value", "modifier"), [
        ("Right lung", "39607008", "24028007"), ("left LUNG", "39607008", "7771000"), ("Lungs", "39607008", None),
        ("Tumour", "4147007", None), ("Mass", "4147007", None), ("Lung nodule", "27925004", None),
        ("Nodule", "27925004", None), ("Lesion", "52988006", None), ("Something", "85756007", None),
    ])
    def test_table(self, name: str, type_value: str, modifier: str | None) -> None:
        _, typ, mod = default_codes(name)
        assert typ[0] == type_value and (mod[0] if mod else None) == modifier
