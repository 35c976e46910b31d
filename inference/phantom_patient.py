"""Random patient anatomy for the chest phantom (all lengths in mm, patient coordinates).

Coordinates: x runs patient right -> left (image left -> right in radiological display), y runs
anterior -> posterior (image top -> bottom), z runs cranial -> caudal; z = 0 is the lower neck /
shoulder level and z = ``length`` the upper abdomen below the lung bases. ``z_frac = z / length``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from inference.phantom_tubes import Segments

__all__ = ["Patient", "Lesion", "Blob", "sample_patient", "sample_lesion"]


@dataclass
class Blob:
    """A lobulated 3D blob: centre (x, y, z) mm, mean radius mm, lobulation bumps.

    ``bumps`` is [k, 4]: unit direction (3) and relative amplitude; the radius towards direction
    u is ``radius * (1 + sum_k amp_k * exp((u . v_k - 1) / width))``.
    """

    centre: np.ndarray
    radius: float
    bumps: np.ndarray
    width: float = 0.25
    axes: np.ndarray = field(default_factory=lambda: np.ones(3, np.float32))


@dataclass
class Lesion:
    """A nodule or mass: ``blob`` shape, ``hu`` solid density, ``kind`` solid|part_solid|ggo."""

    blob: Blob
    hu: float
    kind: str
    core: Blob | None = None  # solid core of a part-solid lesion
    spicules: Segments | None = None

    @property
    def diameter_mm(self) -> float:
        return float(2 * self.blob.radius)


@dataclass
class Patient:
    """Everything that stays constant across the slices of one synthetic patient."""

    length: float  # craniocaudal extent, mm
    sex: str
    A: float  # body half-width (x)
    Ba: float  # anterior half-depth
    Bp: float  # posterior half-depth (back rests on the table at y = Bp)
    fat: float  # subcutaneous fat, mm
    muscle: float
    harmonics: np.ndarray  # [k, 3] (order, amplitude, phase) body outline wobble
    z_apex: float
    z_carina: float
    z_dome_r: float
    z_dome_l: float
    recess: float  # costophrenic recess depth below the dome, mm
    lung_hu: float
    lung_grad: float  # HU added at the dependent (posterior) edge
    contrast: bool
    blood_hu: float
    heart: np.ndarray  # (x, y, a, b, angle_deg, z_top, z_bottom)
    spine_y: float
    spine_r: float
    vert_pitch: float
    vert_phase: float
    rib_pitch: float
    rib_phase: float
    rib_drop: float
    arms_down: bool
    breasts: np.ndarray | None  # (dx, dy, rx, ry) or None
    hilum_r: np.ndarray
    hilum_l: np.ndarray
    mediastinal: Segments  # great vessels (blood)
    airways_main: Segments  # trachea + main bronchi (air, NOT lung)
    vessels: Segments  # intrapulmonary vessels (blood)
    airways: Segments  # intrapulmonary airways (air with walls, lung label)
    esophagus: Segments
    table: dict
    stomach: np.ndarray  # (x, y, rx, ry, z_top, z_len, air_frac)
    effusion: tuple[float, float] | None  # (side -1 right / +1 left, fluid depth mm)
    patches: list[tuple[Blob, float]]  # ground glass / consolidation (blob, HU), label lung
    lesions: list[Lesion]
    emphysema: float
    seed: int
    wall_lat: float = 30.0  # lateral chest wall thickness (skin..pleura), mm
    wall_ant: float = 25.0
    gutter: float = 0.0  # extra depth of the posterior paravertebral gutters, mm
    post_recess: float = 0.0  # deeper posterior recess: the dome falls 1 + post_recess/recess times faster behind its top (0: off)
    cav_dx: float = 0.0
    dome_cx: float = 45.0
    dome_cy: float = -5.0
    dome_rx: float = 95.0
    dome_ry: float = 110.0
    med_x: float = 2.0
    med_w: float = 40.0  # mediastinal half-width at the arch / pulmonary artery level, mm
    arm_gap: float = 5.0  # mm of air between arm and chest wall (negative: skin contact)
    eso_air: bool = False
    fissures: np.ndarray | None = (
        None  # [2, 3]: per side (z at posterior top, z at anterior bottom, bow mm)
    )


def _u(rng: np.random.Generator, a: float, b: float) -> float:
    return float(rng.uniform(a, b))


def sample_blob(
    rng: np.random.Generator, centre: np.ndarray, radius: float, lobulation: float
) -> Blob:
    """A lobulated blob with ``lobulation`` in [0, 1] (0 = sphere-like)."""
    k = int(rng.integers(3, 9))
    v = rng.normal(size=(k, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    amp = rng.uniform(-0.25, 0.45, size=(k, 1)) * lobulation
    axes = rng.uniform(0.8, 1.2, size=3).astype(np.float32)
    return Blob(
        np.asarray(centre, np.float32),
        float(radius),
        np.hstack([v, amp]).astype(np.float32),
        width=_u(rng, 0.12, 0.4),
        axes=axes,
    )


def sample_lesion(
    rng: np.random.Generator, centre: np.ndarray, diameter: float | None = None
) -> Lesion:
    """A nodule/mass centred at ``centre`` (mm) of random size, shape and density."""
    if diameter is None:
        diameter = float(np.exp(rng.uniform(np.log(3.0), np.log(60.0))))
    r = diameter / 2
    kind = rng.choice(["solid", "solid", "solid", "part_solid", "ggo"])
    lob = _u(rng, 0.0, 1.0) if diameter > 8 else _u(rng, 0.0, 0.3)
    blob = sample_blob(rng, centre, r, lob)
    core = None
    if kind == "solid":
        hu = _u(rng, -20, 70)
    elif kind == "ggo":
        hu = _u(rng, -550, -120)
    else:
        hu = _u(rng, -550, -250)
        core = sample_blob(
            rng, np.asarray(centre) + rng.normal(0, r * 0.15, 3), r * _u(rng, 0.3, 0.6), 0.3
        )
    spic = None
    if kind != "ggo" and diameter > 8 and rng.random() < 0.35:
        n = int(rng.integers(6, 20))
        d = rng.normal(size=(n, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        p0 = np.asarray(centre)[None] + d * r * 0.8
        p1 = p0 + d * rng.uniform(0.4, 1.2, size=(n, 1)) * r
        spic = Segments(p0, p1, rng.uniform(0.4, 1.2, size=n))
    return Lesion(blob, hu, str(kind), core, spic)


def sample_patient(
    rng: np.random.Generator,
    *,
    length: float | None = None,
    tree_points: int = 5000,
    patch_rate: float = 0.6,
    effusion_prob: float = 0.12,
    emphysema_prob: float = 0.2,
    z_focus: float | None = None,
    posterior_recess: float = 0.0,
) -> Patient:
    """Draw one random patient (sex, size, anatomy landmarks, vessel trees, pathology).

    ``tree_points`` attractor points per lung set the density of the vessel trees (~4 segments
    per point). ``patch_rate`` is the mean number of ground-glass/consolidation patches (Poisson),
    ``effusion_prob`` and ``emphysema_prob`` the chances of a pleural effusion and emphysema.
    ``z_focus`` (mm) grows the vessel trees only towards lung within 60 mm of that level (2D slices:
    same look near the slice, a fraction of the cost).
    ``posterior_recess`` > 0 makes the diaphragm fall up to that many times faster behind the dome
    tops (``post_recess`` / ``recess``), so that slices below the tops show the convex back of the
    liver/spleen inside a thick posterior lung band, as on real CT (0: off, no random draw).
    """
    from inference.phantom_vessels import lung_trees, mediastinum

    seed = int(rng.integers(0, 2**31 - 1))
    sex = "F" if rng.random() < 0.45 else "M"
    L = float(length) if length is not None else _u(rng, 290, 370)
    scale = _u(rng, 0.86, 1.1) * (0.93 if sex == "F" else 1.0)
    obese = rng.random() ** 2.5
    A = 160 * scale * _u(rng, 0.92, 1.06) + 30 * obese
    Bp = A * _u(rng, 0.58, 0.8) + 10 * obese
    Ba = Bp * _u(rng, 0.9, 1.1) + 15 * obese
    fat = 3 + 38 * obese * _u(rng, 0.6, 1.0) + _u(rng, 0, 6) + (4 if sex == "F" else 0)
    muscle = _u(rng, 6, 13) * (1.15 if sex == "M" else 0.9)
    harm = np.stack([np.arange(2, 6), rng.normal(0, 0.01, 4), rng.uniform(0, 2 * np.pi, 4)], 1)
    z_apex = L * _u(rng, 0.07, 0.15)
    z_dome_r = L * _u(rng, 0.68, 0.79)
    z_dome_l = z_dome_r + L * _u(rng, 0.0, 0.05)
    recess = L * _u(rng, 0.09, 0.15)
    z_carina = L * _u(rng, 0.36, 0.45)
    contrast = rng.random() < 0.45
    blood = _u(rng, 150, 330) if contrast else _u(rng, 30, 55)
    spine_r = _u(rng, 13, 17) * scale
    spine_y = Bp - fat - _u(rng, 45, 60) * scale
    wall_lat = fat + muscle + _u(rng, 10, 16)
    wall_ant = fat * 0.8 + muscle + _u(rng, 10, 18)
    B_in = (Ba + Bp) / 2 - wall_ant
    heart_top = z_carina + L * _u(rng, 0.05, 0.1)
    hb = z_dome_l + L * _u(rng, 0.0, 0.04)
    hs = _u(rng, 0.82, 1.18) * scale
    heart = np.array(
        [
            _u(rng, 2, 18),
            -B_in * _u(rng, 0.22, 0.4),
            62 * hs,
            46 * hs,
            _u(rng, 25, 50),
            heart_top,
            hb,
        ]
    )
    hil_r = np.array([-_u(rng, 38, 50), _u(rng, 0, 15), z_carina + L * _u(rng, 0.03, 0.07)])
    hil_l = np.array([_u(rng, 38, 50), _u(rng, 0, 15), z_carina + L * _u(rng, 0.01, 0.05)])
    q = dict(
        L=L,
        z_carina=z_carina,
        spine_y=spine_y,
        spine_r=spine_r,
        heart_top=heart_top,
        hilum_r=hil_r,
        hilum_l=hil_l,
        z_dome_r=z_dome_r,
    )
    med, air_main, eso = mediastinum(rng, q)
    breasts = None
    if sex == "F" and rng.random() < 0.85:
        bs = _u(rng, 0.5, 1.15) * (1 + 0.5 * obese)
        breasts = np.array([_u(rng, 0.38, 0.55) * A, _u(rng, 0.0, 0.2) * Ba, 55 * bs, 36 * bs])
    table = dict(
        style=int(rng.integers(0, 3)),
        foam=_u(rng, 5, 60) if rng.random() < 0.85 else 0.0,
        foam_hu=_u(rng, -960, -750),
        sink=_u(rng, 0, 25),
        width=_u(rng, 420, 520),
        curve=_u(rng, 0, 35),
        shell=_u(rng, 2.0, 4.0),
        core=_u(rng, 10, 40),
        shell_hu=_u(rng, 150, 700),
        blanket=rng.random() < 0.5,
        blanket_gap=_u(rng, 0, 10),
    )
    stomach = np.array(
        [
            _u(rng, 40, 80),
            -_u(rng, 10, 50),
            _u(rng, 35, 60),
            _u(rng, 30, 55),
            z_dome_l + _u(rng, 3, 15),
            L * _u(rng, 0.15, 0.3),
            _u(rng, 0.05, 0.7),
        ]
    )
    effusion = None
    if rng.random() < effusion_prob:
        effusion = (float(rng.choice([-1, 1])), _u(rng, 10, 60))
    patches: list[tuple[Blob, float]] = []
    for _ in range(int(rng.poisson(patch_rate))):
        # a patch = cluster of small blobs (irregular, lobar-ish); consolidation mostly dependent
        side = rng.choice([-1, 1])
        cons = rng.random() < 0.35
        yc = _u(rng, 0.2, 0.8) * B_in if cons else _u(rng, -0.5, 0.8) * B_in
        c = np.array([side * _u(rng, 40, A * 0.55), yc, _u(rng, z_apex + 30, z_dome_r + 10)])
        hu = _u(rng, -60, 50) if cons else _u(rng, -720, -380)
        spread = _u(rng, 8, 30)
        for _k in range(int(rng.integers(2, 7))):
            cc = c + rng.normal(0, spread, 3) * np.array([1.0, 0.7, 1.0])
            patches.append((sample_blob(rng, cc, _u(rng, 7, 24), 1.0), hu))
    empty = Segments(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0))
    p = Patient(
        length=L,
        sex=sex,
        A=A,
        Ba=Ba,
        Bp=Bp,
        fat=fat,
        muscle=muscle,
        harmonics=harm,
        z_apex=z_apex,
        z_carina=z_carina,
        z_dome_r=z_dome_r,
        z_dome_l=z_dome_l,
        recess=recess,
        lung_hu=_u(rng, -905, -790),
        lung_grad=_u(rng, 20, 110),
        contrast=contrast,
        blood_hu=blood,
        heart=heart,
        spine_y=spine_y,
        spine_r=spine_r,
        vert_pitch=_u(rng, 24, 30),
        vert_phase=_u(rng, 0, 1),
        rib_pitch=_u(rng, 24, 32),
        rib_phase=_u(rng, 0, 1),
        rib_drop=_u(rng, 130, 200),
        arms_down=bool(rng.random() < 0.35),
        breasts=breasts,
        hilum_r=hil_r,
        hilum_l=hil_l,
        mediastinal=med,
        airways_main=air_main,
        vessels=empty,
        airways=empty,
        esophagus=eso,
        table=table,
        stomach=stomach,
        effusion=effusion,
        patches=patches,
        lesions=[],
        emphysema=_u(rng, 0, 1) if rng.random() < emphysema_prob else 0.0,
        seed=seed,
        wall_lat=wall_lat,
        wall_ant=wall_ant,
        gutter=_u(rng, 0, 12),
        cav_dx=_u(rng, -5, 5),
        dome_cx=_u(rng, 35, 55),
        dome_cy=_u(rng, -20, 5),
        dome_rx=_u(rng, 0.42, 0.55) * A,
        dome_ry=_u(rng, 0.7, 0.9) * Bp,
        med_x=_u(rng, -2, 6),
    )
    p.arm_gap = _u(rng, -6, 18)
    p.med_w = _u(rng, 24, 42)
    p.eso_air = bool(rng.random() < 0.4)
    p.fissures = np.array(
        [
            [
                z_carina - L * _u(rng, 0.02, 0.1),
                z_dome_r + L * _u(rng, 0.0, 0.05),
                _u(rng, -15, 15),
            ],
            [
                z_carina - L * _u(rng, 0.05, 0.12),
                z_dome_l + L * _u(rng, 0.0, 0.05),
                _u(rng, -15, 15),
            ],
        ]
    )
    if p.emphysema > 0.4:  # apical bullae: air spaces that are still lung
        for _k in range(int(rng.integers(1, 5))):
            side = rng.choice([-1, 1])
            c = np.array([side * _u(rng, 40, 90), _u(rng, -30, 40), z_apex + _u(rng, 10, 60)])
            p.patches.append((sample_blob(rng, c, _u(rng, 6, 25), 0.3), -995.0))
    if posterior_recess > 0:  # before the trees: they grow into the lung this shape makes
        p.post_recess = recess * _u(rng, 0.15, 1.0) * posterior_recess
    p.vessels, p.airways = lung_trees(rng, p, tree_points, z_focus)
    return p
