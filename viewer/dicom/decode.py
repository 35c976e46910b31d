"""Read the stored pixel values of frames. No Qt.

Two routes:

* **native fast path** — uncompressed grayscale data (implicit/explicit little endian, explicit
  big endian) is read straight from the byte offset recorded at scan time and viewed with
  ``numpy.frombuffer`` (no pydicom parse; PERF_NOTES: 138 ms vs 202 ms for 300 slices with
  ``pixel_array``, and less again without re-parsing headers). Bits above BitsStored are masked
  (unsigned) or sign-extended (signed), as PS3.5 8.1.1 requires.
* **imagecodecs route** — compressed single-frame grayscale JPEG / JPEG-LS / JPEG 2000 when the
  optional ``imagecodecs`` package is installed (:mod:`viewer.dicom.fastcodecs`: ~4x faster than
  pylibjpeg and GIL-free);
* **pydicom route** — everything else (compressed syntaxes via the pylibjpeg / pyjpegls plugins,
  colour, palette, deflate, files changed since the scan): ``pydicom.pixels.iter_pixels``, one
  parse per file, YBR converted to RGB, palette colour applied.

Results are *stored values* (before rescale): [rows, cols] integers, or [rows, cols, 3] uint8 RGB.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence

import numpy as np

from viewer.dicom.fastcodecs import decode_fast, fast_codec_ok
from viewer.dicom.headers import NATIVE_SYNTAXES
from viewer.dicom.records import FileInfo

__all__ = ["is_color", "fast_path_ok", "iter_stored_frames", "fix_bits", "unchanged_since_scan"]

log = logging.getLogger(__name__)


def is_color(info: FileInfo) -> bool:
    """True for RGB / YBR / palette-colour images (loaded as RGB uint8)."""
    return info.samples_per_pixel > 1 or info.photometric.startswith("PALETTE")


def fast_path_ok(info: FileInfo) -> bool:
    """Can the frames of ``info`` be read with ``numpy.frombuffer`` from the scanned offset?"""
    if info.transfer_syntax not in NATIVE_SYNTAXES or info.pixel_offset is None or is_color(info):
        return False
    if info.bits_allocated not in (8, 16, 32):
        return False
    return unchanged_since_scan(info)


def unchanged_since_scan(info: FileInfo) -> bool:
    """False when the file's size or modification time differ from the scan (offsets are stale)."""
    if info.ref.member is None:
        try:
            st = os.stat(info.ref.path)
        except OSError:
            return False
        if st.st_size != info.file_size or st.st_mtime != info.mtime:
            return False  # changed since the scan: re-parse it
    return True


def _native_dtype(info: FileInfo) -> np.dtype:
    kind = "i" if info.pixel_representation else "u"
    return np.dtype(f"{NATIVE_SYNTAXES[info.transfer_syntax]}{kind}{info.bits_allocated // 8}")


def fix_bits(arr: np.ndarray, info: FileInfo) -> np.ndarray:
    """Mask (unsigned) or sign-extend (signed) values stored in fewer bits than allocated, in
    place."""
    bs, ba = info.bits_stored, arr.dtype.itemsize * 8
    if arr.dtype.kind not in "iu" or bs >= ba:
        return arr
    if arr.dtype.kind == "u":
        np.bitwise_and(arr, (1 << bs) - 1, out=arr)
    else:
        shift = ba - bs
        np.left_shift(arr, shift, out=arr)
        np.right_shift(arr, shift, out=arr)
    return arr


def _read_native(info: FileInfo, frames: Sequence[int | None]) -> Iterator[np.ndarray]:
    dt = _native_dtype(info)
    nbytes = info.frame_bytes
    with info.ref.open() as f:
        for fr in frames:
            f.seek(info.pixel_offset + (fr or 0) * nbytes)  # type: ignore[operator]
            buf = f.read(nbytes)
            if len(buf) != nbytes:
                raise ValueError(
                    f"pixel data of frame {(fr or 0) + 1} is truncated ({len(buf)} of {nbytes} "
                    "bytes)"
                )
            arr = np.frombuffer(buf, dtype=dt).reshape(info.rows, info.columns)
            arr = arr.astype(dt.newbyteorder("="), copy=True) if not dt.isnative else arr.copy()
            yield fix_bits(arr, info)


def _to_rgb8(arr: np.ndarray, info: FileInfo, ds: object | None) -> np.ndarray:
    if info.photometric.startswith("PALETTE"):
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
    if arr.ndim == 2:  # grayscale delivered for a colour stack: replicate
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.dtype != np.uint8:
        bits = (
            8 * arr.dtype.itemsize if info.photometric.startswith("PALETTE") else info.bits_stored
        )
        arr = (arr >> max(0, bits - 8)).astype(np.uint8)
    return arr


def _read_pydicom(info: FileInfo, frames: Sequence[int | None]) -> Iterator[np.ndarray]:
    import pydicom
    from pydicom.pixels import iter_pixels

    with info.ref.open() as f:
        ds = pydicom.dcmread(f)
    indices = [fr or 0 for fr in frames]
    for arr in iter_pixels(ds, indices=indices):
        if is_color(info):
            yield _to_rgb8(arr, info, ds)
        else:
            out = arr if arr.flags.writeable else arr.copy()
            if out.ndim == 3:  # a grayscale image decoded with a samples axis
                out = out[..., 0]
            yield fix_bits(out, info)


def iter_stored_frames(info: FileInfo, frames: Sequence[int | None]) -> Iterator[np.ndarray]:
    """Stored values of ``frames`` (0-based frame indices, None for single-frame) of one file.

    Raises whatever the decoder raises (the loader turns it into a per-file reason).
    """
    if fast_path_ok(info):
        return _read_native(info, frames)
    if fast_codec_ok(info) and unchanged_since_scan(info):
        return _read_fast_codec(info, frames)
    return _read_pydicom(info, frames)


def _read_fast_codec(info: FileInfo, frames: Sequence[int | None]) -> Iterator[np.ndarray]:
    try:
        arr = decode_fast(info)
    except Exception as exc:  # noqa: BLE001 - any surprise: the pydicom route decides
        log.debug("imagecodecs route declined (%s: %s); using pydicom", type(exc).__name__, exc)
        yield from _read_pydicom(info, frames)
        return
    yield arr
