"""Find the candidate DICOM files under a path: file, folder (recursive), DICOMDIR or zip. No Qt.

Any file name counts (no extension, upper case, ``.IMA`` …): whether a file is DICOM is decided
by reading it, not by its name. Zip members are read in memory, never extracted to disk.
"""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path

from viewer.dicom.records import FileRef, SkippedFile
from viewer.errors import DicomError

__all__ = ["list_sources"]

log = logging.getLogger(__name__)


def _is_dicom_file(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _dicomdir_refs(path: str) -> tuple[list[FileRef], list[SkippedFile]]:
    import pydicom
    from pydicom.fileset import FileSet

    try:
        fs = FileSet(pydicom.dcmread(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad DICOMDIR
        raise DicomError(
            f"{path}: cannot read DICOMDIR ({type(exc).__name__}: {exc}); scan its folder instead"
        ) from exc
    refs, skipped = [], []
    for inst in fs:
        p = str(inst.path)
        if os.path.isfile(p):
            refs.append(FileRef(p))
        else:
            skipped.append(SkippedFile(p, "listed in the DICOMDIR but missing on disk"))
    return refs, skipped


MAX_ZIP_RATIO = 200  # DICOM compresses ~2-10x; a member expanding more than this is a zip bomb


def _zip_refs(path: str) -> tuple[list[FileRef], list[SkippedFile]]:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise DicomError(f"{path}: not a readable zip archive ({exc})") from exc
    refs, skipped = [], []
    for i in sorted(infos, key=lambda i: i.filename):
        if i.filename.startswith("__MACOSX/"):
            continue
        ref = FileRef(path, i.filename)
        if i.file_size > 1 << 20 and i.file_size > MAX_ZIP_RATIO * max(1, i.compress_size):
            skipped.append(
                SkippedFile(
                    str(ref),
                    f"zip member expands {i.compress_size} -> "
                    f"{i.file_size} bytes (more than {MAX_ZIP_RATIO}x): "
                    "refused as a possible zip bomb; unzip it yourself if trusted",
                )
            )
            continue
        refs.append(ref)
    return refs, skipped


def list_sources(path: str | os.PathLike[str]) -> tuple[list[FileRef], list[SkippedFile]]:
    """Candidate files under ``path`` and files already known to be unusable.

    Raises
    ------
    DicomError
        ``path`` does not exist, or is a DICOMDIR/zip that cannot be read.
    """
    p = Path(path)
    if not p.exists():
        raise DicomError(f"{p}: no such file or folder; check the path")
    if p.is_file():
        sp = str(p)
        if p.name.upper() == "DICOMDIR":
            return _dicomdir_refs(sp)
        if not _is_dicom_file(sp) and zipfile.is_zipfile(sp):
            return _zip_refs(sp)
        return [FileRef(sp)], []
    refs: list[FileRef] = []
    skipped: list[SkippedFile] = []
    for root, dirs, files in os.walk(p):
        dirs.sort()
        for name in sorted(files):
            fp = os.path.join(root, name)
            if name.upper() == "DICOMDIR":
                continue  # the index; the files it lists are found by the walk itself
            if name.lower().endswith(".zip") and zipfile.is_zipfile(fp) and not _is_dicom_file(fp):
                zrefs, zskipped = _zip_refs(fp)
                refs.extend(zrefs)
                skipped.extend(zskipped)
                continue
            refs.append(FileRef(fp))
    log.debug("found %d candidate files", len(refs))
    return refs, skipped
