"""Read one file's header (no pixel data) into records, or say why it cannot be used. No Qt.

:func:`read_header` returns ``(FileInfo, [FrameRecord, ...])`` for an image, a
:class:`NonImageObject` for SR/SEG/RTSTRUCT/PR/KO …, or a :class:`SkippedFile` with a reason.
Per-frame values of enhanced multi-frame objects come from the functional groups
(PS3.3 C.7.6.16): PlanePosition, PlaneOrientation, PixelMeasures, PixelValueTransformation,
FrameVOILUT, FrameContent, MR echo.
"""

from __future__ import annotations

import logging
import os
import struct
import warnings
from functools import lru_cache
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID

from viewer.dicom.fastheader import parse_header
from viewer.dicom.frames import _int, _str, frame_records
from viewer.dicom.records import FileInfo, FileRef, FrameRecord, NonImageObject, SkippedFile

__all__ = ["read_header", "decoder_available", "frame_records", "NATIVE_SYNTAXES"]

log = logging.getLogger(__name__)

NATIVE_SYNTAXES = {
    "1.2.840.10008.1.2": "<",  # implicit VR little endian
    "1.2.840.10008.1.2.1": "<",  # explicit VR little endian
    "1.2.840.10008.1.2.2": ">",  # explicit VR big endian (retired)
}
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
DEFLATED = (
    "1.2.840.10008.1.2.1.99"  # deflated explicit VR little endian: native pixels once inflated
)
_FAST_BYTES = 64 * 1024  # headers are read from the first 64 KiB when the fast reader handles them
_PIXEL_TAG_LE = b"\xe0\x7f\x10\x00"
_PIXEL_TAG_BE = b"\x7f\xe0\x00\x10"


@lru_cache(maxsize=64)
def decoder_available(transfer_syntax: str) -> str:
    """Empty string when pixel data in ``transfer_syntax`` can be decoded here, else the reason."""
    if transfer_syntax in NATIVE_SYNTAXES or transfer_syntax == DEFLATED:
        return ""
    from pydicom.pixels import get_decoder

    uid = UID(transfer_syntax)
    try:
        dec = get_decoder(uid)
    except (NotImplementedError, ValueError):
        return (
            f"unsupported transfer syntax {uid} ({uid.name}): no pixel data decoder exists for it"
        )
    if not dec.is_available:
        missing = (
            "; ".join(f"{k}: {', '.join(v)}" for k, v in dec.missing_dependencies.items())
            if hasattr(dec, "missing_dependencies")
            else ""
        )
        return (
            f"transfer syntax {uid.name} needs a decoder plugin that is not installed "
            f"({missing or 'see pydicom docs'})"
        )
    return ""


def _pixel_location(f: Any, ts: str) -> tuple[int | None, int | None]:
    """Offset and length of the native PixelData value right after the header (file at the tag)."""
    pos = f.tell()
    head = f.read(12)
    if len(head) < 8 or head[:4] not in (_PIXEL_TAG_LE, _PIXEL_TAG_BE):
        return None, None
    big = NATIVE_SYNTAXES.get(ts) == ">"
    if ts == "1.2.840.10008.1.2":  # implicit: tag, 4-byte length
        return pos + 8, struct.unpack("<I", head[4:8])[0]
    if len(head) < 12:
        return None, None
    length = struct.unpack(">I" if big else "<I", head[8:12])[0]
    return pos + 12, length


def _header_values(ds: Dataset) -> dict[str, Any]:
    return {
        "patient_name": _str(ds, "PatientName"),
        "patient_id": _str(ds, "PatientID"),
        "patient_birth_date": _str(ds, "PatientBirthDate"),
        "patient_sex": _str(ds, "PatientSex"),
        "patient_position": _str(ds, "PatientPosition"),
        "study_date": _str(ds, "StudyDate"),
        "study_description": _str(ds, "StudyDescription"),
        "frame_of_reference_uid": _str(ds, "FrameOfReferenceUID"),
        "body_part": _str(ds, "BodyPartExamined"),
        "manufacturer": _str(ds, "Manufacturer"),
        "gantry_tilt": float(ds.get("GantryDetectorTilt", 0) or 0),
        "spacing_between_slices": float(ds.get("SpacingBetweenSlices", 0) or 0),
    }


def _open_dataset(ref: FileRef) -> tuple[Dataset, int | None, int | None, int] | SkippedFile:
    size = ref.size()
    with ref.open() as f:
        head = f.read(_FAST_BYTES)
        fast = parse_header(head)
        if fast is not None:
            return fast[0], fast[1], fast[2], size
        f.seek(0)
        force = False
        if len(head) < 132 or head[128:132] != b"DICM":
            # no preamble: accept only a plausible raw dataset (group 0002 or 0008 first)
            if len(head) < 8 or head[:2] not in (b"\x02\x00", b"\x08\x00"):
                return SkippedFile(
                    str(ref), "not a DICOM file (no 'DICM' marker at byte 128 and no dataset start)"
                )
            force = True
        try:
            with warnings.catch_warnings():  # odd files are expected here; reasons say what matters
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(f, stop_before_pixels=True, force=force)
        except Exception as exc:  # noqa: BLE001 - any parser failure is this file's reason
            return SkippedFile(
                str(ref),
                f"unreadable DICOM header ({type(exc).__name__}: {exc}); the file is corrupt or "
                "truncated",
            )
        ts = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
        if not ts:
            ts = "1.2.840.10008.1.2"  # no meta: implicit VR little endian (PS3.5 default)
        off, length = _pixel_location(f, ts) if ts in NATIVE_SYNTAXES else (None, None)
        if (
            ts == DEFLATED
        ):  # the file position says nothing inside a deflated stream: inflate it all
            f.seek(0)
            off = 0 if "PixelData" in pydicom.dcmread(f, force=force) else None
        elif ts not in NATIVE_SYNTAXES:
            pos = f.tell()
            has_pixels = f.read(4) in (_PIXEL_TAG_LE, _PIXEL_TAG_BE)
            off = pos if has_pixels else None
    return ds, off, length, size


def _layout_problem(info: FileInfo, size: int) -> str:
    """Why the pixel module cannot describe real pixel data ('' when it can)."""
    if info.rows < 1 or info.columns < 1:
        return f"Rows (0028,0010) x Columns (0028,0011) = {info.rows} x {info.columns}: no pixels"
    if (
        info.bits_allocated not in (1, 8, 16, 32)
        or not 1 <= info.bits_stored <= info.bits_allocated
    ):
        return (
            f"unsupported pixel layout BitsAllocated (0028,0100) = {info.bits_allocated}, "
            f"BitsStored (0028,0101) = {info.bits_stored}"
        )
    if info.samples_per_pixel not in (1, 3):
        return f"SamplesPerPixel (0028,0002) = {info.samples_per_pixel}: only 1 or 3 are images"
    if not 1 <= info.number_of_frames <= max(1, size // 8):
        return (
            f"NumberOfFrames (0028,0008) = {info.number_of_frames} is impossible for a file of "
            f"{size} bytes; the header is corrupt"
        )
    return ""


def read_header(ref: FileRef) -> tuple[FileInfo, list[FrameRecord]] | NonImageObject | SkippedFile:
    """Read ``ref``'s header (stops before pixel data) and classify it. Never raises for bad
    files."""
    try:
        opened = _open_dataset(ref)
    except OSError as exc:
        return SkippedFile(str(ref), f"cannot read file: {exc}")
    except Exception as exc:  # noqa: BLE001 - e.g. a corrupt zip member; never crash a scan
        return SkippedFile(str(ref), f"unreadable file ({type(exc).__name__}: {exc})")
    if isinstance(opened, SkippedFile):
        return opened
    ds, off, length, size = opened
    try:
        return _classify(ref, ds, off, length, size)
    except Exception as exc:  # noqa: BLE001 - bad values surface lazily in pydicom
        return SkippedFile(str(ref), f"invalid header value ({type(exc).__name__}: {exc})")


def _classify(ref: FileRef, ds: Dataset, off: int | None, length: int | None, size: int):
    meta = getattr(ds, "file_meta", None)
    ts = str((meta.get("TransferSyntaxUID") if meta is not None else None) or "1.2.840.10008.1.2")
    sop_class = _str(ds, "SOPClassUID") or (
        _str(meta, "MediaStorageSOPClassUID") if meta is not None else ""
    )
    if sop_class == DICOMDIR_CLASS or "DirectoryRecordSequence" in ds:
        return SkippedFile(
            str(ref),
            "DICOMDIR index (scan the DICOMDIR itself, or its folder, to read the files it lists)",
        )
    name = UID(sop_class).name if sop_class else ""
    has_pixels = off is not None
    known = bool(sop_class) and name != sop_class
    is_image = ("Image Storage" in name) if known else (has_pixels or "Rows" in ds)
    if not is_image:
        return NonImageObject(
            str(ref),
            sop_class,
            name or "unknown SOP class",
            _str(ds, "Modality"),
            _str(ds, "SOPInstanceUID"),
            _str(ds, "SeriesInstanceUID"),
        )
    if not has_pixels:
        return SkippedFile(
            str(ref),
            f"no pixel data (7FE0,0010) in this {name or 'image'}; the file is truncated or "
            "header-only",
        )
    missing = [k for k in ("Rows", "Columns", "BitsAllocated") if ds.get(k) in (None, "", 0)]
    if missing:
        return SkippedFile(
            str(ref),
            f"missing required pixel attribute(s) {', '.join(missing)} (0028,xxxx); cannot "
            "interpret the pixel data",
        )
    series_uid = _str(ds, "SeriesInstanceUID")
    notes = []
    if not series_uid:  # de-identified data sometimes blanks the UIDs: group by what is left
        parent = os.path.dirname(ref.member or ref.path)
        series_uid = "nouid:" + "|".join(
            [
                _str(ds, "StudyInstanceUID"),
                _str(ds, "SeriesNumber"),
                _str(ds, "SeriesDescription"),
                _str(ds, "Modality"),
                parent,
            ]
        )
        notes.append(
            "no SeriesInstanceUID (0020,000E): images grouped by folder, SeriesNumber and "
            "SeriesDescription"
        )
    sop_uid = _str(ds, "SOPInstanceUID") or (
        _str(meta, "MediaStorageSOPInstanceUID") if meta is not None else ""
    )
    why = decoder_available(ts)
    if why:
        return SkippedFile(str(ref), why)
    frames = _int(ds, "NumberOfFrames") or 1
    spp = _int(ds, "SamplesPerPixel") or 1
    info = FileInfo(
        ref=ref,
        sop_class_uid=sop_class,
        sop_instance_uid=sop_uid or str(ref),
        transfer_syntax=ts,
        modality=_str(ds, "Modality"),
        patient_id=_str(ds, "PatientID"),
        patient_name=_str(ds, "PatientName"),
        study_uid=_str(ds, "StudyInstanceUID"),
        series_uid=series_uid,
        series_number=_int(ds, "SeriesNumber"),
        series_description=_str(ds, "SeriesDescription"),
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        samples_per_pixel=spp,
        bits_allocated=int(ds.BitsAllocated),
        bits_stored=_int(ds, "BitsStored") or int(ds.BitsAllocated),
        pixel_representation=_int(ds, "PixelRepresentation") or 0,
        photometric=_str(ds, "PhotometricInterpretation", "MONOCHROME2"),
        number_of_frames=frames,
        planar_configuration=_int(ds, "PlanarConfiguration") or 0,
        padding_value=_int(ds, "PixelPaddingValue"),
        pixel_offset=off if ts in NATIVE_SYNTAXES else None,
        pixel_length=length,
        encapsulated_offset=off if ts not in NATIVE_SYNTAXES and ts != DEFLATED else None,
        file_size=size,
        mtime=os.path.getmtime(ref.path) if ref.member is None else 0.0,
        header=_header_values(ds),
    )
    info.header["notes"] = notes
    bad = _layout_problem(info, size)
    if bad:
        return SkippedFile(str(ref), bad)
    if ts in NATIVE_SYNTAXES and off is not None:
        expected = (
            (info.frame_bytes * frames)
            if info.bits_allocated >= 8
            else (info.rows * info.columns * frames + 7) // 8
        )
        if info.photometric in ("YBR_FULL_422", "YBR_PARTIAL_422"):
            expected = expected * 2 // 3  # chroma subsampled horizontally (PS3.3 C.7.6.3.1.2)
        if length is None or length == 0xFFFFFFFF:
            return SkippedFile(
                str(ref),
                f"PixelData is encapsulated (compressed) but the transfer syntax {ts} says "
                "uncompressed: the file's transfer syntax is wrong",
            )
        if length < expected:
            return SkippedFile(
                str(ref),
                f"PixelData holds {length} bytes but Rows x Columns x frames x "
                f"samples x BitsAllocated/8 = {expected}: the header or the pixel data is wrong",
            )
        if off + expected > size:
            return SkippedFile(
                str(ref),
                f"file truncated: PixelData needs {expected} bytes but only "
                f"{max(0, size - off)} remain; re-copy or re-export the file",
            )
        if info.bits_allocated not in (8, 16, 32) or info.bits_stored > info.bits_allocated:
            return SkippedFile(
                str(ref),
                f"unsupported pixel layout BitsAllocated={info.bits_allocated} "
                f"BitsStored={info.bits_stored}",
            )
    return info, frame_records(ds, info)
