"""The ``Volume``: voxels in patient space, with the geometry that DICOM defines.

No Qt here. Conventions (used by every layer; do not change without updating them all):

* ``voxels`` is a numpy array indexed ``[z, y, x]``: ``z`` the slice index (sorted along the
  slice normal, increasing position), ``y`` the row index, ``x`` the column index.
  CT values are Hounsfield units (rescale slope/intercept already applied once, at load);
  other modalities hold ``stored value * slope + intercept``. dtype is int16 where the rescaled
  values are integers that fit, float32 otherwise. RGB images are ``[z, y, x, 3]`` uint8.
* ``spacing`` is ``(sz, sy, sx)`` in mm, in array-axis order. ``sz`` comes from the sorted
  ImagePositionPatient values, never from SliceThickness.
* ``origin`` is the LPS position (mm) of the centre of voxel ``[0, 0, 0]`` (DICOM PS3.3 C.7.6.2).
* ``direction`` is a 3x3 matrix whose *columns* are LPS unit vectors of the array axes
  ``x`` (ImageOrientationPatient row cosine), ``y`` (IOP column cosine) and ``z`` (the direction
  from one slice to the next; equal to cross(row, col) unless the stack is tilted or reversed).
* ``index_to_lps`` maps ``(z, y, x)`` indices to LPS mm; ``affine_lps`` is the 4x4 matrix for
  ``(x, y, z, 1)`` index columns, which is what NIfTI writers want after LPS→RAS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Volume", "VolumeMeta", "WindowPreset"]


@dataclass(frozen=True)
class WindowPreset:
    """A display window in output units (HU for CT)."""

    name: str
    center: float
    width: float


@dataclass
class VolumeMeta:
    """Header values a viewer shows. Identifying fields are only for display and exports."""

    modality: str = ""
    patient_name: str = ""
    patient_id: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    patient_position: str = ""  # HFS, FFS, HFP ...
    study_instance_uid: str = ""
    study_date: str = ""
    study_description: str = ""
    series_instance_uid: str = ""
    series_number: int | None = None
    series_description: str = ""
    frame_of_reference_uid: str = ""
    body_part: str = ""
    manufacturer: str = ""
    photometric: str = "MONOCHROME2"
    invert: bool = False  # MONOCHROME1: display inverted
    units: str = "HU"  # "HU" for CT, "" (stored value * slope + intercept) otherwise
    window_presets: list[WindowPreset] = field(default_factory=list)  # from the header
    slice_thickness: float | None = None
    # one entry per z slice: SOPInstanceUID and, for multi-frame sources, the frame number (1-based)
    sop_instance_uids: list[str] = field(default_factory=list)
    frame_numbers: list[int | None] = field(default_factory=list)
    sop_class_uid: str = ""
    source_files: list[str] = field(default_factory=list)  # one per z slice
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Volume:
    """A 3-D image in patient (LPS) space. See the module docstring for conventions."""

    voxels: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    meta: VolumeMeta = field(default_factory=VolumeMeta)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.voxels.ndim not in (3, 4):
            raise ValueError(f"Volume voxels must be [z, y, x] (or [z, y, x, 3]), got shape {self.voxels.shape}")
        self.direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]
        self.origin = tuple(float(o) for o in self.origin)  # type: ignore[assignment]
        if any(s <= 0 for s in self.spacing):
            raise ValueError(f"Volume spacing must be > 0 mm, got {self.spacing}")

    # ------------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, int, int]:
        """``(nz, ny, nx)``."""
        return tuple(self.voxels.shape[:3])  # type: ignore[return-value]

    @property
    def is_rgb(self) -> bool:
        return self.voxels.ndim == 4

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL (mm³ / 1000)."""
        sz, sy, sx = self.spacing
        return sz * sy * sx / 1000.0

    def affine_lps(self) -> np.ndarray:
        """4x4 matrix mapping ``(x, y, z, 1)`` indices to LPS mm."""
        sz, sy, sx = self.spacing
        a = np.eye(4)
        a[:3, :3] = self.direction * np.array([sx, sy, sz])[None, :]
        a[:3, 3] = self.origin
        return a

    def affine_ras(self) -> np.ndarray:
        """4x4 matrix mapping ``(x, y, z, 1)`` indices to RAS mm (NIfTI convention)."""
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ self.affine_lps()

    def index_to_lps(self, z: float, y: float, x: float) -> np.ndarray:
        """LPS position (mm) of the (possibly fractional) voxel index ``(z, y, x)``."""
        return self.affine_lps()[:3] @ np.array([x, y, z, 1.0])

    def lps_to_index(self, point: np.ndarray) -> np.ndarray:
        """Fractional ``(z, y, x)`` index of an LPS point (mm)."""
        xyz = np.linalg.solve(self.affine_lps(), np.append(np.asarray(point, float), 1.0))[:3]
        return xyz[::-1]

    def slice_position(self, z: int) -> float:
        """Signed position of slice ``z`` along the slice normal, in mm (what viewers show)."""
        normal = np.cross(self.direction[:, 0], self.direction[:, 1])
        return float(np.dot(self.index_to_lps(z, 0, 0), normal))

    def with_voxels(self, voxels: np.ndarray) -> Volume:
        """A new Volume on the same grid with other voxels (e.g. a label map)."""
        if voxels.shape[:3] != self.shape:
            raise ValueError(f"voxels shape {voxels.shape} does not match volume grid {self.shape}")
        return Volume(voxels, self.spacing, self.origin, self.direction.copy(), self.meta, list(self.warnings))
