"""Where each frame of a stack goes in the output volume, and the volume geometry. No Qt.

:func:`plan_layout` turns a stack's frames into a list of z slots (``None`` for a missing slice
on the regular grid), the spacing ``(sz, sy, sx)`` mm, the LPS origin of voxel ``[0, 0, 0]`` and
the direction matrix (columns: row cosine, column cosine, unit slice step), plus warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from viewer.dicom.geometry import analyse_positions, orientation_label
from viewer.dicom.records import FrameRecord

__all__ = ["SliceLayout", "plan_layout"]


@dataclass
class SliceLayout:
    records: list[FrameRecord | None]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    warnings: list[str] = field(default_factory=list)
    failed: set[int] = field(default_factory=set)

    @property
    def nz(self) -> int:
        return len(self.records)

    @property
    def missing(self) -> list[int]:
        return [z for z, r in enumerate(self.records) if r is None]

    @property
    def middle(self) -> int:
        """z of the present slice nearest the middle of the stack."""
        present = [z for z, r in enumerate(self.records) if r is not None]
        return present[len(present) // 2]

    def blank(self, z: int) -> None:
        """Mark slice ``z`` as failed (it will be filled like a missing slice)."""
        self.failed.add(z)


def _positive(v: float | None, default: float = 1.0) -> float:
    return float(v) if v is not None and v > 0 else default


def plan_layout(stack) -> SliceLayout:  # noqa: ANN001 - viewer.dicom.scan.Stack (import cycle)
    """Sort and place the frames of ``stack``; see the module docstring."""
    frames: list[FrameRecord] = list(stack.frames)
    f0 = frames[0]
    ps = f0.pixel_spacing or (0.0, 0.0)
    sy, sx = _positive(ps[0]), _positive(ps[1])
    warnings: list[str] = []
    if f0.pixel_spacing is None or min(ps) <= 0:
        warnings.append(
            "no PixelSpacing (0028,0030): 1 mm pixels assumed; distances are not calibrated"
        )
    if any(f.position is None or f.orientation is None for f in frames):
        frames.sort(key=lambda f: (f.instance_number or 0, f.frame or 0))
        warnings.append(
            "no ImagePositionPatient/ImageOrientationPatient: frames stacked in instance/frame "
            "order with 1 mm (or SliceThickness) steps; patient coordinates are unknown"
        )
        sz = _positive(f0.slice_thickness)
        return SliceLayout(list(frames), (sz, sy, sx), (0.0, 0.0, 0.0), np.eye(3), warnings)
    iop = np.asarray(f0.orientation, dtype=np.float64).reshape(2, 3)
    row, col = iop[0] / np.linalg.norm(iop[0]), iop[1] / np.linalg.norm(iop[1])
    geo = analyse_positions(
        np.array([f.position for f in frames]), f0.orientation, slice_thickness=f0.slice_thickness
    )
    ordered = [frames[i] for i in geo.order]
    warnings.extend(geo.warnings)
    records: list[FrameRecord | None] = [None] * geo.n_grid
    for g, f in zip(geo.grid_index.tolist(), ordered, strict=True):
        records[g] = f
    step = float(np.linalg.norm(geo.step_vector))
    zdir = geo.step_vector / step
    label = orientation_label(f0.orientation)
    if label != "axial" and len(frames) > 1:
        warnings.append(
            f"non-axial stack ({label}): array axes follow the acquisition plane, not "
            "the patient's axial plane"
        )
    header_tilt = float(f0.gantry_tilt or 0.0)
    if header_tilt and not geo.tilt_deg:
        warnings.append(
            f"GantryDetectorTilt is {header_tilt:g}° but the slice positions are not sheared "
            "(already corrected by the scanner); no correction applied"
        )
    origin = tuple(float(v) for v in ordered[0].position)  # type: ignore[arg-type]
    direction = np.column_stack([row, col, zdir])
    return SliceLayout(records, (step, sy, sx), origin, direction, warnings)  # type: ignore[arg-type]
