"""Slice geometry from DICOM positions (PS3.3 C.7.6.2). Pure numpy, no Qt, no pydicom.

Rules (DESIGN.md rule 4): slice normal = cross(IOP row, IOP column); slices sorted by
ImagePositionPatient projected on the normal; spacing from the sorted positions, never from
SliceThickness. Missing slices (steps that are whole multiples of the regular step) are reported
as gaps so the loader can insert blank slices and keep the grid exact; other irregular steps and
gantry tilt (a slice step not parallel to the normal) are reported as warnings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["slice_normal", "orientation_label", "StackGeometry", "analyse_positions"]

REL_TOL = 0.05  # steps within 5 % of the regular step count as regular
ABS_TOL_MM = 0.02  # ... or within 0.02 mm
TILT_TOL_DEG = 0.05  # step/normal angles below this are rounding, not tilt
MAX_FILL = 8  # at most max(n_slices, MAX_FILL) missing slices are filled with blank slices


def slice_normal(iop: Sequence[float]) -> np.ndarray:
    """Unit normal ``cross(row, col)`` of an ImageOrientationPatient (6 values, LPS)."""
    a = np.asarray(iop, dtype=np.float64).reshape(2, 3)
    row = a[0] / np.linalg.norm(a[0])
    col = a[1] / np.linalg.norm(a[1])
    n = np.cross(row, col)
    return n / np.linalg.norm(n)


def orientation_label(iop: Sequence[float] | None) -> str:
    """``"axial"``, ``"coronal"``, ``"sagittal"``, ``"oblique"`` (within ~8°), or ``""`` if
    unknown."""
    if iop is None:
        return ""
    n = np.abs(slice_normal(iop))
    axis = int(np.argmax(n))
    if n[axis] < 0.99:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


@dataclass
class StackGeometry:
    """Result of :func:`analyse_positions`.

    Attributes
    ----------
    order : indices that sort the input positions along the normal (ascending).
    distances : sorted positions along the normal, mm.
    step : the regular slice step, mm (> 0); nominal for irregular stacks (mean step).
    step_vector : LPS vector from one slice to the next (length ``step``), mm.
    tilt_deg : angle between ``step_vector`` and the normal, degrees (0 unless tilted).
    grid_index : for each sorted input slice, its index on the regular grid (gaps skip indices).
    irregular : steps are neither regular nor whole multiples of the regular step.
    max_error_mm : largest distance of a slice from its grid position, mm.
    warnings : human-readable warnings (gaps, irregular spacing, tilt).
    """

    order: np.ndarray
    distances: np.ndarray
    step: float
    step_vector: np.ndarray
    tilt_deg: float = 0.0
    grid_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    irregular: bool = False
    max_error_mm: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def n_grid(self) -> int:
        """Number of slices on the regular grid (input slices plus missing ones)."""
        return int(self.grid_index[-1]) + 1 if len(self.grid_index) else 0

    @property
    def missing(self) -> list[int]:
        """Grid indices with no slice (missing slices)."""
        have = set(self.grid_index.tolist())
        return [i for i in range(self.n_grid) if i not in have]


def analyse_positions(
    positions: np.ndarray, iop: Sequence[float], *, slice_thickness: float | None = None
) -> StackGeometry:
    """Sort slices along the normal and derive step, gaps and tilt.

    Parameters
    ----------
    positions : [n, 3] ImagePositionPatient per slice (LPS mm), any order.
    iop : ImageOrientationPatient shared by the slices.
    slice_thickness : used only for a single slice (spacing unknown otherwise), mm.
    """
    pos = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    n = len(pos)
    normal = slice_normal(iop)
    dist = pos @ normal
    order = np.argsort(dist, kind="stable")
    d = dist[order]
    p = pos[order]
    warnings: list[str] = []
    if n == 1:
        step = float(slice_thickness) if slice_thickness and slice_thickness > 0 else 1.0
        warnings.append(
            "single slice: slice spacing unknown, using "
            f"{'SliceThickness' if slice_thickness else 'a default of'} "
            f"{step:g} mm for the third axis"
        )
        return StackGeometry(
            order, d, step, normal * step, grid_index=np.zeros(1, dtype=int), warnings=warnings
        )
    steps = np.diff(d)
    if np.any(steps <= ABS_TOL_MM):
        raise ValueError(
            "several slices share one position; split duplicates before analysing geometry"
        )
    regular = float(np.median(steps))
    # a gap-free neighbour step is the best estimate of the regular step
    small = steps[np.abs(steps - steps.min()) <= np.maximum(REL_TOL * steps.min(), ABS_TOL_MM)]
    regular = float(np.mean(small)) if len(small) > len(steps) / 3 else regular
    ratio = steps / regular
    k = np.maximum(np.rint(ratio), 1).astype(int)
    on_grid = np.abs(steps - k * regular) <= np.maximum(REL_TOL * regular, ABS_TOL_MM)
    # filling gaps is sensible for a few missing slices, not for a handful of far-apart images
    irregular = not bool(np.all(on_grid)) or int(np.sum(k - 1)) > max(n, MAX_FILL)
    if irregular:
        k = np.ones_like(k)
        step = float((d[-1] - d[0]) / (n - 1))
    else:
        step = float(np.sum(steps) / np.sum(k))
    grid = np.concatenate([[0], np.cumsum(k)])
    # slice step vector from a least-squares fit of position against grid index (tilt-aware)
    g = grid.astype(np.float64)
    gc = g - g.mean()
    vec = (gc[:, None] * (p - p.mean(axis=0))).sum(axis=0) / float((gc**2).sum())
    cosang = abs(float(vec @ normal)) / float(np.linalg.norm(vec))
    tilt = float(np.degrees(np.arccos(min(1.0, cosang))))
    if tilt <= TILT_TOL_DEG:
        tilt = 0.0
        vec = normal * step
    fitted = p[0] + g[:, None] * vec[None, :]
    max_err = float(np.max(np.linalg.norm(p - fitted, axis=1)))
    if tilt:
        warnings.append(
            f"gantry tilt: slices are offset by {tilt:.2f}° from the slice normal; the volume "
            "keeps the "
            f"true slice step ({np.linalg.norm(vec):.3f} mm) so patient coordinates are exact, but "
            "axes are not orthogonal (viewers that ignore shear show the anatomy sheared)"
        )
    missing = int(grid[-1] + 1 - n)
    if missing and not irregular:
        where = [f"{d[i]:.2f}..{d[i + 1]:.2f} mm" for i in np.nonzero(k > 1)[0][:5]]
        warnings.append(
            f"missing slices: {missing} slice(s) absent on a regular {step:.3f} mm grid (between "
            f"{', '.join(where)}); blank slices are inserted so every slice keeps its true position"
        )
    if irregular:
        warnings.append(
            f"irregular slice spacing: steps vary from {steps.min():.3f} to {steps.max():.3f} "
            "mm; the "
            f"volume uses the mean step {step:.3f} mm, so slices are off by up to {max_err:.3f} mm"
        )
    return StackGeometry(
        order,
        d,
        abs(float(np.linalg.norm(vec))) if tilt else step,
        vec,
        tilt,
        grid,
        irregular,
        max_err,
        warnings,
    )
