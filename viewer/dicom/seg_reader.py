"""Read a DICOM Segmentation (SEG) back as a label map on the grid of its source series.

No Qt. A SEG stores one binary (or fractional, or label-map) frame per segment and slice; each
frame says which source image it was derived from (DerivationImageSequence → SourceImageSequence
→ ReferencedSOPInstanceUID and, for multi-frame sources, ReferencedFrameNumber) and where it lies
(PlanePositionSequence → ImagePositionPatient, PS3.3 C.8.20). Frames are put on the slices of a
loaded :class:`~viewer.volume.Volume` by SOP Instance UID first, and by position when the UIDs
do not match (e.g. an anonymised SEG shown on the original series).

Label values in the result are the SEG's segment numbers (1..N). Where binary segments overlap,
the higher segment number wins and a warning says how many voxels overlapped.

:class:`SegmentInfo` describes one segment, both for writing (:mod:`viewer.export.seg`) and for
reading.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from viewer.errors import DicomError
from viewer.volume import Volume

__all__ = [
    "SegmentInfo",
    "SegOverlay",
    "Code",
    "SEG_SOP_CLASSES",
    "read_seg",
    "read_seg_labels",
    "referenced_series_uids",
    "segs_for_series",
    "is_seg",
]

log = logging.getLogger(__name__)

Code = tuple[str, str, str]  # (CodeValue, CodingSchemeDesignator, CodeMeaning)

SEG_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation Storage",
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation Storage",
}


@dataclass(frozen=True)
class SegmentInfo:
    """One segment of a label map: its value, name, colour, codes and how it was made.

    Parameters
    ----------
    value : label value in the label map (1..255); the segment number in a SEG.
    name : SegmentLabel, e.g. ``"Right lung"``.
    color : display colour, RGB 0..255 (stored as CIE Lab in the SEG).
    category, type, type_modifier : coded concepts ``(value, scheme, meaning)``, e.g.
        ``("123037004", "SCT", "Anatomical Structure")``. ``None``: chosen from ``name`` by
        :func:`viewer.export.seg.default_codes`.
    algorithm_type : ``"AUTOMATIC"`` (model output), ``"SEMIAUTOMATIC"`` (model output edited by
        a reader) or ``"MANUAL"`` (drawn by a reader).
    algorithm_name, algorithm_version : the model (AlgorithmName / AlgorithmVersion).
    algorithm_engine : how it ran, e.g. ``"onnxruntime 1.20 CPUExecutionProvider fp32"``.
    algorithm_parameters : further name → value pairs (e.g. model SHA-256) for AlgorithmParameters.
    """

    value: int
    name: str
    color: tuple[int, int, int] = (255, 0, 0)
    category: Code | None = None
    type: Code | None = None
    type_modifier: Code | None = None
    algorithm_type: str = "AUTOMATIC"
    algorithm_name: str = ""
    algorithm_version: str = ""
    algorithm_engine: str = ""
    algorithm_parameters: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class SegOverlay:
    """A SEG mapped onto a series: ``labels`` uint8 [z, y, x] with values = segment numbers."""

    labels: np.ndarray
    segments: list[SegmentInfo]
    warnings: list[str]
    seg_series_uid: str
    referenced_series_uids: list[str]
    matched_by: str  # "sop-instance", "position" or "mixed"


def is_seg(ds: Dataset) -> bool:
    """True if ``ds`` is a Segmentation (or Label Map Segmentation) object."""
    return str(ds.get("SOPClassUID", "")) in SEG_SOP_CLASSES


def referenced_series_uids(path: str | Path) -> list[str]:
    """SeriesInstanceUIDs a SEG file references (headers only), for matching it to a series."""
    ds = _read(Path(path), stop_before_pixels=True)
    return [str(it.SeriesInstanceUID) for it in ds.get("ReferencedSeriesSequence", []) if "SeriesInstanceUID" in it]


def _dcmread(path: Path, stop_before_pixels: bool) -> Dataset:
    """``dcmread`` of a file, or of ``archive.zip!member`` as the scanner names zip members."""
    text = str(path)
    if not path.is_file() and "!" in text:
        archive, member = text.split("!", 1)
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                return pydicom.dcmread(io.BytesIO(zf.read(member)), stop_before_pixels=stop_before_pixels)
    return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)


def segs_for_series(objects: Iterable[object], series_uid: str) -> list[str]:
    """Paths of the SEGs among ``objects`` that reference the series ``series_uid``.

    ``objects`` are the scanner's non-image objects (``ScanResult.non_image``: anything with
    ``path`` and ``sop_class_uid``) or plain paths. Unreadable files are skipped (logged).
    """
    out = []
    for obj in objects:
        path = str(getattr(obj, "path", obj))
        sop_class = getattr(obj, "sop_class_uid", None)
        if sop_class is not None and str(sop_class) not in SEG_SOP_CLASSES:
            continue
        try:
            if series_uid in referenced_series_uids(path):
                out.append(path)
        except (DicomError, OSError) as exc:
            log.info("not a usable SEG: %s (%s)", Path(path).name, exc)
    return out


def _read(path: Path, *, stop_before_pixels: bool = False) -> Dataset:
    try:
        ds = _dcmread(path, stop_before_pixels)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types for bad files
        raise DicomError(f"{path}: not a readable DICOM file ({type(exc).__name__}: {exc})") from exc
    if not is_seg(ds):
        raise DicomError(
            f"{path}: (0008,0016) SOPClassUID is {ds.get('SOPClassUID', 'missing')}, not a DICOM "
            f"Segmentation; choose a SEG file")
    return ds


def _code(seq: object) -> Code | None:
    if not seq:
        return None
    it = seq[0]  # type: ignore[index]
    return (str(it.get("CodeValue", "")), str(it.get("CodingSchemeDesignator", "")), str(it.get("CodeMeaning", "")))


def _rgb_from_lab(values: object) -> tuple[int, int, int]:
    try:
        from highdicom.color import CIELabColor

        return tuple(int(v) for v in CIELabColor.from_dicom_value(list(values)).to_rgb())  # type: ignore[arg-type,return-value]
    except Exception:  # noqa: BLE001 - missing or malformed colour: a neutral default
        return (255, 0, 0)


def _segments(ds: Dataset) -> list[SegmentInfo]:
    out = []
    for item in ds.get("SegmentSequence", []):
        alg = item.get("SegmentationAlgorithmIdentificationSequence") or []
        params: dict[str, str] = {}
        name = version = engine = ""
        if alg:
            a = alg[0]
            name, version = str(a.get("AlgorithmName", "")), str(a.get("AlgorithmVersion", ""))
            for part in str(a.get("AlgorithmParameters", "")).split(","):
                if "=" in part:
                    k, v = part.split("=", 1)
                    params[k.strip()] = v.strip()
            engine = params.pop("engine", "")
        type_seq = item.get("SegmentedPropertyTypeCodeSequence") or []
        modifier = _code(type_seq[0].get("SegmentedPropertyTypeModifierCodeSequence")) if type_seq else None
        out.append(SegmentInfo(
            value=int(item.SegmentNumber),
            name=str(item.get("SegmentLabel", f"Segment {item.SegmentNumber}")),
            color=_rgb_from_lab(item.RecommendedDisplayCIELabValue) if "RecommendedDisplayCIELabValue" in item
            else (255, 0, 0),
            category=_code(item.get("SegmentedPropertyCategoryCodeSequence")),
            type=_code(type_seq),
            type_modifier=modifier,
            algorithm_type=str(item.get("SegmentAlgorithmType", "")),
            algorithm_name=name or str(item.get("SegmentAlgorithmName", "")),
            algorithm_version=version,
            algorithm_engine=engine,
            algorithm_parameters=params,
        ))
    return out


def _frame_groups(ds: Dataset, i: int) -> tuple[Dataset, Dataset]:
    per = ds.PerFrameFunctionalGroupsSequence[i] if "PerFrameFunctionalGroupsSequence" in ds else Dataset()
    shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else Dataset()
    return per, shared


def _get(per: Dataset, shared: Dataset, seq: str, attr: str) -> object:
    for grp in (per, shared):
        if seq in grp and grp[seq].value and attr in grp[seq].value[0]:
            return grp[seq].value[0][attr].value
    return None


def _check_geometry(ds: Dataset, volume: Volume, path: Path) -> None:
    nz, ny, nx = volume.shape
    if (int(ds.Rows), int(ds.Columns)) != (ny, nx):
        raise DicomError(
            f"{path}: SEG frames are {ds.Rows}x{ds.Columns} (Rows x Columns) but the series is {ny}x{nx}; "
            f"this SEG was not made on this series - open the series it references")
    iop = _get(*_frame_groups(ds, 0), "PlaneOrientationSequence", "ImageOrientationPatient")
    if iop is not None:
        row, col = np.asarray(iop[:3], float), np.asarray(iop[3:6], float)  # type: ignore[index]
        if abs(float(row @ volume.direction[:, 0])) < 0.999 or abs(float(col @ volume.direction[:, 1])) < 0.999:
            raise DicomError(
                f"{path}: (0020,0037) ImageOrientationPatient of the SEG {list(iop)} differs from the "  # type: ignore[call-overload]
                f"series orientation; this SEG was not made on this series")


def read_seg(seg_path: str | Path, volume: Volume) -> SegOverlay:
    """Read ``seg_path`` as a label map on the grid of ``volume`` (its source series).

    Parameters
    ----------
    seg_path : a DICOM SEG file (BINARY, FRACTIONAL or LABELMAP).
    volume : the loaded series the SEG was derived from; ``volume.meta.sop_instance_uids`` and
        ``frame_numbers`` (one per z slice) are used to place frames, else positions.

    Returns
    -------
    SegOverlay
        ``labels`` uint8 [z, y, x] (0 = background, else segment number), segment descriptions,
        and warnings (overlaps, frames not on any slice, another frame of reference).

    Raises
    ------
    DicomError
        Not a SEG, unreadable, or its frames do not fit the series grid.
    """
    path = Path(seg_path)
    ds = _read(path)
    _check_geometry(ds, volume, path)
    warnings: list[str] = []
    segments = _segments(ds)
    if len(segments) > 255:
        raise DicomError(f"{path}: {len(segments)} segments do not fit a uint8 label map (max 255)")
    seg_type = str(ds.get("SegmentationType", "BINARY"))
    nframes = int(ds.get("NumberOfFrames", 1))
    frames = np.asarray(ds.pixel_array)
    frames = frames.reshape(nframes, int(ds.Rows), int(ds.Columns))
    if seg_type == "FRACTIONAL":
        frames = frames > (float(ds.get("MaximumFractionalValue", 255)) / 2.0)

    meta = volume.meta
    by_uid: dict[tuple[str, int | None], int] = {}
    for z, uid in enumerate(meta.sop_instance_uids):
        fn = meta.frame_numbers[z] if z < len(meta.frame_numbers) else None
        by_uid[(str(uid), fn)] = z
    nz = volume.shape[0]
    labels = np.zeros(volume.shape, np.uint8)
    overlap = 0
    off_grid = 0
    how: set[str] = set()
    for i in range(nframes):
        per, shared = _frame_groups(ds, i)
        z = None
        src = _get(per, shared, "DerivationImageSequence", "SourceImageSequence")
        if src:
            ref = src[0]  # type: ignore[index]
            fn = ref.get("ReferencedFrameNumber")
            fn = int(fn[0] if isinstance(fn, (list, pydicom.multival.MultiValue)) else fn) if fn is not None else None
            z = by_uid.get((str(ref.get("ReferencedSOPInstanceUID", "")), fn))
            if z is not None:
                how.add("sop-instance")
        if z is None:
            ipp = _get(per, shared, "PlanePositionSequence", "ImagePositionPatient")
            if ipp is not None:
                zf, yf, xf = volume.lps_to_index(np.asarray(ipp, float))
                if abs(zf - round(zf)) < 0.1 and abs(yf) < 0.1 and abs(xf) < 0.1 and 0 <= round(zf) < nz:
                    z = int(round(zf))
                    how.add("position")
        if z is None:
            off_grid += 1
            continue
        mask = frames[i] > 0
        if seg_type == "LABELMAP":
            labels[z] = np.where(mask, frames[i], labels[z]).astype(np.uint8)
            continue
        number = _get(per, shared, "SegmentIdentificationSequence", "ReferencedSegmentNumber")
        number = int(number) if number is not None else 1
        overlap += int(np.count_nonzero(mask & (labels[z] > 0) & (labels[z] != number)))
        labels[z][mask] = np.maximum(labels[z][mask], number)
    if off_grid:
        warnings.append(f"{off_grid} of {nframes} SEG frames lie on no slice of this series and were skipped")
    if overlap:
        warnings.append(f"{overlap} voxels belong to more than one segment; the higher segment number is shown")
    for_uid = str(ds.get("FrameOfReferenceUID", ""))
    if meta.frame_of_reference_uid and for_uid and for_uid != meta.frame_of_reference_uid:
        warnings.append("the SEG has another FrameOfReferenceUID than the series (anonymised copy?); "
                        "frames were placed by position")
    for w in warnings:
        log.warning("%s: %s", path.name, w)
    refs = [str(it.SeriesInstanceUID) for it in ds.get("ReferencedSeriesSequence", []) if "SeriesInstanceUID" in it]
    return SegOverlay(
        labels=labels, segments=segments, warnings=warnings, seg_series_uid=str(ds.get("SeriesInstanceUID", "")),
        referenced_series_uids=refs, matched_by="mixed" if len(how) > 1 else (how.pop() if how else "none"),
    )


def read_seg_labels(seg_path: str | Path, volume: Volume) -> tuple[np.ndarray, list[SegmentInfo]]:
    """``(labels uint8 [z, y, x], segments)`` of a SEG on its source series; see :func:`read_seg`."""
    r = read_seg(seg_path, volume)
    return r.labels, r.segments
