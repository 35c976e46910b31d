"""Random patient anatomy for the chest phantom (all lengths in mm, patient coordinates).

Coordinates: x runs patient right -> left (image left -> right in radiological display), y runs
anterior -> posterior (image top -> bottom), z runs cranial -> caudal; z = 0 is the lower neck /
shoulder level and z = ``length`` the upper abdomen below the lung bases. ``z_frac = z / length``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from inference.phantom_tubes import Segments, attractor_tree, concat_segments

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


def _lung_points(
    rng: np.random.Generator, p: Patient, side: int, n: int, z_focus: float | None = None
) -> np.ndarray:
    """Random points inside one lung (rejection sampling against ``lung_predicate``): ``n`` over the
    whole lung, or the same density restricted to 60 mm around ``z_focus``."""
    from inference.phantom_shapes import lung_predicate

    out = [np.zeros((0, 3))]
    got = 0
    z0, z1 = p.z_apex, max(p.z_dome_r, p.z_dome_l) + p.recess * 1.3
    if z_focus is not None:
        a, b = max(z0, z_focus - 60), min(z1, z_focus + 60)
        if b <= a:
            return out[0]
        n = int(n * (b - a) / (z1 - z0))
        z0, z1 = a, b
    for _ in range(8):
        m = n * 3
        x = side * rng.uniform(5, p.A, m)
        y = rng.uniform(-p.Ba, p.Bp, m)
        z = rng.uniform(z0, z1, m)
        ok = lung_predicate(p, x, y, z)
        q = np.stack([x[ok], y[ok], z[ok]], 1)
        out.append(q)
        got += len(q)
        if got >= n:
            break
    return np.concatenate(out)[:n]


def _lung_trees(
    rng: np.random.Generator,
    p: Patient,
    side: int,
    hilum: np.ndarray,
    n_pts: int,
    z_focus: float | None = None,
) -> tuple[Segments, Segments]:
    """Arterial and venous trees and the airways of one lung, rooted at its hilum."""
    pts = _lung_points(rng, p, side, n_pts, z_focus)
    half = rng.random(len(pts)) < 0.5
    art = attractor_tree(rng, hilum, pts[half], r_leaf=_u(rng, 0.28, 0.36))
    vroot = hilum + np.array([-side * 10.0, _u(rng, 8, 18), _u(rng, 15, 30)])
    ven = attractor_tree(rng, vroot, pts[~half], r_leaf=_u(rng, 0.28, 0.36))
    big = (art.r >= 1.1) & (art.gen >= 1)
    v = art.p1[big] - art.p0[big]
    perp = np.cross(v, rng.normal(size=3))
    perp /= np.linalg.norm(perp, axis=1, keepdims=True) + 1e-9
    off = perp * (art.r[big] * 1.9 + 0.8)[:, None]
    air = Segments(
        art.p0[big] + off, art.p1[big] + off, art.r[big] * _u(rng, 0.8, 1.1), art.gen[big]
    )
    return concat_segments([art, ven]), air


def _mediastinum(rng: np.random.Generator, q: dict) -> tuple[Segments, Segments, Segments]:
    """Great vessels, trachea/main bronchi, oesophagus as segment chains."""
    L, car = q["L"], q["z_carina"]
    z_arch = car - _u(rng, 25, 45)
    aorta_r = _u(rng, 11, 17)
    sy, sr = q["spine_y"], q["spine_r"]
    hz = q["heart_top"]
    asc0 = np.array([_u(rng, -2, 8), _u(rng, -25, -10), hz + 35])
    asc1 = np.array([_u(rng, -12, -2), _u(rng, -35, -20), z_arch + 8])
    arch_mid = np.array([_u(rng, 0, 10), _u(rng, -10, 5), z_arch])
    desc0 = np.array([sr * 0.6 + aorta_r * 0.8, sy - sr * 0.7, z_arch + 10])
    desc1 = np.array([sr * 0.5 + aorta_r * 0.6, sy - sr * 1.0, L * 0.8])
    desc2 = np.array([_u(rng, 0, 6), sy - sr - aorta_r * 0.9, L * 1.1])
    ao = [
        (asc0, asc1, aorta_r),
        (asc1, arch_mid, aorta_r * 0.95),
        (arch_mid, desc0, aorta_r * 0.9),
        (desc0, desc1, aorta_r * 0.85),
        (desc1, desc2, aorta_r * 0.8),
    ]
    # supra-aortic branches and brachiocephalic veins / SVC
    br = [
        (arch_mid + [-12, -8, 0], [-25, -12, -20], _u(rng, 5, 7)),
        (arch_mid + [0, 0, 0], [-8, -18, -20], 4.0),
        (arch_mid + [10, 5, 0], [20, -5, -20], 4.5),
        ([-28, -20, z_arch + 30], [-30, -15, hz + 20], _u(rng, 7, 10)),
        ([-28, -20, z_arch + 30], [-35, -18, -20], 6.5),
        ([-28, -20, z_arch + 5], [20, -25, z_arch - 15], 5.0),
    ]
    pa0 = np.array([_u(rng, 12, 25), _u(rng, -40, -25), hz + 25])
    pab = np.array([_u(rng, 8, 18), _u(rng, -15, -5), car + 12])
    par = q["hilum_r"]
    pal = q["hilum_l"]
    pa_r = aorta_r * _u(rng, 0.85, 1.15)
    pa = [
        (pa0, pab, pa_r),
        (pab, pal + [-8, 0, -2], pa_r * 0.75),
        (pab, par + [10, -5, 0], pa_r * 0.7),
        (pal + [-8, 0, -2], pal, pa_r * 0.6),
        (par + [10, -5, 0], par, pa_r * 0.6),
    ]
    # pulmonary veins into the left atrium (posterior heart)
    la = np.array([_u(rng, 0, 15), _u(rng, 0, 15), hz + _u(rng, 15, 30)])
    pv = [(la, par + [0, 15, 15], 6.5), (la, pal + [0, 15, 15], 6.5)]
    ivc = [(np.array([-15, sy - sr - 15, L * 1.1]), np.array([-18, 5, q["z_dome_r"] - 5]), 12.0)]
    seg = ao + br + pa + pv + ivc
    vessels = Segments(
        np.array([s[0] for s in seg]), np.array([s[1] for s in seg]), np.array([s[2] for s in seg])
    )
    # trachea and main bronchi
    tr_r = _u(rng, 8, 11)
    ty = sy - sr - _u(rng, 22, 32)
    tr0 = np.array([_u(rng, -3, 3), ty - 8, -30])
    tr1 = np.array([_u(rng, -3, 3), ty + 5, car])
    rb = np.array([par[0] + 12, par[1], car + _u(rng, 15, 28)])
    lb = np.array([pal[0] - 12, pal[1], car + _u(rng, 22, 38)])
    air = Segments(
        np.array([tr0, tr1, tr1]),
        np.array([tr1, rb, lb]),
        np.array([tr_r, tr_r * 0.72, tr_r * 0.66]),
    )
    es = Segments(
        np.array([[6, ty + 18, -30], [8, ty + 20, car]]),
        np.array([[8, ty + 20, car], [18, sy - sr - 8, L * 0.95]]),
        np.array([_u(rng, 6, 9)] * 2),
    )
    return vessels, air, es


def sample_patient(
    rng: np.random.Generator,
    *,
    length: float | None = None,
    tree_points: int = 3500,
    patch_rate: float = 0.6,
    effusion_prob: float = 0.12,
    emphysema_prob: float = 0.2,
    z_focus: float | None = None,
) -> Patient:
    """Draw one random patient (sex, size, anatomy landmarks, vessel trees, pathology).

    ``tree_points`` attractor points per lung set the density of the vessel trees (~4 segments
    per point). ``patch_rate`` is the mean number of ground-glass/consolidation patches (Poisson),
    ``effusion_prob`` and ``emphysema_prob`` the chances of a pleural effusion and emphysema.
    ``z_focus`` (mm) grows the vessel trees only towards lung within 60 mm of that level (2D slices:
    same look near the slice, a fraction of the cost).
    """
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
    med, air_main, eso = _mediastinum(rng, q)
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
        lung_hu=_u(rng, -890, -800),
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
    p.med_w = _u(rng, 30, 50)
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
    vr, ar = _lung_trees(rng, p, -1, hil_r, tree_points, z_focus)
    vl, al = _lung_trees(rng, p, +1, hil_l, tree_points, z_focus)
    p.vessels = concat_segments([vr, vl])
    p.airways = concat_segments([ar, al])
    return p
