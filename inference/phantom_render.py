"""Render one thin axial plane of a phantom patient: HU before blur/noise, lung and lesion maps.

Everything is evaluated on a pixel grid in patient millimetres (see ``phantom_patient``):
implicit shapes (super-ellipses, distance-to-skin layers, diaphragm dome height functions,
periodic rib/vertebra phases) plus tubes drawn with ``phantom_tubes.draw_segments``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from inference.phantom_patient import Blob, Patient
from inference.phantom_tubes import Segments, draw_segments

__all__ = ["Grid", "make_grid", "render_plane", "blob_fraction", "smooth_noise"]

_F = np.float32


@dataclass
class Grid:
    """Pixel grid in patient mm: ``X``, ``Y`` [n, n]; ``to_px`` affine for ``draw_segments``."""

    X: np.ndarray
    Y: np.ndarray
    spacing: float
    to_px: tuple[float, float, float, float, float, float]
    th: np.ndarray  # atan2(Y, X)


def make_grid(n: int, spacing: float, offset: tuple[float, float] = (0.0, 0.0), angle_deg: float = 0.0,
              ny: int | None = None) -> Grid:
    """Grid of ``ny`` x ``n`` pixels of ``spacing`` mm; the patient is shifted by ``offset`` (mm, x/y)
    and rolled by ``angle_deg`` about the z axis."""
    ny = n if ny is None else ny
    cols = (np.arange(n, dtype=_F) - (n - 1) / 2) * spacing
    rows = (np.arange(ny, dtype=_F) - (ny - 1) / 2) * spacing
    gx, gy = np.meshgrid(cols - offset[0], rows - offset[1])
    a = np.deg2rad(angle_deg)
    ca, sa = np.cos(a), np.sin(a)
    X = (ca * gx + sa * gy).astype(_F)
    Y = (-sa * gx + ca * gy).astype(_F)
    # inverse: gx = ca*X - sa*Y ; col = (gx + off_x)/s + (n-1)/2
    s = spacing
    to_px = (ca / s, -sa / s, offset[0] / s + (n - 1) / 2, sa / s, ca / s, offset[1] / s + (ny - 1) / 2)
    return Grid(X, Y, spacing, to_px, np.arctan2(Y, X).astype(_F))


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian-filtered white noise (float32)."""
    w = rng.standard_normal(shape, dtype=_F)
    if sigma_px > 0.3:
        w = cv2.GaussianBlur(w, (0, 0), sigma_px)
    return w / (w.std() + 1e-6)


def blob_fraction(g: Grid, b: Blob, z: float, edge_mm: float = 0.8) -> np.ndarray | None:
    """Soft occupancy [0, 1] of blob ``b`` in plane ``z`` (None when the plane misses it)."""
    rmax = b.radius * (1 + max(0.0, float(b.bumps[:, 3].max(initial=0))) + 0.05) * float(b.axes.max())
    dzp = (z - b.centre[2]) / b.axes[2]
    if abs(z - b.centre[2]) > rmax:
        return None
    dx = (g.X - b.centre[0]) / b.axes[0]
    dy = (g.Y - b.centre[1]) / b.axes[1]
    box = (np.abs(g.X - b.centre[0]) < rmax + 2) & (np.abs(g.Y - b.centre[1]) < rmax + 2)
    if not box.any():
        return None
    dxb, dyb = dx[box], dy[box]
    rr = np.sqrt(dxb * dxb + dyb * dyb + dzp * dzp) + 1e-6
    u = np.stack([dxb / rr, dyb / rr, np.full_like(rr, dzp) / rr], 1)
    fac = 1 + (np.exp((u @ b.bumps[:, :3].T - 1) / b.width) * b.bumps[:, 3]).sum(1)
    out = np.zeros(g.X.shape, _F)
    out[box] = np.clip((b.radius * fac - rr) / edge_mm + 0.5, 0, 1)
    return out


def _smoothstep(a: float, b: float, x: np.ndarray | float) -> np.ndarray | float:
    t = np.clip((np.asarray(x, _F) - a) / (b - a), 0, 1)
    return t * t * (3 - 2 * t)


def _tube_map(g: Grid, segs: Segments, z: float, dz: float, **kw: float) -> np.ndarray:
    m = np.zeros(g.X.shape, _F)
    draw_segments(m, segs, z, dz, g.to_px, g.spacing, **kw)
    return m


def _body(p: Patient, g: Grid, z: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Torso mask (bool), outline radius field, A_z, Ba_z."""
    zf = z / p.length
    A = p.A * (1 + 0.07 * float(_smoothstep(0.12, 0.0, zf))) * (1 - 0.05 * float(_smoothstep(0.85, 1.05, zf)))
    Ba = p.Ba * (0.86 + 0.14 * float(_smoothstep(0.0, 0.55, zf)))
    X, Y = g.X, g.Y
    wob = np.ones_like(X)
    for k, amp, ph in p.harmonics:
        wob += amp * np.cos(k * g.th + ph)
    yn = np.where(Y < 0, Y / Ba, Y / p.Bp)
    pe = np.where(Y < 0, _F(2.2), _F(3.4))
    rb = (np.abs(X / A) ** pe + np.abs(yn) ** pe) ** (1 / pe) / wob
    return rb <= 1, rb, A, Ba


def render_plane(p: Patient, g: Grid, z: float, dz: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """HU (no blur/noise), lung side map (0/1 right/2 left), lesion occupancy, body mask at ``z``.

    Parameters
    ----------
    p : Patient
        Anatomy.
    g : Grid
        Pixel grid.
    z, dz : float
        Plane position and the thickness it represents (mm), used for tube partial volume.
    rng : np.random.Generator
        Texture randomness.

    Returns
    -------
    tuple
        (hu float32, lung uint8 {0,1,2}, lesion float32 [0,1], body bool)
    """
    X, Y, th, s = g.X, g.Y, g.th, g.spacing
    L = p.length
    zf = z / L
    shape = X.shape
    hu = np.full(shape, -1000.0, _F)
    torso, rb, A_z, Ba_z = _body(p, g, z)
    body = torso.copy()
    sc = p.A / 165.0
    # arms (down) and breasts
    if p.arms_down and zf < 0.8:
        for side in (-1, 1):
            ra = 40 * sc * (1 - 0.25 * float(_smoothstep(0.3, 0.8, zf)))
            cx = side * (A_z + ra + 4 + 10 * zf)
            arm = ((X - cx) ** 2 / ra**2 + (Y + 0.1 * p.Bp) ** 2 / (ra * 1.1) ** 2) <= 1
            body |= arm
    if p.breasts is not None:
        zc, hz = 0.47 * L, 0.17 * L
        prof = 1 - ((z - zc) / hz) ** 2
        if prof > 0:
            pr = np.sqrt(prof)
            dx, dy, rx, ry = p.breasts
            for side in (-1, 1):
                e = ((X - side * dx) / (rx * pr)) ** 2 + ((Y + Ba_z * 0.72 - dy) / (ry * pr)) ** 2
                body |= e <= 1
    body_u8 = body.astype(np.uint8)
    dist_b = cv2.distanceTransform(body_u8, cv2.DIST_L2, 3) * s
    dist_in = cv2.distanceTransform(torso.astype(np.uint8), cv2.DIST_L2, 3) * s
    # --- table, mattress, blanket (outside the body) -------------------------------------------
    t = p.table
    out = ~body
    if t["foam"] > 0:
        foam = out & (Y > p.Bp - t["sink"]) & (Y < p.Bp + t["foam"]) & (np.abs(X) < t["width"] / 2)
        hu[foam] = t["foam_hu"] + 25 * smooth_noise(rng, shape, 1.5)[foam]
    ytop = p.Bp + t["foam"] + 3 - t["curve"] * (X / (t["width"] / 2)) ** 2
    dy = Y - ytop
    sh, core = t["shell"], t["core"]
    inw = np.abs(X) < t["width"] / 2
    skin1 = inw & (dy >= 0) & (dy < sh)
    skin2 = inw & (dy >= sh + core) & (dy < 2 * sh + core)
    hu[inw & (dy >= sh) & (dy < sh + core)] = -900
    hu[skin1 | skin2] = t["shell_hu"]
    if t["style"] == 1:
        for side in (-1, 1):
            rail = (np.abs(X - side * t["width"] * 0.38) < 12) & (dy > 2 * sh + core) & (dy < 2 * sh + core + 25)
            hu[rail] = 250
    elif t["style"] == 2:
        low = inw & (dy > 2 * sh + core + 15) & (dy < 2 * sh + core + 18)
        hu[low] = 400
    if t["blanket"]:
        dout = cv2.distanceTransform((~body).astype(np.uint8), cv2.DIST_L2, 3) * s
        gap = t["blanket_gap"] * (0.5 + 0.5 * np.sin(th * 7 + p.seed % 7)) + 0.5
        bl = (dout > gap) & (dout < gap + 3.0) & (Y < p.Bp * 0.3)
        hu[bl] = -250 + 120 * smooth_noise(rng, shape, 1.0)[bl]
    # --- body wall layers ------------------------------------------------------------------------
    fat_th = p.fat * (1 + 0.35 * np.cos(2 * th)) + 1.5
    pect = np.exp(-((th + np.pi / 2 - 0.8) ** 2) / 0.2) + np.exp(-((th + np.pi / 2 + 0.8) ** 2) / 0.2)
    para = 30 * np.exp(-((th - np.pi / 2) ** 2) / 0.12)
    mus_th = p.muscle * (1 + (0.9 if p.sex == "M" else 0.5) * pect * float(_smoothstep(0.05, 0.25, zf))) + para
    hu[body] = -105 + 12 * smooth_noise(rng, shape, 2.0)[body]
    muscle = torso & (dist_in > fat_th)
    hu[muscle] = 45
    # fascia / fat planes between muscles
    wall = fat_th + mus_th + 12
    cavity = dist_in > wall
    hu[muscle & ~cavity & (np.abs(dist_in - fat_th - mus_th * 0.55) < 1.0)] = -60
    if p.breasts is not None:
        glands = body & ~torso & (dist_b > 3)
        hu[glands] = np.where(smooth_noise(rng, shape, 2.0)[glands] > 0.6, 25, -95)
    if p.arms_down:
        arm = body & ~torso
        hu[arm & (dist_b > 8)] = 45
    hu[body & (dist_b < 1.8)] = 30  # skin
    # --- z-dependent thoracic cavity content ----------------------------------------------------
    dome_l = p.z_dome_l + p.recess * np.clip(((X - 45) / 90) ** 2 + ((Y + 10) / (p.Bp * 0.9)) ** 2, 0, 1.6) ** 1.3
    dome_r = p.z_dome_r + p.recess * np.clip(((X + 45) / 90) ** 2 + ((Y + 10) / (p.Bp * 0.9)) ** 2, 0, 1.6) ** 1.3
    dome = np.where(X < 0, dome_r, dome_l) + 0.25 * p.recess * np.clip(Y / p.Bp, 0, 1)
    thorax = cavity & (z < dome)
    abdomen = cavity & ~thorax
    sig = float(np.clip((z - p.z_apex) / (0.28 * L), 0, 1)) ** 0.6
    A_in = A_z - p.fat - p.muscle - 12
    env = np.zeros(shape, bool)
    if sig > 0:
        cy = p.Bp * 0.25 * (1 - sig)
        for side in (-1, 1):
            cx = side * (40 + 30 * sig)
            env |= ((X - cx) / (12 + A_in * 1.1 * sig)) ** 2 + ((Y - cy) / (12 + p.Bp * 1.2 * sig)) ** 2 <= 1
    # mediastinum: spine block, central band, great vessels, heart
    sy, sr = p.spine_y, p.spine_r * (0.85 + 0.3 * zf)
    med = (np.abs(X) < sr + 5) & (Y > sy - sr - 8)
    hw = 10 + 8 * float(_smoothstep(0.1 * L, p.z_carina, z))
    med |= np.abs(X - 3) < hw
    mv = _tube_map(g, p.mediastinal, z, dz)
    mair = _tube_map(g, p.airways_main, z, dz)
    eso = _tube_map(g, p.esophagus, z, dz)
    mvd = _tube_map(g, p.mediastinal, z, dz, radius_add=4.0)
    mad = _tube_map(g, p.airways_main, z, dz, radius_add=3.0)
    med |= (mvd > 0.5) | (mad > 0.5) | (_tube_map(g, p.esophagus, z, dz, radius_add=3.0) > 0.5)
    hx, hy, ha, hb, hang, ztop, zbot = p.heart
    heart = np.zeros(shape, bool)
    heart_in = heart
    if ztop < z < zbot:
        tt = (z - ztop) / (zbot - ztop)
        pr = float(np.sqrt(np.clip(1 - ((tt - 0.62) / 0.66) ** 2, 0, 1)))
        a = np.deg2rad(hang)
        u = (X - hx) * np.cos(a) + (Y - hy) * np.sin(a)
        v = -(X - hx) * np.sin(a) + (Y - hy) * np.cos(a)
        e = (u / (ha * pr + 1e-3)) ** 2 + (v / (hb * pr + 1e-3)) ** 2
        heart = e <= 1
        heart_in = e <= 0.62
        med |= e <= 1.35
    lung = thorax & env & ~med
    hu[cavity] = np.where(zf < 0.5, -85, -95) + 15 * smooth_noise(rng, shape, 1.5)[cavity]
    # neck / thoracic inlet soft tissue above the apices
    if z < p.z_apex + 0.1 * L:
        nk = cavity & ~env & ~med
        hu[nk] = np.where(smooth_noise(rng, shape, 3.0)[nk] > 0, 40, -80)
    # --- abdomen below the domes ------------------------------------------------------------
    if abdomen.any():
        _abdomen(p, g, z, hu, abdomen, rng)
    # --- lung parenchyma ----------------------------------------------------------------------
    dep = np.clip((Y + p.Bp * 0.8) / (p.Bp * 1.5), 0, 1) ** 2
    lhu = p.lung_hu + p.lung_grad * dep + 12 * smooth_noise(rng, shape, 1.2) + 8 * smooth_noise(rng, shape, 4.0)
    if p.emphysema > 0:
        holes = smooth_noise(rng, shape, 2.5) > 1.6 - 0.8 * p.emphysema
        lhu = np.where(holes, -960, lhu)
    hu[lung] = lhu[lung]
    for blob, phu in p.patches:
        f = blob_fraction(g, blob, z, edge_mm=6.0)
        if f is not None:
            f = f * lung
            hu += f * (phu + 30 * smooth_noise(rng, shape, 1.5) - hu)
    # effusion (dependent fluid, NOT lung) with a band of compressed lung above it
    if p.effusion is not None:
        side, depth = p.effusion
        yl = sy + 12 - depth + 0.35 * depth * (X / max(A_in, 1)) ** 2
        sidem = (X * side) > 0
        eff = thorax & sidem & (Y > yl) & ~med
        atel = lung & sidem & (Y > yl - 6) & ~eff
        hu[atel] = -150 + 60 * smooth_noise(rng, shape, 1.0)[atel]
        hu[eff] = 12
        lung &= ~eff
    # intrapulmonary vessels and airways (inside lung only)
    vf = _tube_map(g, p.vessels, z, dz) * lung
    small_blood = p.blood_hu * 0.9 if p.contrast else 40.0
    hu += vf * (small_blood - hu)
    aw = _tube_map(g, p.airways, z, dz, radius_add=0.6) * lung
    hu += aw * (20 - hu)
    al = _tube_map(g, p.airways, z, dz, radius_scale=0.75) * lung
    hu += al * (-985 - hu)
    # --- mediastinal organs -------------------------------------------------------------------
    if heart.any():
        myo = 40 + (60 if p.contrast else 0)
        hu[heart] = myo
        if p.contrast:
            hu[heart_in] = p.blood_hu * 0.95
        hu[heart & ~heart_in & (smooth_noise(rng, shape, 2) > 1.2)] = -90  # epicardial fat
    hu += eso * (35 - hu)
    hu += mv * (p.blood_hu - hu)
    hu += np.clip(mair, 0, 1) * (25 - hu)
    lum = _tube_map(g, p.airways_main, z, dz, radius_scale=0.85)
    hu += lum * (-995 - hu)
    notlung = (mv > 0.5) | (mair > 0.3) | heart
    lung &= ~notlung
    # --- bones ----------------------------------------------------------------------------------
    _bones(p, g, z, hu, dist_in, fat_th, mus_th, wall, cavity, rng)
    # --- lesions --------------------------------------------------------------------------------
    les = np.zeros(shape, _F)
    for lesion in p.lesions:
        f = blob_fraction(g, lesion.blob, z)
        if lesion.spicules is not None:
            sp = _tube_map(g, lesion.spicules, z, dz) * lung
            hu += sp * (lesion.hu - hu)
        if f is None:
            continue
        f = f * (thorax | lung)
        tex = lesion.hu + 18 * smooth_noise(rng, shape, 1.0)
        hu += f * (tex - hu) * (0.85 if lesion.kind != "solid" else 1.0)
        if lesion.core is not None:
            fc = blob_fraction(g, lesion.core, z)
            if fc is not None:
                fc = fc * f
                hu += fc * (_F(30) - hu)
        les = np.maximum(les, f)
    lside = np.where(lung, np.where(X < 0, 1, 2), 0).astype(np.uint8)
    return hu, lside, les, body


def _abdomen(p: Patient, g: Grid, z: float, hu: np.ndarray, abd: np.ndarray, rng: np.random.Generator) -> None:
    X, Y, L = g.X, g.Y, p.length
    shape = X.shape
    # fat with bowel loops
    loops = smooth_noise(rng, shape, 3.5)
    hu[abd] = np.where(loops[abd] > 0.3, 35, -95)
    liv_hu = 110 if p.contrast else 58
    xl = 15 + 45 * np.clip(-Y / p.Bp, 0, 1.2)
    liver = abd & (X < xl) & (z > p.z_dome_r)
    hu[liver] = liv_hu + 8 * smooth_noise(rng, shape, 2.0)[liver]
    if p.contrast:
        hv = smooth_noise(rng, shape, 1.5)
        hu[liver & (np.abs(hv) < 0.08)] = 160
    # spleen
    zs = p.z_dome_l + 10
    if zs < z < zs + 120:
        pr = np.sqrt(max(0.0, 1 - ((z - zs - 60) / 60) ** 2))
        sp = abd & ((((X - p.A * 0.45) / (30 * pr + 1e-3)) ** 2 + ((Y - p.Bp * 0.4) / (55 * pr + 1e-3)) ** 2) <= 1)
        hu[sp] = 120 if p.contrast else 48
    # stomach: fundus just under the left dome; air anterior, mottled food/fluid dependent
    sx, sy, rx, ry, zt, zl, af = p.stomach
    if zt < z < zt + zl:
        pr = np.sqrt(max(0.0, 1 - ((z - zt - zl / 2) / (zl / 2)) ** 2)) ** 0.5
        st = abd & (((X - sx) / (rx * pr + 1e-3)) ** 2 + ((Y - sy) / (ry * pr + 1e-3)) ** 2 <= 1)
        wall_ = st & ~(((X - sx) / (rx * pr - 3 + 1e-3)) ** 2 + ((Y - sy) / (ry * pr - 3 + 1e-3)) ** 2 <= 1)
        level = sy - ry * pr + 2 * ry * pr * af
        food = smooth_noise(rng, shape, 1.2)
        cont = np.where(Y < level, -990, np.where(food > 0.9, -700, 20 + 40 * food))
        hu[st] = cont[st]
        hu[wall_] = 40
    # colon (splenic flexure) with stool and gas bubbles
    if z > p.z_dome_l + 0.1 * L:
        co = abd & (((X - p.A * 0.5) / 25) ** 2 + ((Y + p.Bp * 0.25) / 22) ** 2 <= 1)
        st = smooth_noise(rng, shape, 1.0)
        hu[co] = np.where(st[co] > 0.8, -950, -60 + 50 * st[co])
    # kidneys
    if z > p.z_dome_r + 0.15 * L:
        for side in (-1, 1):
            k = abd & (((X - side * 65) / 28) ** 2 + ((Y - p.spine_y + 5) / 35) ** 2 <= 1)
            hu[k] = 150 if p.contrast else 32


def _bone(hu: np.ndarray, mask: np.ndarray, inner: np.ndarray, cortex: float = 1100, marrow: float = 250) -> None:
    hu[mask] = cortex
    hu[mask & inner] = marrow


def _bones(p: Patient, g: Grid, z: float, hu: np.ndarray, dist_in: np.ndarray, fat_th: np.ndarray,
           mus_th: np.ndarray, wall: np.ndarray, cavity: np.ndarray, rng: np.random.Generator) -> None:
    X, Y, th, L = g.X, g.Y, g.th, p.length
    zf = z / L
    sy, sr = p.spine_y, p.spine_r * (0.85 + 0.3 * zf)
    # ribs: periodic in z, dropping anteriorly; costal cartilage in front
    psi = np.abs((th - np.pi / 2 + np.pi) % (2 * np.pi) - np.pi)  # 0 posterior midline .. pi anterior
    band = (dist_in > wall - 11) & (dist_in < wall - 2) & (np.abs(X) > sr + 4)
    if zf > 0.02:
        drop = p.rib_drop * (0.7 * psi / np.pi + 0.3 * (1 - np.cos(psi)) / 2)
        ph = ((z - drop) / p.rib_pitch + p.rib_phase) % 1.0
        h = 11.0 / p.rib_pitch
        rib = band & (ph < h)
        cart = psi > 2.4
        inner = (np.abs(dist_in - (wall - 6.5)) < 2.2) & (np.abs(ph - h / 2) < h / 2 - 0.08)
        _bone(hu, rib & ~cart, inner, cortex=950, marrow=200)
        hu[rib & cart & (np.abs(X) > 20)] = 130
    # vertebra: body / disc, canal, arch, spinous process
    vp = ((z / p.vert_pitch) + p.vert_phase) % 1.0
    rv = np.sqrt(X**2 + (Y - sy) ** 2)
    vb = rv < sr
    if vp < 0.18:
        hu[vb] = 85
    else:
        _bone(hu, vb, rv < sr - 2.0, cortex=700, marrow=220)
    cy = sy + sr + 8
    rc = np.sqrt(X**2 + (Y - cy) ** 2)
    arch = (rc < 15) & (rc > 8) & (Y > sy + sr - 2)
    if vp > 0.3:
        _bone(hu, arch, np.zeros_like(arch), cortex=900)
        if vp > 0.5:
            spin = (np.abs(X) < 4) & (Y > cy + 10) & (Y < cy + 40)
            hu[spin] = 700
        if 0.35 < vp < 0.7:
            tp = (np.abs(Y - cy + 2) < 5) & (np.abs(X) > 8) & (np.abs(X) < 32)
            hu[tp] = 650
    hu[rc < 7.5] = 15  # spinal canal (CSF/cord)
    # sternum
    if 0.12 * L < z < 0.64 * L:
        ys = -p.Ba + p.fat + p.muscle * 0.6 + 8
        wsx = 24 if z < 0.27 * L else 13
        e = (X / wsx) ** 2 + ((Y - ys) / 7) ** 2
        _bone(hu, e <= 1, e <= 0.5, cortex=800, marrow=180)
    # scapulae (posterolateral plates in the muscle layer)
    if zf < 0.5:
        w = 1 - zf / 0.5
        sc = (np.abs(dist_in - fat_th - 9) < 2.5) & (psi > 0.45) & (psi < 0.45 + 0.75 * w + 0.2)
        hu[sc] = 800
    # clavicles and humeral heads near the top
    if zf < 0.1:
        for side in (-1, 1):
            t0 = np.clip(np.abs(X) / (p.A * 0.85), 0, 1)
            yc = -p.Ba * 0.85 + p.fat + 4 + 40 * t0**2
            cl = (np.abs(Y - yc) < 6) & (np.abs(X) > 15) & (np.abs(X) < p.A * 0.85) & (X * side > 0)
            _bone(hu, cl, np.abs(Y - yc) < 3.5, cortex=900, marrow=250)
            if p.arms_down:
                hh = ((X - side * (p.A * 0.92)) ** 2 + (Y + 8) ** 2) < 22**2
                _bone(hu, hh, ((X - side * (p.A * 0.92)) ** 2 + (Y + 8) ** 2) < 19**2, cortex=800, marrow=150)
    if p.arms_down and 0.1 <= zf < 0.8:
        A_z = p.A * (1 - 0.05 * float(_smoothstep(0.85, 1.05, zf)))
        for side in (-1, 1):
            ra = 40 * p.A / 165 * (1 - 0.25 * float(_smoothstep(0.3, 0.8, zf)))
            cx = side * (A_z + ra + 4 + 10 * zf)
            rr = np.sqrt((X - cx) ** 2 + (Y + 0.1 * p.Bp) ** 2)
            _bone(hu, rr < 11, rr < 7.5, cortex=1200, marrow=-50)
