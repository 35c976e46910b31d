"""Optional fast decoding of compressed single-frame grayscale images with ``imagecodecs``. No Qt.

pylibjpeg's decoders (the pydicom route) are correct but slow and hold the GIL: measured here,
pylibjpeg-libjpeg needs ~10-15 ms per 512x512 JPEG Lossless slice, 1.5-2x slower than
SimpleITK/GDCM, and threads do not help. ``imagecodecs`` (libjpeg-turbo 3, OpenJPEG, CharLS)
decodes the same codestream in ~3 ms and releases the GIL, so a small thread pool scales.

Only the simple, common case takes this route: one frame, one sample (grayscale), a JPEG family
(baseline, extended, lossless), JPEG-LS or JPEG 2000 transfer syntax, a file unchanged since the
scan. The fragment is read straight from the offset recorded at scan time. The decoded bit
pattern is reinterpreted with the header's PixelRepresentation and masked / sign-extended to
BitsStored exactly as on the pydicom route; any surprise (shape, dtype, decoder error) raises,
and the caller falls back to pydicom. Without ``imagecodecs`` installed nothing changes.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import numpy as np

from viewer.dicom.records import FileInfo

__all__ = ["fast_codec_ok", "decode_fast", "imagecodecs_available", "FAST_CODEC_SYNTAXES"]

log = logging.getLogger(__name__)

FAST_CODEC_SYNTAXES = {
    "1.2.840.10008.1.2.4.50": "jpeg",  # JPEG baseline (8 bit)
    "1.2.840.10008.1.2.4.51": "jpeg",  # JPEG extended (12 bit)
    "1.2.840.10008.1.2.4.57": "jpeg",  # JPEG lossless, process 14
    "1.2.840.10008.1.2.4.70": "jpeg",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.80": "jpegls",
    "1.2.840.10008.1.2.4.81": "jpegls",
    "1.2.840.10008.1.2.4.90": "jpeg2k",
    "1.2.840.10008.1.2.4.91": "jpeg2k",
}


@lru_cache(maxsize=1)
def _codecs() -> Any | None:
    try:
        import imagecodecs
    except ImportError:
        return None
    return imagecodecs


def imagecodecs_available() -> bool:
    """True when the optional ``imagecodecs`` package can be imported."""
    return _codecs() is not None


def fast_codec_ok(info: FileInfo) -> bool:
    """Can this file's (single) frame be decoded with imagecodecs from the scanned offset?"""
    return (
        info.transfer_syntax in FAST_CODEC_SYNTAXES
        and info.encapsulated_offset is not None
        and info.number_of_frames == 1
        and info.samples_per_pixel == 1
        and info.bits_allocated in (8, 16)
        and _codecs() is not None
    )


def _fragment(info: FileInfo) -> bytes:
    from pydicom.encaps import generate_frames

    with info.ref.open() as f:
        f.seek(info.encapsulated_offset)  # type: ignore[arg-type]
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"\xe0\x7f\x10\x00" or head[8:12] != b"\xff\xff\xff\xff":
            raise ValueError("encapsulated pixel data not found at the scanned offset")
        data = f.read()
    return next(generate_frames(data, number_of_frames=1))


def _decode_codestream(kind: str, buf: bytes) -> np.ndarray:
    ic = _codecs()
    if kind == "jpeg":
        try:
            return ic.jpeg8_decode(buf)
        except Exception:  # noqa: BLE001 - libjpeg-turbo refused (e.g. old lossless predictors)
            return ic.ljpeg_decode(buf)
    if kind == "jpegls":
        return ic.jpegls_decode(buf)
    return ic.jpeg2k_decode(buf)


def decode_fast(info: FileInfo) -> np.ndarray:
    """Stored values [rows, cols] of the single frame of ``info`` (raises on any surprise)."""
    from viewer.dicom.decode import fix_bits

    buf = _fragment(info)
    if b"\xff\xd9" not in buf[-16:]:  # EOI/EOC, allowing a few padding bytes after it
        # no end-of-image marker: truncated. CharLS can spend seconds on some truncated JPEG-LS
        # streams (fuzzing, docs/reliability.md); the pydicom route fails them at once
        raise ValueError("codestream has no end marker (FFD9): truncated")
    arr = _decode_codestream(FAST_CODEC_SYNTAXES[info.transfer_syntax], buf)
    if arr.shape != (info.rows, info.columns) or arr.dtype.kind not in "iu" or arr.itemsize > 2:
        raise ValueError(f"imagecodecs returned {arr.shape} {arr.dtype}")
    bits = 8 * max(arr.itemsize, info.bits_allocated // 8)
    want = np.dtype(f"{'i' if info.pixel_representation else 'u'}{bits // 8}")
    if arr.dtype != want:
        arr = arr.astype(np.dtype(f"{arr.dtype.kind}{bits // 8}"), copy=False).view(want)
    if not arr.flags.writeable or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr).copy()
    return fix_bits(arr, info)
