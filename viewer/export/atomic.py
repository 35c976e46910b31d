"""Atomic file writes for every export: temporary file in the same folder, fsync, ``os.replace``.

No Qt. A reader (PACS import, another program, the user) never sees a half-written export: the
data goes to a hidden temporary file next to the target, is flushed to disk, and is then renamed
over the target in one step (``os.replace`` is atomic on POSIX and on NTFS within one volume).
On any failure the temporary file is removed and the previous content of the target, if any, is
left untouched. Operating-system failures become :class:`~viewer.errors.ExportError` with a
message that names the file and says what to do (free disk space, choose a writable folder).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from viewer.errors import ExportError

__all__ = ["atomic_path", "atomic_open", "write_bytes_atomic", "write_with", "export_error", "ensure_folder"]

log = logging.getLogger(__name__)

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


def export_error(exc: OSError, path: Path) -> ExportError:
    """Translate an ``OSError`` raised while writing ``path`` into a user-actionable ``ExportError``."""
    code = exc.errno
    if code in _DISK_FULL:
        msg = (f"cannot write {path}: the disk is full ({os.strerror(code)}). "
               f"Free some space on the drive holding {path.parent} or export to another folder; "
               f"nothing was written")
    elif code in _NOT_WRITABLE:
        msg = (f"cannot write {path}: the folder {path.parent} is not writable "
               f"({os.strerror(code)}; read-only drive or missing permission). "
               f"Choose a writable folder; nothing was written")
    elif code == errno.ENOENT:
        msg = f"cannot write {path}: the folder {path.parent} does not exist; create it or choose another"
    elif code == errno.ENOTDIR:
        msg = f"cannot write {path}: a part of {path.parent} is a file, not a folder; choose another folder"
    else:
        msg = f"cannot write {path}: {exc.strerror or exc}; nothing was written"
    err = ExportError(msg)
    err.__cause__ = exc
    return err


def ensure_folder(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` (and parents) if needed; raise ``ExportError`` when that is impossible."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise export_error(exc, folder / "(export)") from exc
    if not folder.is_dir():
        raise ExportError(f"cannot export into {folder}: it exists and is not a folder; choose another folder")
    return folder


def _temp_name(target: Path) -> Path:
    # hidden, same folder (same filesystem, so os.replace is a rename), keeps the suffix for
    # libraries that pick a format from it (e.g. nibabel's .nii.gz)
    suffix = "".join(target.suffixes[-2:]) if target.name.endswith(".nii.gz") else target.suffix
    return target.with_name(f".{target.stem[:40]}.{secrets.token_hex(6)}.tmp{suffix}")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":  # pragma: no cover - directories cannot be opened on Windows
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - best effort
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _discard(tmp: Path) -> None:
    with contextlib.suppress(FileNotFoundError, OSError):
        tmp.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    Use it with libraries that write to a file name themselves (pydicom, reportlab, nibabel)::

        with atomic_path(out / "seg.dcm") as tmp:
            dataset.save_as(tmp)

    Raises
    ------
    ExportError
        The folder cannot be created or written, or the disk is full. The temporary file is
        removed and ``path`` keeps its previous content (if any).
    """
    target = Path(path)
    ensure_folder(target.parent)
    tmp = _temp_name(target)
    try:
        yield tmp
        if not tmp.exists():
            raise ExportError(f"internal error: the writer for {target} produced no file")
        _fsync_file(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        _discard(tmp)
        raise export_error(exc, target) from exc
    except BaseException:
        _discard(tmp)
        raise
    _fsync_dir(target.parent)
    log.debug("wrote %s", target.name)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; on success it atomically replaces ``path``.

    ``mode`` is ``"wb"`` or ``"w"`` (text; ``kwargs`` go to ``open``, e.g. ``encoding``).
    Errors as in :func:`atomic_path`.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    if mode == "w":
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp:
        try:
            fh = open(tmp, mode, **kwargs)  # noqa: SIM115 - closed below, before the rename
        except OSError as exc:
            raise export_error(exc, Path(path)) from exc
        try:
            yield fh
            fh.flush()
        finally:
            fh.close()


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return ``path``. Errors as in :func:`atomic_path`."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_with(path: str | os.PathLike[str], writer: Callable[[Path], object]) -> Path:
    """Call ``writer(tmp_path)`` and atomically move the result to ``path``; return ``path``."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)
