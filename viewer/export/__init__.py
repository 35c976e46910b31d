"""Exports (no Qt): NIfTI (:mod:`viewer.export.nifti`), DICOM SEG, PNG key images, PDF report.

Every writer goes through :mod:`viewer.export.atomic` so a reader never sees a half-written file.
Submodules are imported explicitly (``from viewer.export.nifti import write_nifti``) so that
importing this package stays cheap.
"""

from __future__ import annotations

__all__: list[str] = []
