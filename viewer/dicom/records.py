"""Plain data records of a scan: file references, per-frame header values, stacks. No Qt.

A :class:`FileRef` names a file on disk or a member of a zip archive. A :class:`FrameRecord`
is one 2-D image (a single-frame file, or one frame of a multi-frame file) with the header values
the loader needs, read once at scan time. A :class:`Stack` is a loadable set of frames.
"""

from __future__ import annotations

import os
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, BinaryIO

__all__ = ["FileRef", "FileInfo", "FrameRecord", "SkippedFile", "NonImageObject"]


_ZIP_LOCK = threading.Lock()
_ZIPS: OrderedDict[tuple[str, int, int], zipfile.ZipFile] = OrderedDict()


def _zipfile(path: str) -> zipfile.ZipFile:
    """An open ZipFile for ``path``, cached by (path, mtime, size): the central directory is
    parsed once per archive, not once per member (a zip with thousands of entries)."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_mtime_ns, st.st_size)
    with _ZIP_LOCK:
        zf = _ZIPS.get(key)
        if zf is None:
            zf = _ZIPS[key] = zipfile.ZipFile(path)
            while len(_ZIPS) > 4:
                _ZIPS.popitem(last=False)[1].close()  # open members stay readable
        _ZIPS.move_to_end(key)
        return zf


@dataclass(frozen=True)
class FileRef:
    """A DICOM file: ``path`` on disk, or ``member`` inside the zip archive ``path``."""

    path: str
    member: str | None = None

    def __str__(self) -> str:
        return f"{self.path}!{self.member}" if self.member else self.path

    @property
    def name(self) -> str:
        return os.path.basename(self.member or self.path)

    def open(self) -> BinaryIO:
        """A seekable binary file object at the start of the file (caller closes it).

        Zip members are streamed (decompressed as read), never loaded whole, so scanning reads
        only their headers.
        """
        if self.member is None:
            return open(self.path, "rb")  # noqa: SIM115 - returned to the caller
        zf = _zipfile(self.path)
        with _ZIP_LOCK:
            return zf.open(self.member)  # stays readable after zf.close() (shared file handle)

    def size(self) -> int:
        """Size in bytes (uncompressed size for a zip member)."""
        if self.member is None:
            return os.path.getsize(self.path)
        return _zipfile(self.path).getinfo(self.member).file_size

    def read_bytes(self, offset: int = 0, length: int | None = None) -> bytes:
        """``length`` bytes from ``offset`` (all remaining when ``length`` is None)."""
        with self.open() as f:
            f.seek(offset)
            return f.read() if length is None else f.read(length)


@dataclass
class FileInfo:
    """Values shared by every frame of one file (identity, pixel module, encoding)."""

    ref: FileRef
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    modality: str
    patient_id: str
    patient_name: str
    study_uid: str
    series_uid: str
    series_number: int | None
    series_description: str
    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric: str
    number_of_frames: int
    planar_configuration: int = 0
    padding_value: int | None = None
    pixel_offset: int | None = None  # byte offset of native PixelData value in the file
    pixel_length: int | None = None
    encapsulated_offset: int | None = (
        None  # byte offset of the (7FE0,0010) tag of encapsulated data
    )
    file_size: int = 0
    mtime: float = 0.0
    header: dict[str, Any] = field(default_factory=dict)  # display values for VolumeMeta

    @property
    def frame_bytes(self) -> int:
        return self.rows * self.columns * self.samples_per_pixel * self.bits_allocated // 8


@dataclass
class FrameRecord:
    """One 2-D image: a single-frame file (``frame`` None) or frame ``frame`` (0-based) of a
    file."""

    file: FileInfo
    frame: int | None
    instance_number: int | None
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    slice_thickness: float | None
    slope: float = 1.0
    intercept: float = 0.0
    rescale_type: str = ""
    windows: list[tuple[float, float, str]] = field(default_factory=list)
    acquisition: str = ""
    echo: str = ""
    temporal: str = ""
    stack_key: str = ""  # enhanced: StackID / dimension values that separate frames
    gantry_tilt: float = 0.0

    @property
    def frame_number(self) -> int | None:
        """1-based frame number (DICOM convention) or None for single-frame files."""
        return None if self.frame is None else self.frame + 1


@dataclass
class SkippedFile:
    """A file that is not loaded, with the reason (and the fix where there is one)."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass
class NonImageObject:
    """A DICOM object that is not an image (SR, SEG, RTSTRUCT, presentation state …)."""

    path: str
    sop_class_uid: str
    sop_class_name: str
    modality: str
    sop_instance_uid: str
    series_uid: str = ""

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)
