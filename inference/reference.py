"""Classical lung masks for evaluating the model on real CT (no learning, no torch, no viewer).

:func:`classical_lungs` on a HU volume ``[z, y, x]`` in canonical LPS-axial layout (columns →
patient left, rows → posterior, z either way):

1. **Body**: per slice, ``HU > -500`` closed by ~3 mm, the largest component (the table, sheets and
   outside-body air are separate), holes filled.
2. **Air in the body**: ``HU < -400`` inside the body, opened by one pixel.
3. **Airways**: the trachea is found as the most central, round, small air component in the most
   superior slices containing air; it and the main bronchi are grown in 3D with the stricter
   lumen threshold ``HU < -900`` for a limited number of steps (so the growth does not run into
   the parenchyma), dilated by one voxel and removed.
4. **Lungs**: 3D connected components of the remaining air; components below 2 % of the largest
   (bowel/stomach gas, small pockets) are dropped; at most two are kept.
5. **Holes** (vessels, nodules inside the lung) filled per slice.
6. **Right/left split**: with two components, the one whose centroid lies at smaller column index
   is the right lung (label 1). With one component (lungs touching at the anterior junction),
   each slice is split at the column of least lung in the central third of the mask.

Labels: 0 background, 1 right lung, 2 left lung. The result is a *reference*, not ground truth:
it includes dense consolidation only when enclosed, misses juxtapleural tumour, and is inspected
visually in ``docs/model.md``.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
from scipy import ndimage as ndi

__all__ = ["body_mask", "classical_lungs", "split_left_right"]

log = logging.getLogger(__name__)


def _disk(radius_px: int) -> np.ndarray:
    r = max(1, int(radius_px))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def body_mask(hu: np.ndarray, spacing_yx: tuple[float, float], threshold: float = -500.0) -> np.ndarray:
    """Per-slice body mask (bool ``[z, y, x]``): largest component of ``HU > threshold``, holes filled."""
    out = np.zeros(hu.shape, bool)
    k = _disk(round(3.0 / min(spacing_yx)))
    for z in range(hu.shape[0]):
        m = cv2.morphologyEx((hu[z] > threshold).astype(np.uint8), cv2.MORPH_CLOSE, k)
        n, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=4)
        if n <= 1:
            continue
        big = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        out[z] = ndi.binary_fill_holes(lab == big)
    return out


def _trachea_seed(air: np.ndarray, spacing_yx: tuple[float, float], superior_first: bool) -> np.ndarray | None:
    """A 3D seed mask of the trachea: a small, central, round air component near the top slices."""
    zs = range(air.shape[0]) if superior_first else range(air.shape[0] - 1, -1, -1)
    px_area = spacing_yx[0] * spacing_yx[1]
    h, w = air.shape[1:]
    for z in list(zs)[: max(3, air.shape[0] // 4)]:
        n, lab, stats, cents = cv2.connectedComponentsWithStats(air[z].astype(np.uint8), connectivity=8)
        best, best_d = None, 1e9
        for i in range(1, n):
            area_mm2 = stats[i, cv2.CC_STAT_AREA] * px_area
            if not 40 <= area_mm2 <= 700:
                continue
            bw, bh = stats[i, cv2.CC_STAT_WIDTH], stats[i, cv2.CC_STAT_HEIGHT]
            if max(bw, bh) > 2.5 * min(bw, bh):
                continue
            d = abs(cents[i][0] - w / 2) / w + abs(cents[i][1] - h * 0.45) / h
            if d < 0.18 and d < best_d:
                best, best_d = i, d
        if best is not None:
            seed = np.zeros(air.shape, bool)
            seed[z] = lab == best
            return seed
    return None


def _airways(hu: np.ndarray, air: np.ndarray, spacing: tuple[float, float, float], superior_first: bool,
             lumen_hu: float = -900.0, max_mm: float = 90.0) -> np.ndarray:
    seed = _trachea_seed(air, spacing[1:], superior_first)
    if seed is None:
        return np.zeros(air.shape, bool)
    lumen = (hu < lumen_hu) & air
    steps = int(max_mm / min(spacing))
    grown = ndi.binary_dilation(seed, iterations=steps, mask=lumen)
    # a leak into the parenchyma shows as a sudden jump in volume; cap at a plausible airway volume
    if grown.sum() * np.prod(spacing) > 80_000:  # mm³ (trachea + main bronchi ≈ 30-60 mL)
        grown = ndi.binary_dilation(seed, iterations=max(1, steps // 3), mask=lumen)
    return ndi.binary_dilation(grown, iterations=1) & air


def split_left_right(lungs: np.ndarray) -> np.ndarray:
    """Label a lung mask (bool ``[z, y, x]``) 1 = right (image left), 2 = left (image right)."""
    lab3, n = ndi.label(lungs)
    out = np.zeros(lungs.shape, np.uint8)
    if n == 0:
        return out
    sizes = ndi.sum_labels(np.ones_like(lab3), lab3, index=np.arange(1, n + 1))
    order = np.argsort(sizes)[::-1] + 1
    if n >= 2 and sizes[order[1] - 1] > 0.2 * sizes[order[0] - 1]:
        a, b = order[0], order[1]
        ca = ndi.center_of_mass(lab3 == a)[2]
        cb = ndi.center_of_mass(lab3 == b)[2]
        right, left = (a, b) if ca < cb else (b, a)
        out[lab3 == right] = 1
        out[lab3 == left] = 2
        return out
    m = lab3 == order[0]
    for z in range(m.shape[0]):
        cols = m[z].sum(0)
        nz = np.flatnonzero(cols)
        if nz.size == 0:
            continue
        lo, hi = nz[0] + (nz[-1] - nz[0]) // 3, nz[0] + 2 * (nz[-1] - nz[0]) // 3
        cut = lo + int(np.argmin(cols[lo : hi + 1])) if hi > lo else (nz[0] + nz[-1]) // 2
        out[z, :, :cut][m[z, :, :cut]] = 1
        out[z, :, cut:][m[z, :, cut:]] = 2
    return out


def classical_lungs(
    hu: np.ndarray, spacing: tuple[float, float, float], *, superior_first: bool = True,
    threshold: float = -400.0,
) -> np.ndarray:
    """Reference lung labels (uint8 ``[z, y, x]``: 0, 1 right, 2 left) from HU; see the module docstring.

    Parameters
    ----------
    hu : ndarray
        HU volume ``[z, y, x]`` (any numeric dtype), canonical LPS-axial in-plane layout.
    spacing : (sz, sy, sx)
        Voxel spacing in mm.
    superior_first : bool
        True when slice 0 is the most superior (where the trachea search starts).
    """
    hu = np.asarray(hu)
    body = body_mask(hu, spacing[1:])
    air = (hu < threshold) & body
    k1 = np.ones((1, 3, 3), bool)
    air = ndi.binary_opening(air, structure=k1)
    air &= ~_airways(hu, air, spacing, superior_first)
    lab3, n = ndi.label(air)
    if n == 0:
        return np.zeros(hu.shape, np.uint8)
    sizes = ndi.sum_labels(np.ones_like(lab3), lab3, index=np.arange(1, n + 1))
    keep = [i + 1 for i in np.argsort(sizes)[::-1][:2] if sizes[i] >= 0.02 * sizes.max()]
    # a "lung" must reach a plausible volume (stomach gas alone is not lungs)
    vox_ml = float(np.prod(spacing)) / 1000.0
    keep = [i for i in keep if sizes[i - 1] * vox_ml > 40.0]
    lab = split_left_right(np.isin(lab3, keep))
    for z in range(lab.shape[0]):
        for v in (1, 2):
            m = lab[z] == v
            if m.any():
                lab[z][ndi.binary_fill_holes(m) & (lab[z] == 0)] = v
    return lab
