"""A minimal, fast DICOM header reader for the common case (scan speed). No Qt.

Scanning a 300-file series with ``pydicom.dcmread(stop_before_pixels=True)`` plus element access
costs ~1-3 ms per file, which dominates time-to-first-image. This module walks the byte stream of
single-frame little-endian files (explicit or implicit VR, native or encapsulated pixel data)
once with ``struct``, keeps only the ~45 top-level attributes the loader needs, skips every
sequence, and stops at Pixel Data. Anything unusual — big endian, deflate, multi-frame /
functional groups, DICOMDIR, lengths that run past the end, odd structure — returns ``None`` and
the caller falls back to pydicom, which also produces the precise error messages.

:class:`FastDataset` mimics the small part of ``pydicom.Dataset`` that ``headers.py`` uses
(``get``, ``in``, attribute access, ``file_meta``), with pydicom-like value types: ``str`` for
text, ``int`` for US/IS, ``float`` for DS, and lists for multi-valued attributes.
"""

from __future__ import annotations

import struct
from typing import Any

__all__ = ["FastDataset", "parse_header", "TAGS"]

# keyword -> (tag, kind); kind: s = text, m = multi text, d = DS, dm = multi DS, i = IS, u = US
TAGS: dict[str, tuple[int, str]] = {
    "SOPClassUID": (0x00080016, "s"),
    "SOPInstanceUID": (0x00080018, "s"),
    "Modality": (0x00080060, "s"),
    "ImageType": (0x00080008, "m"),
    "StudyDate": (0x00080020, "s"),
    "Manufacturer": (0x00080070, "s"),
    "StudyDescription": (0x00081030, "s"),
    "SeriesDescription": (0x0008103E, "s"),
    "PatientName": (0x00100010, "s"),
    "PatientID": (0x00100020, "s"),
    "PatientBirthDate": (0x00100030, "s"),
    "PatientSex": (0x00100040, "s"),
    "BodyPartExamined": (0x00180015, "s"),
    "SliceThickness": (0x00180050, "d"),
    "SpacingBetweenSlices": (0x00180088, "d"),
    "EchoNumbers": (0x00180086, "i"),
    "GantryDetectorTilt": (0x00181120, "d"),
    "PatientPosition": (0x00185100, "s"),
    "StudyInstanceUID": (0x0020000D, "s"),
    "SeriesInstanceUID": (0x0020000E, "s"),
    "SeriesNumber": (0x00200011, "i"),
    "AcquisitionNumber": (0x00200012, "i"),
    "InstanceNumber": (0x00200013, "i"),
    "ImagePositionPatient": (0x00200032, "dm"),
    "ImageOrientationPatient": (0x00200037, "dm"),
    "FrameOfReferenceUID": (0x00200052, "s"),
    "TemporalPositionIdentifier": (0x00200100, "i"),
    "SamplesPerPixel": (0x00280002, "u"),
    "PhotometricInterpretation": (0x00280004, "s"),
    "PlanarConfiguration": (0x00280006, "u"),
    "NumberOfFrames": (0x00280008, "i"),
    "Rows": (0x00280010, "u"),
    "Columns": (0x00280011, "u"),
    "PixelSpacing": (0x00280030, "dm"),
    "BitsAllocated": (0x00280100, "u"),
    "BitsStored": (0x00280101, "u"),
    "HighBit": (0x00280102, "u"),
    "PixelRepresentation": (0x00280103, "u"),
    "PixelPaddingValue": (0x00280120, "u"),
    "WindowCenter": (0x00281050, "dm"),
    "WindowWidth": (0x00281051, "dm"),
    "RescaleIntercept": (0x00281052, "d"),
    "RescaleSlope": (0x00281053, "d"),
    "RescaleType": (0x00281054, "s"),
    "WindowCenterWidthExplanation": (0x00281055, "m"),
    # meta group
    "MediaStorageSOPClassUID": (0x00020002, "s"),
    "MediaStorageSOPInstanceUID": (0x00020003, "s"),
    "TransferSyntaxUID": (0x00020010, "s"),
}
_BY_TAG = {tag: (kw, kind) for kw, (tag, kind) in TAGS.items()}
_LONG_VR = {
    b"OB",
    b"OW",
    b"OF",
    b"SQ",
    b"UT",
    b"UN",
    b"OD",
    b"OL",
    b"OV",
    b"UC",
    b"UR",
    b"SV",
    b"UV",
}
_KNOWN_VR = {
    v.encode()
    for v in "AE AS AT CS DA DS DT FL FD IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI "
    "UL UN UR US UT UV".split()
}
_FALLBACK_TAGS = {0x52009229, 0x52009230, 0x00041220}  # functional groups, DICOMDIR records
_FAST_SYNTAXES = {"1.2.840.10008.1.2": True, "1.2.840.10008.1.2.1": False}  # -> implicit?
PIXEL_DATA = 0x7FE00010
UNDEFINED = 0xFFFFFFFF
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_TAG = struct.Struct("<HH")


class _Bad(Exception):
    """Structure this reader does not handle: fall back to pydicom."""


class FastDataset:
    """Top-level attribute values of one header (see the module docstring)."""

    def __init__(
        self, raw: dict[int, tuple[bytes, bytes]], meta: FastDataset | None = None
    ) -> None:
        self._raw = raw  # tag -> (VR or b"", value bytes)
        self.file_meta = meta if meta is not None else self

    def __contains__(self, keyword: str) -> bool:
        t = TAGS.get(keyword)
        return t is not None and t[0] in self._raw

    def __getattr__(self, keyword: str) -> Any:
        if keyword.startswith("_"):
            raise AttributeError(keyword)
        v = self.get(keyword)
        if v is None:
            raise AttributeError(keyword)
        return v

    def get(self, keyword: str, default: Any = None) -> Any:
        t = TAGS.get(keyword)
        if t is None or t[0] not in self._raw:
            return default
        vr, b = self._raw[t[0]]
        kind = t[1]
        if kind == "u":
            if len(b) < 2:
                return default
            v = _U16.unpack_from(b)[0]
            if keyword == "PixelPaddingValue" and (
                vr == b"SS" or (vr != b"US" and self.get("PixelRepresentation") == 1)
            ):
                v = v - 65536 if v >= 32768 else v
            return v
        s = b.decode("latin-1").rstrip("\x00 ").strip()
        if kind == "s":
            return s
        parts = [p.strip() for p in s.split("\\")] if s else []
        if kind == "m":
            return parts if len(parts) != 1 else parts[0]
        if not parts or parts == [""]:
            return default
        if kind == "i":
            return int(float(parts[0]))
        vals = [float(p) for p in parts]
        return vals[0] if kind == "d" else (vals if len(vals) != 1 else vals[0])


def _skip_sequence(buf: bytes, pos: int, implicit: bool, depth: int = 0) -> int:
    """Position after an undefined-length sequence starting at ``pos`` (its first item)."""
    if depth > 8:
        raise _Bad("nesting")
    n = len(buf)
    while True:
        if pos + 8 > n:
            raise _Bad("eof in sequence")
        g, e = _TAG.unpack_from(buf, pos)
        length = _U32.unpack_from(buf, pos + 4)[0]
        pos += 8
        if (g, e) == (0xFFFE, 0xE0DD):
            return pos
        if (g, e) != (0xFFFE, 0xE000):
            raise _Bad("no item")
        if length != UNDEFINED:
            pos += length
            continue
        while True:  # items of undefined length: elements until the item delimiter
            if pos + 8 > n:
                raise _Bad("eof in item")
            g, e = _TAG.unpack_from(buf, pos)
            if (g, e) == (0xFFFE, 0xE00D):
                pos += 8
                break
            _, _, pos = _element(buf, pos, implicit, depth + 1)


def _element(
    buf: bytes, pos: int, implicit: bool, depth: int
) -> tuple[int, tuple[bytes, bytes] | None, int]:
    """(tag, (vr, value) or None when skipped, next position) of the element at ``pos``."""
    n = len(buf)
    if pos + 8 > n:
        raise _Bad("eof")
    g, e = _TAG.unpack_from(buf, pos)
    tag = (g << 16) | e
    if implicit and g != 0x0002:
        vr, length, vpos = b"", _U32.unpack_from(buf, pos + 4)[0], pos + 8
    else:
        vr = buf[pos + 4 : pos + 6]
        if vr not in _KNOWN_VR:
            raise _Bad("unknown VR")
        if vr in _LONG_VR:
            if pos + 12 > n:
                raise _Bad("eof")
            length, vpos = _U32.unpack_from(buf, pos + 8)[0], pos + 12
        else:
            length, vpos = _U16.unpack_from(buf, pos + 6)[0], pos + 8
    if tag == PIXEL_DATA:
        return tag, (vr, b""), vpos if length != UNDEFINED else pos
    if tag in _FALLBACK_TAGS:
        raise _Bad("needs pydicom")
    if length == UNDEFINED:
        return tag, None, _skip_sequence(buf, vpos, implicit or vr == b"UN", depth)
    end = vpos + length
    if end > n:
        raise _Bad("value past end")
    keep = depth == 0 and tag in _BY_TAG
    return tag, ((vr, buf[vpos:end]) if keep else None), end


def parse_header(buf: bytes) -> tuple[FastDataset, int | None, int | None] | None:
    """Parse ``buf`` (the start of a file). Returns ``(dataset, pixel_offset, pixel_length)`` —
    offset/length of a native Pixel Data value, or offset of the Pixel Data *tag* and length None
    for encapsulated data — or ``None`` when the file needs pydicom (see the module docstring)."""
    try:
        if len(buf) < 144 or buf[128:132] != b"DICM":
            return None
        pos = 132
        meta: dict[int, tuple[bytes, bytes]] = {}
        while pos + 8 <= len(buf) and _U16.unpack_from(buf, pos)[0] == 0x0002:
            tag, val, pos = _element(buf, pos, False, 0)
            if val is not None:
                meta[tag] = val
        meta_ds = FastDataset(meta)
        ts = meta_ds.get("TransferSyntaxUID") or ""
        implicit = _FAST_SYNTAXES.get(ts)
        if implicit is None:
            if not ts.startswith("1.2.840.10008.1.2.4.") and ts != "1.2.840.10008.1.2.5":
                return None  # big endian, deflate, private: pydicom
            implicit = False  # encapsulated syntaxes are explicit VR little endian
        raw: dict[int, tuple[bytes, bytes]] = {}
        while True:
            start = pos
            tag, val, pos = _element(buf, pos, implicit, 0)
            if tag == PIXEL_DATA:
                ds = FastDataset(raw, meta_ds)
                if (ds.get("NumberOfFrames") or 1) > 1:
                    return None
                if pos == start:  # encapsulated: report the tag position
                    return ds, start, None
                length = _U32.unpack_from(buf, pos - 4)[0]
                return ds, pos, length
            if val is not None:
                raw[tag] = val
    except (_Bad, struct.error, ValueError):
        return None
