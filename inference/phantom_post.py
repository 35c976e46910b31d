"""Scanner effects for the chest phantom: reconstruction kernel, noise, streaks, FOV circle."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from inference.phantom_grid import smooth_noise

__all__ = ["Scanner", "sample_scanner", "apply_scanner"]


@dataclass
class Scanner:
    """Acquisition/reconstruction settings of one series.

    Attributes
    ----------
    kernel : str
        ``"soft"`` (B30/B40-like: Gaussian blur, correlated noise) or ``"sharp"`` (B70-like: edge
        enhancement with overshoot, fine-grained noise).
    blur_mm : float
        Gaussian sigma of the system blur (mm).
    sharpen : float
        Unsharp-mask gain (0 for soft kernels).
    noise_hu : float
        Noise standard deviation at the output pixel size (HU).
    thickness_mm : float
        Reconstructed slice thickness (mm); thick slices average sub-slices (partial volume).
    fov_circle : bool
        Whether pixels outside the reconstruction circle are set to the padding value -1024.
    streaks : float
        Amplitude (HU) of photon-starvation streaks (shoulders, arms down).
    """

    kernel: str
    blur_mm: float
    sharpen: float
    noise_hu: float
    thickness_mm: float
    fov_circle: bool
    streaks: float


def sample_scanner(rng: np.random.Generator, spacing_mm: float) -> Scanner:
    """Random kernel/noise/thickness; noise is scaled to the pixel size (coarser = less noise)."""
    sharp = rng.random() < 0.4
    thick = float(rng.choice([0.625, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 5.0, 5.0, 8.0]))
    # noise of a 0.7 mm x 1 mm voxel, reduced by the output voxel size
    base = rng.uniform(40, 120) if sharp else rng.uniform(8, 45)
    noise = base * np.sqrt(0.7 * 0.7 * 1.0 / (spacing_mm**2 * thick))
    noise = float(np.clip(noise, 3.0, 150.0))
    return Scanner(
        kernel="sharp" if sharp else "soft",
        blur_mm=float(rng.uniform(0.3, 0.5) if sharp else rng.uniform(0.5, 1.0)),
        sharpen=float(rng.uniform(0.4, 1.3) if sharp else 0.0),
        noise_hu=noise,
        thickness_mm=thick,
        fov_circle=bool(rng.random() < 0.3),
        streaks=float(rng.uniform(0, 40) if rng.random() < 0.3 else 0.0),
    )


def apply_scanner(
    hu: np.ndarray, body: np.ndarray, sc: Scanner, spacing_mm: float, rng: np.random.Generator
) -> np.ndarray:
    """Blur, sharpen, add correlated noise and streaks, apply the FOV circle; returns float32 HU
    clipped to [-1024, 3071]. ``hu`` is not modified."""
    img = hu.astype(np.float32, copy=True)
    sig = sc.blur_mm / spacing_mm
    if sig > 0.25:
        img = cv2.GaussianBlur(img, (0, 0), sig)
    if sc.sharpen > 0:
        wide = cv2.GaussianBlur(img, (0, 0), max(0.8, 1.2 / spacing_mm))
        img = img + sc.sharpen * (img - wide)
    shape = img.shape
    if sc.kernel == "sharp":
        n = rng.standard_normal(shape, dtype=np.float32)
        n = n - 0.5 * cv2.GaussianBlur(n, (0, 0), 1.5)
        n /= n.std() + 1e-6
    else:
        n = smooth_noise(rng, shape, float(rng.uniform(0.6, 1.2)) / max(spacing_mm, 0.3) * 0.8)
    amp = np.where(body, np.float32(sc.noise_hu), np.float32(sc.noise_hu * 0.6))
    img += n * amp
    if sc.streaks > 0:
        k = int(rng.integers(2, 6))
        st = np.zeros(shape, np.float32)
        h, w = shape
        for _ in range(k):
            a = rng.uniform(-0.3, 0.3)
            y0 = rng.uniform(0.3, 0.7) * h
            c = np.cos(a)
            s = np.sin(a)
            p0 = (int(-w * c), int(y0 - w * s))
            p1 = (int(2 * w * c), int(y0 + w * s))
            cv2.line(st, p0, p1, float(rng.choice([-1, 1]) * sc.streaks), 1)
        img += cv2.GaussianBlur(st, (0, 0), 0.7) * body
    if sc.fov_circle:
        h, w = shape
        yy, xx = np.ogrid[:h, :w]
        r = min(h, w) / 2 * rng.uniform(0.97, 1.0)
        img[(yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2 > r * r] = -1024
    return np.clip(img, -1024, 3071).astype(np.float32)
