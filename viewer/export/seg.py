"""Write a label map as a DICOM Segmentation (SEG) that references its source series (highdicom).

No Qt. One segment per label, BINARY, empty frames omitted. Each segment carries coded
SegmentedPropertyCategory / Type (SNOMED CT, CID 7150 / 7151; laterality as a type modifier),
a display colour, and its algorithm type: ``AUTOMATIC`` for model output (with
SegmentationAlgorithmIdentificationSequence: model name, version, AI family, engine and model
hash as parameters), ``SEMIAUTOMATIC`` for model output a reader edited, ``MANUAL`` for drawn
segments. The SEG shares the series' Frame of Reference and references every source instance
per frame (DerivationImageSequence), so viewers and PACS put it on the right slices; it reads
back with :func:`viewer.dicom.seg_reader.read_seg` (and ``highdicom.seg.segread``).

Anonymised export (``anonymize=True``) builds the SEG from de-identified copies of the source
headers (:class:`viewer.anonymize.Anonymizer`), so the SEG's patient and study modules carry
pseudonyms and its references use the session's consistently mapped UIDs.
"""

from __future__ import annotations

import io
import logging
import warnings as warnings_module
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pydicom
from pydicom.dataset import Dataset

from viewer.anonymize import Anonymizer, session_anonymizer
from viewer.dicom.seg_reader import Code, SegmentInfo
from viewer.errors import ExportError
from viewer.export.atomic import atomic_path
from viewer.jobs import CancelCheck, Progress, check_cancel, report
from viewer.volume import Volume

__all__ = ["SegmentInfo", "write_seg", "default_codes", "build_seg", "segment_infos", "SOFTWARE_VERSION"]

log = logging.getLogger(__name__)

SOFTWARE_VERSION = "0.1.0"
ANATOMICAL_STRUCTURE: Code = ("123037004", "SCT", "Anatomical Structure")
ABNORMAL_STRUCTURE: Code = ("49755003", "SCT", "Morphologically Abnormal Structure")
TISSUE: Code = ("85756007", "SCT", "Tissue")
# first match wins: findings before anatomy ("Lung nodule" is a nodule)
_TYPES: list[tuple[tuple[str, ...], Code, Code]] = [
    (("nodule",), ABNORMAL_STRUCTURE, ("27925004", "SCT", "Nodule")),
    (("mass", "tumour", "tumor"), ABNORMAL_STRUCTURE, ("4147007", "SCT", "Mass")),
    (("neoplasm", "cancer", "carcinoma"), ABNORMAL_STRUCTURE, ("108369006", "SCT", "Neoplasm")),
    (("lesion",), ABNORMAL_STRUCTURE, ("52988006", "SCT", "Lesion")),
    (("lung",), ANATOMICAL_STRUCTURE, ("39607008", "SCT", "Lung")),
    (("liver",), ANATOMICAL_STRUCTURE, ("10200004", "SCT", "Liver")),
    (("heart",), ANATOMICAL_STRUCTURE, ("80891009", "SCT", "Heart")),
    (("airway", "trachea"), ANATOMICAL_STRUCTURE, ("44567001", "SCT", "Trachea")),
]
RIGHT: Code = ("24028007", "SCT", "Right")
LEFT: Code = ("7771000", "SCT", "Left")
_ALGORITHM_TYPES = ("AUTOMATIC", "SEMIAUTOMATIC", "MANUAL")


def default_codes(name: str) -> tuple[Code, Code, Code | None]:
    """``(category, type, type modifier)`` SNOMED CT codes for a segment called ``name``.

    ``"Right lung"`` → Anatomical Structure / Lung / Right; ``"Lesion"`` → Morphologically
    Abnormal Structure / Lesion; ``"Mass"``, ``"Nodule"``, ``"Neoplasm"`` likewise; anything
    unknown → Tissue / Tissue (give explicit codes in :class:`SegmentInfo` for those).
    """
    low = name.lower()
    for words, category, typ in _TYPES:
        if any(w in low for w in words):
            modifier = RIGHT if "right" in low else LEFT if "left" in low else None
            return category, typ, modifier
    return TISSUE, TISSUE, None


def _get(obj: Any, key: str, default: Any = None) -> Any:
    return obj.get(key, default) if isinstance(obj, Mapping) else getattr(obj, key, default)


def segment_infos(labels: Iterable[Any], *, label_stats: Iterable[Any] | None = None,
                  model: Mapping[str, Any] | None = None, engine: str = "") -> list[SegmentInfo]:
    """:class:`SegmentInfo` per label, with the algorithm type its history implies.

    Parameters
    ----------
    labels : the label table: objects or dicts with ``value``, ``name``, ``color`` and optionally
        ``source`` (``"ai"`` for the model's labels, ``"reader"`` for labels a reader created),
        e.g. ``viewer.masks.LabelInfo`` or a model package's label specs. Background (0) is skipped.
    label_stats : per label ``value`` with ``added_voxels`` / ``removed_voxels`` (e.g.
        ``EditableSegmentation.label_stats()``); None means no edits.
    model : ``name``, ``version``, ``sha256`` of the model that proposed the AI labels.
    engine : how it ran, e.g. ``"onnx CPUExecutionProvider"``.

    Returns
    -------
    list of SegmentInfo: ``MANUAL`` for reader-created labels, ``AUTOMATIC`` for AI labels the
    reader did not change, ``SEMIAUTOMATIC`` for AI labels with voxels added or removed.
    """
    edits = {int(_get(s, "value")): int(_get(s, "added_voxels", 0) or 0) + int(_get(s, "removed_voxels", 0) or 0)
             for s in (label_stats or [])}
    model = dict(model or {})
    params = {"sha256": str(model["sha256"])} if model.get("sha256") else {}
    out = []
    for lab in labels:
        value = int(_get(lab, "value"))
        if value == 0:
            continue
        reader = str(_get(lab, "source", "ai")) == "reader"
        kind = "MANUAL" if reader else ("SEMIAUTOMATIC" if edits.get(value, 0) else "AUTOMATIC")
        out.append(SegmentInfo(
            value=value, name=str(_get(lab, "name", f"label {value}")),
            color=tuple(int(c) for c in (_get(lab, "color") or (255, 0, 0))[:3]),  # type: ignore[arg-type]
            algorithm_type=kind,
            algorithm_name="" if reader else str(model.get("name", "")),
            algorithm_version="" if reader else str(model.get("version", "")),
            algorithm_engine="" if reader else engine,
            algorithm_parameters={} if reader else dict(params)))
    return out


def _concept(code: Code):  # -> highdicom.sr.CodedConcept
    from highdicom.sr import CodedConcept

    return CodedConcept(value=code[0], scheme_designator=code[1], meaning=code[2])


def _description(number: int, seg: SegmentInfo):  # -> highdicom.seg.SegmentDescription
    import highdicom as hd
    from pydicom.sr.codedict import codes

    if seg.algorithm_type not in _ALGORITHM_TYPES:
        raise ExportError(f"segment {seg.name!r}: algorithm_type must be one of {_ALGORITHM_TYPES}, "
                          f"got {seg.algorithm_type!r}")
    category, typ, modifier = default_codes(seg.name)
    category, typ = seg.category or category, seg.type or typ
    modifier = seg.type_modifier or (modifier if seg.type is None else None)
    algorithm = None
    if seg.algorithm_type != "MANUAL":
        if not seg.algorithm_name:
            raise ExportError(f"segment {seg.name!r} is {seg.algorithm_type}: give its algorithm_name "
                              f"(the model) or mark it MANUAL")
        params = {"engine": seg.algorithm_engine} if seg.algorithm_engine else {}
        params.update({str(k): str(v) for k, v in seg.algorithm_parameters.items()})
        algorithm = hd.AlgorithmIdentificationSequence(
            name=seg.algorithm_name[:64], family=codes.DCM.ArtificialIntelligence,
            version=(seg.algorithm_version or "unknown")[:64], source="clinical-viewer",
            parameters=params or None)
    desc = hd.seg.SegmentDescription(
        segment_number=number, segment_label=seg.name[:64], segmented_property_category=_concept(category),
        segmented_property_type=_concept(typ), algorithm_type=seg.algorithm_type,
        algorithm_identification=algorithm,
        display_color=hd.color.CIELabColor.from_rgb(*(int(c) for c in seg.color)),
    )
    if modifier is not None:
        desc.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [_concept(modifier)]
    return desc


def _dcmread_header(ref: str) -> Dataset:
    """Header of a source file; ``archive.zip!member`` (the scanner's zip references) is supported."""
    path = Path(ref)
    if not path.is_file() and "!" in ref:
        archive, member = ref.split("!", 1)
        if Path(archive).is_file() and zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                return pydicom.dcmread(io.BytesIO(zf.read(member)), stop_before_pixels=True)
    return pydicom.dcmread(path, stop_before_pixels=True)


def _read_sources(volume: Volume, progress: Progress | None = None, cancel: CancelCheck | None = None,
                  total: int = 0) -> list[Dataset]:
    files = [f for f in dict.fromkeys(volume.meta.source_files) if f]  # "" = slice inserted for a gap
    if not files:
        raise ExportError("DICOM SEG export needs the source DICOM series (this volume has no source files); "
                          "export NIfTI instead, or open the series from DICOM")
    out = []
    for i, f in enumerate(files):
        if i % 16 == 0:
            check_cancel(cancel)
            report(progress, i, total or len(files), "reading source headers")
        try:
            out.append(_dcmread_header(f))
        except (OSError, KeyError, zipfile.BadZipFile, pydicom.errors.InvalidDicomError) as exc:
            raise ExportError(f"DICOM SEG export: cannot read source header {f} ({exc}); "
                              f"is the study folder still there?") from exc
    return out


def _dropped(labels: np.ndarray, gaps: list[int], warnings: list[str] | None) -> None:
    """Note labelled voxels on slices that have no source image (gaps the loader filled)."""
    n = int(np.count_nonzero(labels[gaps])) if gaps else 0
    if n:
        msg = (f"{n} labelled voxels on {len(gaps)} slice(s) without a source image (gaps in the series) "
               f"are not in the DICOM SEG")
        log.warning(msg)
        if warnings is not None:
            warnings.append(msg)


def _arrange(volume: Volume, labels: np.ndarray, sources: list[Dataset],
             warnings: list[str] | None = None) -> tuple[list[Dataset], np.ndarray]:
    """Source datasets and the label frames in the order highdicom pairs them (frame i ↔ source i).

    Slices without a source image (``""`` / ``None`` in the volume metadata: blank slices the
    loader inserted at gaps) cannot be referenced and are left out.
    """
    nz = volume.shape[0]
    meta = volume.meta
    if len(sources) == 1 and int(sources[0].get("NumberOfFrames", 1)) > 1:
        nframes = int(sources[0].NumberOfFrames)
        fns = list(meta.frame_numbers)
        if len(fns) != nz or any(f is not None and not 1 <= int(f) <= nframes for f in fns) or \
                all(f is None for f in fns):
            raise ExportError(f"multi-frame source: volume.meta.frame_numbers must give a frame 1..{nframes} "
                              f"for each of the {nz} slices, got {fns[:5]}...")
        keep = [z for z in range(nz) if fns[z] is not None]
        _dropped(labels, [z for z in range(nz) if fns[z] is None], warnings)
        frames = np.zeros((nframes, *labels.shape[1:]), labels.dtype)
        frames[np.asarray([fns[z] for z in keep], int) - 1] = labels[keep]
        return sources, frames
    uids = [str(u) for u in meta.sop_instance_uids]
    if len(uids) == nz and any(uids):
        keep = [z for z in range(nz) if uids[z]]
        by_uid = {str(ds.SOPInstanceUID): ds for ds in sources}
        missing = [uids[z] for z in keep if uids[z] not in by_uid]
        if missing:
            raise ExportError(f"DICOM SEG export: source SOPInstanceUID {missing[0]} of the volume is not among "
                              f"the source headers given")
        _dropped(labels, [z for z in range(nz) if not uids[z]], warnings)
        return [by_uid[uids[z]] for z in keep], labels[keep]
    if len(sources) != nz:
        raise ExportError(f"DICOM SEG export: {len(sources)} source images for {nz} slices; "
                          f"the SEG must be written on the series it was computed on")
    return sources, labels


def build_seg(volume: Volume, labels: np.ndarray, segments: Sequence[SegmentInfo], *,
              source_datasets: Sequence[Dataset] | None = None, anonymize: bool = False,
              anonymizer: Anonymizer | None = None, series_description: str = "AI segmentation",
              series_number: int = 900, manufacturer: str = "clinical-viewer",
              manufacturer_model_name: str = "clinical-viewer", software_versions: str = SOFTWARE_VERSION,
              device_serial_number: str = "0", content_creator_name: str | None = None,
              content_description: str | None = None, warnings: list[str] | None = None,
              progress: Progress | None = None, cancel: CancelCheck | None = None) -> Dataset:
    """The SEG dataset (not saved); arguments as in :func:`write_seg`."""
    import highdicom as hd

    labels = np.asarray(labels)
    if labels.shape != volume.shape:
        raise ExportError(f"label map shape {labels.shape} does not match the volume {volume.shape} ([z, y, x])")
    if labels.dtype.kind not in "ui" or labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ExportError(f"label map must hold integer labels 0..255, got dtype {labels.dtype}")
    segs = sorted(segments, key=lambda s: s.value)
    if not segs:
        raise ExportError("DICOM SEG export needs at least one segment description")
    values = [int(s.value) for s in segs]
    if len(set(values)) != len(values) or min(values) < 1 or max(values) > 255:
        raise ExportError(f"segment values must be distinct and 1..255, got {values}")
    labels = labels.astype(np.uint8, copy=False)
    present = np.flatnonzero(np.bincount(labels.ravel(), minlength=256))
    unknown = sorted(set(int(v) for v in present) - {0, *values})
    if unknown:
        raise ExportError(f"label values {unknown} have no segment description; add SegmentInfo for them")
    if values == list(range(1, len(values) + 1)):
        numbered = labels  # already segment numbers 1..N (the usual case): no copy
    else:
        lut = np.zeros(256, np.uint8)  # label value -> segment number 1..N
        lut[values] = np.arange(1, len(values) + 1)
        numbered = cv2.LUT(np.ascontiguousarray(labels).reshape(-1, labels.shape[-1]), lut).reshape(labels.shape)
    steps = len(volume.meta.source_files) + 2
    sources = (list(source_datasets) if source_datasets is not None
               else _read_sources(volume, progress, cancel, steps))
    check_cancel(cancel)
    report(progress, steps - 2, steps, "building the DICOM SEG")
    sources, frames = _arrange(volume, numbered, sources, warnings)
    anon = anonymizer or (session_anonymizer() if anonymize else None)
    if anon is not None:
        sources = [anon.dataset(ds) for ds in sources]
        content_creator_name = None
    descriptions = [_description(i + 1, s) for i, s in enumerate(segs)]
    omit = bool(frames.any())  # an all-empty map still needs frames: keep them (all zero)
    try:
        with warnings_module.catch_warnings():
            # the source's own PatientName form (e.g. a single component) is copied as it is
            warnings_module.filterwarnings("ignore", message=".*unlikely to represent the intended person name")
            seg = hd.seg.Segmentation(
                source_images=sources, pixel_array=frames, segmentation_type="BINARY",
                segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=series_number,
                sop_instance_uid=hd.UID(), instance_number=1, manufacturer=manufacturer,
                manufacturer_model_name=manufacturer_model_name, software_versions=software_versions,
                device_serial_number=device_serial_number, omit_empty_frames=omit,
                content_description=(content_description or "AI segmentation; review before clinical use")[:64],
                content_label="SEGMENTATION", content_creator_name=content_creator_name,
                series_description=series_description[:64],
            )
    except (ValueError, TypeError, AttributeError) as exc:
        raise ExportError(f"DICOM SEG could not be built from the source headers: {exc}") from exc
    if anon is not None:
        anon.mark(seg, name=str(seg.PatientName), pid=str(seg.PatientID))
    return seg


def write_seg(path: str | Path, volume: Volume, labels: np.ndarray, segments: Sequence[SegmentInfo], *,
              source_datasets: Sequence[Dataset] | None = None, anonymize: bool = False,
              uid_map: object | None = None, anonymizer: Anonymizer | None = None,
              series_description: str = "AI segmentation", series_number: int = 900,
              manufacturer: str = "clinical-viewer", manufacturer_model_name: str = "clinical-viewer",
              software_versions: str = SOFTWARE_VERSION, device_serial_number: str = "0",
              content_creator_name: str | None = None, content_description: str | None = None,
              warnings: list[str] | None = None, progress: Progress | None = None,
              cancel: CancelCheck | None = None) -> Path:
    """Write ``labels`` as a DICOM SEG on ``volume``'s source series; atomic.

    Parameters
    ----------
    path : output file (``seg.dcm``).
    volume : the series the labels were computed on (geometry; ``meta.source_files`` give the
        source headers unless ``source_datasets`` is given; ``meta.sop_instance_uids`` /
        ``frame_numbers`` pair slices with source images or frames).
    labels : uint8 [z, y, x] label map on the volume grid; 0 is background.
    segments : one :class:`SegmentInfo` per label value that may occur (absent ones are
        described with no frames).
    source_datasets : source headers (single-frame series in any order, or one multi-frame).
    anonymize : de-identify (PS3.15 basic profile). Exports share
        :func:`viewer.anonymize.session_anonymizer` unless an ``anonymizer`` (or a ``UidMap`` as
        ``uid_map``) is given, so pseudonyms and UIDs agree across a session's exports.
    content_creator_name : the reader, for edited segments (dropped when anonymising).
    warnings : a list that receives non-fatal problems (e.g. labels on slices that have no
        source image because the series has gaps; those slices cannot be referenced).
    progress, cancel : job protocol (:mod:`viewer.jobs`): progress while reading the source
        headers, building and writing; ``Cancelled`` between steps (nothing is written then).

    Returns
    -------
    Path of the written SEG.

    Raises
    ------
    ExportError
        Labels and segments disagree, the source headers are missing or do not fit, or the
        file cannot be written (nothing is left half-written).
    Cancelled
        ``cancel()`` returned True.
    """
    if anonymizer is None and uid_map is not None:
        anonymizer = Anonymizer(uid_map=uid_map)  # type: ignore[arg-type]
    seg = build_seg(volume, labels, segments, source_datasets=source_datasets, anonymize=anonymize,
                    anonymizer=anonymizer if anonymize else None,
                    series_description=series_description, series_number=series_number,
                    manufacturer=manufacturer, manufacturer_model_name=manufacturer_model_name,
                    software_versions=software_versions, device_serial_number=device_serial_number,
                    content_creator_name=content_creator_name, content_description=content_description,
                    warnings=warnings, progress=progress, cancel=cancel)
    path = Path(path)
    steps = len(volume.meta.source_files) + 2
    check_cancel(cancel)
    report(progress, steps - 1, steps, "writing the DICOM SEG")
    with atomic_path(path) as tmp:
        seg.save_as(tmp, enforce_file_format=True)
    report(progress, steps, steps, "DICOM SEG written")
    log.info("wrote DICOM SEG with %d segments, %d frames", len(segments), int(seg.NumberOfFrames))
    return path
