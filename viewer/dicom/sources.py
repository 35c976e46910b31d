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


def _zip_refs(path: str) -> list[FileRef]:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise DicomError(f"{path}: not a readable zip archive ({exc})") from exc
    return [FileRef(path, n) for n in sorted(names) if not n.startswith("__MACOSX/")]


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
            return _zip_refs(sp), []
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
                refs.extend(_zip_refs(fp))
                continue
            refs.append(FileRef(fp))
    log.debug("found %d candidate files", len(refs))
    return refs, skipped
