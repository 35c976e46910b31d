"""Typed errors shared by the data layer (no Qt). Cancel is not an error: see ``Cancelled``."""

from __future__ import annotations

from inference.jobs import Cancelled

__all__ = ["ViewerError", "DicomError", "Cancelled", "ExportError", "is_user_error"]


class ViewerError(Exception):
    """Base class of errors the user can act on; messages name the file/tag/value and the fix."""


class DicomError(ViewerError):
    """A file or series that cannot be read as asked."""


class ExportError(ViewerError):
    """An export that could not be written (nothing half-written is left behind)."""


def is_user_error(exc: BaseException) -> bool:
    """True for errors caused by the input (exit code 2 on the command line)."""
    if isinstance(exc, ViewerError | FileNotFoundError | NotADirectoryError):
        return True
    try:
        from inference.package import PackageError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, PackageError)
