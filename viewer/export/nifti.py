"""NIfTI-1 export with the correct affine (LPS → RAS), written atomically. No Qt.

NIfTI stores the array ``[x, y, z]`` (first index fastest-varying in patient "i"), so our
``[z, y, x]`` voxels are transposed, and the affine is :meth:`viewer.volume.Volume.affine_ras`
(DICOM LPS with the first two axes negated). The sform holds the exact affine (code 1, scanner);
the qform holds it too unless the grid is sheared (gantry tilt), which a quaternion cannot
represent (then qform code 0 and readers use the sform).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from viewer.errors import ExportError
from viewer.export.atomic import atomic_path
from viewer.volume import Volume

__all__ = ["write_nifti", "read_nifti"]

log = logging.getLogger(__name__)

_RGB = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])


def _is_orthogonal(affine: np.ndarray) -> bool:
    m = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)[None, :]
    return bool(np.allclose(m.T @ m, np.eye(3), atol=1e-6))


def write_nifti(
    volume_or_array: Volume | np.ndarray,
    path: str | os.PathLike[str],
    *,
    volume: Volume | None = None,
) -> Path:
    """Write a Volume (or an array on ``volume``'s grid, e.g. a label map) as ``.nii`` /
    ``.nii.gz``.

    Parameters
    ----------
    volume_or_array : a Volume, or an array ``[z, y, x]`` (or ``[z, y, x, 3]`` uint8 RGB).
    path : output file; the suffix chooses compression.
    volume : the grid of an array argument (required then).

    Raises
    ------
    ExportError
        bad arguments, or the file cannot be written (nothing half-written is left behind).
    """
    import nibabel as nib

    if isinstance(volume_or_array, Volume):
        vol, data = volume_or_array, volume_or_array.voxels
    else:
        if volume is None:
            raise ExportError(
                "write_nifti: an array needs volume= to give its grid (spacing, origin, direction)"
            )
        vol, data = volume, np.asarray(volume_or_array)
        if data.shape[:3] != vol.shape:
            raise ExportError(
                f"write_nifti: array shape {data.shape} does not match the volume grid {vol.shape}"
            )
    target = Path(path)
    if not (target.name.endswith(".nii") or target.name.endswith(".nii.gz")):
        raise ExportError(f"{target}: NIfTI files must end in .nii or .nii.gz")
    if data.ndim == 4:  # RGB [z, y, x, 3] -> structured RGB24 [x, y, z]
        if data.shape[3] != 3 or data.dtype != np.uint8:
            raise ExportError(
                f"write_nifti: 4-D data must be [z, y, x, 3] uint8 RGB, got {data.shape} "
                f"{data.dtype}"
            )
        arr = np.ascontiguousarray(data).view(_RGB)[..., 0].transpose(2, 1, 0)
    else:
        arr = data.transpose(2, 1, 0)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    affine = vol.affine_ras()
    img = nib.Nifti1Image(np.asfortranarray(arr), affine)
    img.set_sform(affine, code=1)
    if _is_orthogonal(affine):
        img.set_qform(affine, code=1)
    else:
        img.set_qform(affine, code=0)
        log.debug("sheared grid: NIfTI qform left unset, sform holds the affine")
    img.header.set_xyzt_units("mm", "sec")
    img.header["descrip"] = b"clinical-viewer"
    with atomic_path(target) as tmp:
        nib.save(img, str(tmp))
    return target


def read_nifti(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read a NIfTI file back as ``(voxels [z, y, x], affine_ras 4x4)`` (tests, round trips)."""
    import nibabel as nib

    img = nib.load(str(path))
    data = np.asanyarray(img.dataobj)
    if data.dtype == _RGB:
        rgb = np.stack([data["R"], data["G"], data["B"]], axis=-1)
        return np.ascontiguousarray(rgb.transpose(2, 1, 0, 3)), img.affine
    return np.ascontiguousarray(data.transpose(2, 1, 0)), img.affine
