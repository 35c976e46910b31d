"""Synthetic chest CT phantoms with labels, for training and testing the lung/lesion model.

Labels: 0 background (incl. trachea/main bronchi, stomach/bowel gas, effusion, table, mattress),
1 RIGHT lung, 2 LEFT lung, 3 lesion (nodule/mass voxels inside the lung).

Image convention (radiological display, head-first supine, LPS): array columns run patient right
-> left (the right lung is on the image LEFT), rows anterior -> posterior; volumes are ``[z, y, x]``
with index 0 the most cranial slice. HU are float32 clipped to [-1024, 3071].

See ``docs/phantom.md`` for what is simulated and the known gaps. The anatomy lives in
``phantom_patient`` (random patient), ``phantom_render`` (one thin plane), ``phantom_tubes``
(vessel/airway trees) and ``phantom_post`` (kernel, noise, FOV).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from inference.jobs import CancelCheck, Progress, check_cancel, report
from inference.phantom_grid import Grid, Tex, make_grid
from inference.phantom_lesions import place_lesions
from inference.phantom_patient import Patient, sample_patient
from inference.phantom_post import Scanner, apply_scanner, sample_scanner
from inference.phantom_render import render_base, render_plane, render_tubes

__all__ = [
    "PhantomConfig",
    "generate_slice",
    "generate_volume",
    "generate_dataset",
    "slice_for_index",
    "LABELS",
]

log = logging.getLogger(__name__)

LABELS = {0: "background", 1: "right lung", 2: "left lung", 3: "lesion"}


@dataclass
class PhantomConfig:
    """Randomisation ranges of the generator.

    Attributes
    ----------
    size : int
        Image size (pixels, square) used by ``generate_dataset`` when no size is given
        (``generate_slice`` takes its own ``size``, default 256).
    fov_range_mm : tuple[float, float]
        Reconstruction field of view drawn when no spacing is given (spacing = fov / size).
    lesion_prob : float
        Probability that a 2D slice gets lesions placed in its lungs.
    max_lesions : int
        Maximum number of lesions per 2D slice (1..max).
    motion_prob : float
        Chance that a slice at the lung bases (z_frac >= 0.6) is blurred by breathing motion: the slab
        is rendered ``motion_mm`` thicker than the nominal slice (the domes, vessels and lesions are
        smeared along z; labels by majority over the slab; noise of the nominal thickness).
    motion_mm : tuple[float, float]
        Range of that extra craniocaudal smear (mm).
    hilar_prob : float
        Chance that a lesion is a large (25-75 mm) central mass on the medial lung border near the
        hilum, reaching into the mediastinum (only at perihilar levels; elsewhere the other kinds).
    max_sub_slices : int
        Upper bound on sub-slices averaged for thick-slice partial volume in ``generate_slice``
        (speed vs realism; volumes use ``max_sub_slices_volume``).
    max_sub_slices_volume : int
        Same for ``generate_volume``.
    offset_mm : float
        Maximum patient shift from the image centre (mm, x and y).
    roll_deg : float
        Maximum patient roll about the z axis (degrees).
    lung_free_fraction : float
        Fraction of random-z slices drawn below the lungs (upper abdomen) or above the apices.
    base_fraction : float
        Fraction of random-z slices drawn at the lung bases/domes (the hardest region).
    patch_rate, effusion_prob, emphysema_prob : float
        Pathology other than lesions: mean number of ground-glass/consolidation patches (labelled
        lung), chance of a pleural effusion (not lung), chance of emphysema.
    tree_points : int
        Attractor points per lung for the vessel trees (density vs speed).
    posterior_recess : float
        The diaphragm falls up to ``1 + posterior_recess`` times faster behind the dome tops (a
        random fraction per patient): thick posterior basal lung bands around the convex back of the
        liver/spleen, as on real CT; 0 (default) off, no random draw.
    """

    size: int = 256
    fov_range_mm: tuple[float, float] = (300.0, 480.0)
    lesion_prob: float = 0.6
    max_lesions: int = 3
    hilar_prob: float = 0.15
    motion_prob: float = 0.0
    motion_mm: tuple[float, float] = (3.0, 12.0)
    max_sub_slices: int = 3
    max_sub_slices_volume: int = 5
    offset_mm: float = 25.0
    roll_deg: float = 5.0
    lung_free_fraction: float = 0.15
    base_fraction: float = 0.25
    patch_rate: float = 0.6
    effusion_prob: float = 0.12
    emphysema_prob: float = 0.2
    tree_points: int = 5000
    posterior_recess: float = 0.0

    def patient_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``phantom_patient.sample_patient``."""
        return {
            "patch_rate": self.patch_rate,
            "effusion_prob": self.effusion_prob,
            "emphysema_prob": self.emphysema_prob,
            "tree_points": self.tree_points,
            "posterior_recess": self.posterior_recess,
        }


def _sample_z_frac(rng: np.random.Generator, cfg: PhantomConfig) -> float:
    r = rng.random()
    if r < cfg.lung_free_fraction:
        return (
            float(rng.uniform(0.0, 0.08)) if rng.random() < 0.35 else float(rng.uniform(0.93, 1.0))
        )
    if r < cfg.lung_free_fraction + cfg.base_fraction:
        return float(rng.uniform(0.66, 0.93))
    return float(rng.uniform(0.08, 0.7))


def _render_slab(
    p: Patient, g: Grid, z: float, thick: float, n_sub: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average ``n_sub`` thin planes across the slab; labels by majority of occupancy."""
    n_sub = max(1, n_sub)
    dz = thick / n_sub
    tubes = render_tubes(p, g, z, thick)
    tex = Tex(rng, g.X.shape)
    base = render_base(p, g, z, tex, thick)
    acc = fr = fl = fles = body = None
    for i in range(n_sub):
        zi = z - thick / 2 + (i + 0.5) * dz
        hu, side, les, b = render_plane(p, g, zi, tubes, tex, base)
        if acc is None:
            acc, fr, fl, fles, body = (
                hu,
                (side == 1).astype(np.float32),
                (side == 2).astype(np.float32),
                les,
                b,
            )
        else:
            acc += hu
            fr += side == 1
            fl += side == 2
            fles += les
            body |= b
    acc /= n_sub
    lab = np.zeros(acc.shape, np.uint8)
    lab[fr >= 0.5 * n_sub] = 1
    lab[fl >= 0.5 * n_sub] = 2
    lab[fles >= 0.5 * n_sub] = 3
    return acc, lab, body


def generate_slice(
    rng: np.random.Generator,
    *,
    size: int = 256,
    spacing_mm: float | None = None,
    z_frac: float | None = None,
    config: PhantomConfig | None = None,
    lesions: int | None = None,
    return_info: bool = False,
    context: int = 0,
    context_gap_mm: float | None = None,
) -> tuple[np.ndarray, np.ndarray, float] | tuple[np.ndarray, np.ndarray, float, dict[str, Any]]:
    """One random axial chest CT slice of a new random patient.

    Parameters
    ----------
    rng : np.random.Generator
        Source of all randomness (same state -> identical output).
    size : int
        Image size in pixels (square).
    spacing_mm : float, optional
        Pixel size (mm); default ``fov / size`` with a random FOV from ``config.fov_range_mm``.
    z_frac : float, optional
        Craniocaudal position in [0, 1]: 0 lower neck, ~0.12 apex, ~0.45 hila, ~0.75-0.9 domes
        and bases, 1 upper abdomen without lung. None: random, weighted to include bases and
        lung-free slices.
    config : PhantomConfig, optional
        Randomisation ranges.
    lesions : int, optional
        Number of lesions to try to place (None: random per ``config``).
    return_info : bool
        Also return a dict with patient/scanner parameters.
    context : int
        For 2.5D input: also render ``context`` neighbouring slices on each side (same patient,
        scanner and grid); ``hu`` is then ``[2 * context + 1, size, size]`` ordered cranial ->
        caudal with the labelled slice in the middle. 0 (default): a single 2D slice.
    context_gap_mm : float, optional
        Centre-to-centre distance of the context slices (default: the slice thickness drawn).

    Returns
    -------
    hu : np.ndarray
        float32 [size, size] Hounsfield units, rows anterior -> posterior, columns patient right
        -> left ([2 * context + 1, size, size] with ``context``).
    labels : np.ndarray
        uint8 [size, size] in {0, 1, 2, 3} (of the middle slice).
    spacing_mm : float
        Pixel size used (mm).
    """
    cfg = config or PhantomConfig()
    if spacing_mm is None:
        spacing_mm = float(rng.uniform(*cfg.fov_range_mm)) / size
    zf = _sample_z_frac(rng, cfg) if z_frac is None else float(z_frac)
    length = float(rng.uniform(290, 370))
    p = sample_patient(rng, length=length, z_focus=zf * length, **cfg.patient_kwargs())
    sc = sample_scanner(rng, spacing_mm)
    if zf < 0.15 and p.arms_down:  # photon starvation between the shoulders
        sc.streaks = max(sc.streaks, float(rng.uniform(10, 50)))
    off = rng.uniform(-cfg.offset_mm, cfg.offset_mm, 2)
    off[1] *= 0.5
    g = make_grid(
        size,
        spacing_mm,
        (float(off[0]), float(off[1])),
        float(rng.uniform(-cfg.roll_deg, cfg.roll_deg)),
    )
    z = zf * p.length
    if lesions is None:
        lesions = int(rng.integers(1, cfg.max_lesions + 1)) if rng.random() < cfg.lesion_prob else 0
    if lesions:
        place_lesions(p, g, rng, [z], lesions, cfg.hilar_prob)
    slab, max_sub = sc.thickness_mm, cfg.max_sub_slices
    if cfg.motion_prob > 0 and zf >= 0.6 and rng.random() < cfg.motion_prob:  # no draw when off
        slab += float(rng.uniform(*cfg.motion_mm))
        max_sub += 3  # a smooth smear, not a few ghost copies
    n_sub = min(max_sub, max(1, math.ceil(slab / 2.5)))
    hu, lab, body = _render_slab(p, g, z, slab, n_sub, rng)
    hu = apply_scanner(hu, body, sc, spacing_mm, rng)
    if context > 0:
        gap = float(context_gap_mm) if context_gap_mm is not None else sc.thickness_mm
        stack = []
        for j in range(-int(context), int(context) + 1):
            if j == 0:
                stack.append(hu)
                continue
            h, _, b = _render_slab(p, g, z + j * gap, slab, n_sub, rng)
            stack.append(apply_scanner(h, b, sc, spacing_mm, rng))
        hu = np.stack(stack)
    if return_info:
        return hu, lab, float(spacing_mm), _info(p, sc, zf=zf)
    return hu, lab, float(spacing_mm)


def _info(p: Patient, sc: Scanner, **extra: Any) -> dict[str, Any]:
    return {
        "sex": p.sex,
        "body_width_mm": 2 * p.A,
        "body_depth_mm": p.Ba + p.Bp,
        "trunk_length_mm": p.length,
        "contrast": p.contrast,
        "arms_down": p.arms_down,
        "effusion": p.effusion,
        "kernel": sc.kernel,
        "noise_hu": sc.noise_hu,
        "thickness_mm": sc.thickness_mm,
        "lesions": [
            {
                "centre_mm": [float(v) for v in les.blob.centre],
                "diameter_mm": les.diameter_mm,
                "kind": les.kind,
                "hu": les.hu,
            }
            for les in p.lesions
        ],
        **extra,
    }


def generate_volume(
    rng: np.random.Generator,
    *,
    shape: tuple[int, int, int] = (40, 256, 256),
    spacing: tuple[float, float, float] = (5.0, 1.4, 1.4),
    z_range: tuple[float, float] = (0.05, 0.95),
    config: PhantomConfig | None = None,
    lesions: int | None = None,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """A coherent 3D synthetic chest CT: one patient, contiguous slices, 3D lesions.

    Parameters
    ----------
    rng : np.random.Generator
        Source of all randomness.
    shape : tuple
        (nz, ny, nx) voxels; index 0 is the most cranial slice.
    spacing : tuple
        (sz, sy, sx) mm; slice thickness = sz (contiguous slices, partial volume simulated).
        In-plane pixels are square with size sx.
    z_range : tuple
        Craniocaudal coverage as fractions of the trunk (see ``generate_slice``). The patient's
        trunk length is chosen so that ``nz * sz`` covers this range when plausible (260-420 mm);
        otherwise the slices are centred on the range and keep the requested spacing.
    config : PhantomConfig, optional
        Randomisation ranges.
    lesions : int, optional
        Number of lesions (None: 0-3 at random).
    progress, cancel : callable, optional
        Job protocol (``inference.jobs``): ``progress(done, total, message)`` per slice;
        ``cancel()`` polled per slice raises ``Cancelled``.

    Returns
    -------
    hu : np.ndarray
        float32 [nz, ny, nx] HU.
    labels : np.ndarray
        uint8 [nz, ny, nx] in {0, 1, 2, 3}.
    info : dict
        ``lesions`` (centre_zyx voxel indices, diameter_mm, kind, hu), ``z_frac`` per slice,
        ``spacing``, patient and scanner parameters.
    """
    cfg = config or PhantomConfig()
    nz, ny, nx = shape
    sz, _, sx = spacing
    z0f, z1f = z_range
    L = float(np.clip(sz * max(nz - 1, 1) / max(z1f - z0f, 1e-3), 260, 420))
    p = sample_patient(rng, length=L, **cfg.patient_kwargs())
    sc = sample_scanner(rng, sx)
    sc.thickness_mm = sz
    sc.noise_hu = float(np.clip(sc.noise_hu * np.sqrt(max(sc.thickness_mm, 0.5) / sz), 3, 150))
    off = rng.uniform(-cfg.offset_mm, cfg.offset_mm, 2)
    g = make_grid(
        nx,
        sx,
        (float(off[0]), float(off[1]) * 0.5),
        float(rng.uniform(-cfg.roll_deg, cfg.roll_deg)),
        ny=ny,
    )
    zc = (z0f + z1f) / 2 * L
    zs = [zc + (k - (nz - 1) / 2) * sz for k in range(nz)]
    n_les = int(rng.integers(0, 4)) if lesions is None else int(lesions)
    if n_les:
        lung_z = [z for z in zs if p.z_apex + 10 < z < p.z_dome_r + 0.5 * p.recess] or zs
        place_lesions(p, g, rng, lung_z, n_les, cfg.hilar_prob)
    n_sub = min(cfg.max_sub_slices_volume, max(1, math.ceil(sz / 1.5)))
    hu = np.empty((nz, ny, nx), np.float32)
    lab = np.empty((nz, ny, nx), np.uint8)
    for k, z in enumerate(zs):
        check_cancel(cancel)
        report(progress, k, nz, "phantom slices")
        h, lb, body = _render_slab(p, g, z, sz, n_sub, rng)
        hu[k] = apply_scanner(h, body, sc, sx, rng)
        lab[k] = lb
    report(progress, nz, nz, "phantom slices")
    a, b, c, d, e, f = g.to_px
    les_info = []
    for les in p.lesions:
        x, y, z = (float(v) for v in les.blob.centre)
        les_info.append(
            {
                "centre_zyx": [(z - zs[0]) / sz, d * x + e * y + f, a * x + b * y + c],
                "diameter_mm": les.diameter_mm,
                "kind": les.kind,
                "hu": les.hu,
            }
        )
    info = _info(
        p,
        sc,
        z_frac=[z / L for z in zs],
        spacing=tuple(float(v) for v in spacing),
        convention="index 0 most cranial; columns patient right->left; rows anterior->posterior",
    )
    info["lesions"] = les_info
    return hu, lab, info


def slice_for_index(seed: int, index: int, **kwargs: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """Sample ``index`` of the deterministic stream ``seed`` (independent of other indices; handy
    for DataLoader workers). ``kwargs`` go to ``generate_slice``."""
    return generate_slice(np.random.default_rng([int(seed), int(index)]), **kwargs)  # type: ignore[return-value]


def generate_dataset(
    seed: int,
    n: int,
    *,
    size: int | None = None,
    spacing_mm: float | None = None,
    z_frac: float | None = None,
    config: PhantomConfig | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` independent random slices, deterministic for ``seed``.

    Sample ``i`` is ``slice_for_index(seed, i, ...)``, so any subset can be regenerated alone.
    ``size`` defaults to ``config.size`` (256); the other arguments are as in ``generate_slice``.

    Returns
    -------
    hu : np.ndarray
        float32 [n, size, size].
    labels : np.ndarray
        uint8 [n, size, size].
    spacing : np.ndarray
        float32 [n] pixel sizes (mm).
    """
    size = int(size if size is not None else (config or PhantomConfig()).size)
    hu = np.empty((n, size, size), np.float32)
    lab = np.empty((n, size, size), np.uint8)
    sp = np.empty(n, np.float32)
    for i in range(n):
        hu[i], lab[i], sp[i] = slice_for_index(
            seed, i, size=size, spacing_mm=spacing_mm, z_frac=z_frac, config=config
        )
    return hu, lab, sp
