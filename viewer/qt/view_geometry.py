"""How a view axis maps volume indices to a screen plane (Qt-free maths used by the slice view).

Axis 0 (axial) shows ``voxels[z]`` as ``[y, x]``; axis 1 (coronal) ``voxels[:, y]`` as ``[z, x]``;
axis 2 (sagittal) ``voxels[:, :, x]`` as ``[z, y]``. For axes 1 and 2 the rows are flipped when the
slice direction points to the head, so that superior is up. Pixel aspect comes from the spacing,
so coronal/sagittal views of thick-slice CT are not squashed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from viewer.measure import plane_spacing
from viewer.state import cut
from viewer.volume import Volume

__all__ = ["PlaneGeometry", "orientation_letters"]


def _letters(v: np.ndarray) -> str:
    """Orientation letters of an LPS direction: dominant first, components > 0.3 only."""
    pos, neg = "LPH", "RAF"
    order = np.argsort(-np.abs(v))
    out = ""
    for i in order:
        if abs(v[i]) > 0.3:
            out += pos[i] if v[i] > 0 else neg[i]
    return out


def orientation_letters(right: np.ndarray, down: np.ndarray) -> dict[str, str]:
    """Letters for the four screen edges given the LPS vectors of screen-right and screen-down."""
    right, down = np.asarray(right, float), np.asarray(down, float)
    return {
        "right": _letters(right),
        "left": _letters(-right),
        "bottom": _letters(down),
        "top": _letters(-down),
    }


@dataclass
class PlaneGeometry:
    """Geometry of view ``axis`` for ``volume``."""

    volume: Volume
    axis: int

    @property
    def flip_rows(self) -> bool:
        return self.axis != 0 and self.volume.direction[2, 2] > 0

    @property
    def shape(self) -> tuple[int, int]:
        nz, ny, nx = self.volume.shape
        return ((ny, nx), (nz, nx), (nz, ny))[self.axis]

    @property
    def spacing(self) -> tuple[float, float]:
        """(row_mm, col_mm) of the screen plane."""
        return plane_spacing(self.volume.spacing, self.axis)

    def plane(self, index: int, array: np.ndarray | None = None) -> np.ndarray:
        """The plane at ``index`` (of ``array``, default the voxels), rows flipped for display."""
        p = cut(self.volume.voxels if array is None else array, self.axis, index)
        return p[::-1] if self.flip_rows else p

    def display_to_voxel(self, index: int, row: float, col: float) -> tuple[float, float, float]:
        """Screen-plane (row, col) → volume (z, y, x) (fractional)."""
        nrows = self.shape[0]
        r = (nrows - 1 - row) if self.flip_rows else row
        if self.axis == 0:
            return (float(index), r, col)
        if self.axis == 1:
            return (r, float(index), col)
        return (r, col, float(index))

    def voxel_to_display(self, z: float, y: float, x: float) -> tuple[float, float]:
        """Volume (z, y, x) → screen-plane (row, col)."""
        r, c = ((y, x), (z, x), (z, y))[self.axis]
        if self.flip_rows:
            r = self.shape[0] - 1 - r
        return r, c

    def array_rc(self, row: float) -> float:
        """Screen-plane row → row of the unflipped plane (what measurements store)."""
        return (self.shape[0] - 1 - row) if self.flip_rows else row

    def screen_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """LPS unit vectors of screen-right and screen-down."""
        d = self.volume.direction
        right = d[:, 0] if self.axis in (0, 1) else d[:, 1]
        down = d[:, 1] if self.axis == 0 else d[:, 2]
        if self.flip_rows:
            down = -down
        return right, down

    def letters(self) -> dict[str, str]:
        return orientation_letters(*self.screen_vectors())

    def plane_name(self) -> str:
        """The anatomical plane actually shown ("axial", "coronal", "sagittal", or "oblique"),
        from the direction cosines: a sagittal acquisition's first view is a sagittal plane."""
        right, down = self.screen_vectors()
        normal = np.abs(np.cross(right, down))
        k = int(np.argmax(normal))
        if normal[k] < 0.8:
            return "oblique"
        return ("sagittal", "coronal", "axial")[k]
