"""Training data for the lung model: phantom slices at the model's spacing, cached, augmented. No torch.

A *sample id* is a deterministic function of ``(seed, id)``: the generator is called with
``numpy.random.default_rng([seed, id])`` and the slice is resampled to the model's in-plane spacing
and padded/cropped to a square canvas. A pool of ``pool`` slots is served per epoch; slot ``k``
holds sample id ``k + pool * ((epoch + k % lifetime) // lifetime)``, so about ``1/lifetime`` of
the pool is regenerated each epoch while the rest is reused from an in-memory cache. Augmentation
(rotation, scale, HU shift/scale, noise, blur) is drawn from ``default_rng([seed, 7, epoch, k])``.
Everything is reproducible, also after a resume or in another process (DDP ranks).

Layouts: HU ``[H, W]`` (int16 in the cache, float32 out), labels ``[H, W]`` uint8 (0 background,
1 right lung, 2 left lung, 3 lesion), rows → posterior, columns → patient left.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = [
    "DataConfig",
    "PhantomSlices",
    "augment",
    "fit_canvas",
    "load_generator",
    "normalize_window",
    "phantom_slice",
    "resample_slice",
]

log = logging.getLogger(__name__)

Generator = Callable[..., tuple[np.ndarray, np.ndarray, Any]]


@dataclass
class DataConfig:
    """What the model sees. Saved into checkpoints and model.json (training provenance)."""

    generator: str = "inference.phantom:generate_slice"
    gen_kwargs: dict[str, Any] = field(default_factory=dict)
    spacing_mm: float = 1.5  # model in-plane spacing
    canvas: int = 256  # cached slice size at the model spacing (pixels)
    crop: int = 192  # training crop (pixels, divisible by 16)
    window_center: float = -500.0
    window_width: float = 1600.0
    pool: int = 768
    lifetime: int = 3  # epochs a generated sample stays in the pool
    augment: bool = True
    spacing_jitter: float = 0.12  # relative, uniform ±
    rotate_deg: float = 10.0
    hires_fraction: float = 0.25  # share generated at 512 px / 0.6-0.98 mm, then area-downsampled

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_generator(spec: str) -> Generator:
    """Import ``"module:function"`` (e.g. ``inference.phantom:generate_slice``)."""
    mod, _, fn = spec.partition(":")
    if not mod or not fn:
        raise ValueError(f"generator must be 'module:function', got {spec!r}")
    return getattr(importlib.import_module(mod), fn)


def phantom_slice(
    rng: np.random.Generator, *, phantom_config: dict[str, Any] | None = None, **kw: Any
) -> tuple[np.ndarray, np.ndarray, float]:
    """``inference.phantom.generate_slice`` with ``PhantomConfig(**phantom_config)``.

    Lets a JSON ``gen_kwargs`` change the randomisation ranges (e.g. ``{"phantom_config":
    {"lesion_prob": 0.85}}`` for more slices with lesions). Other keywords go to generate_slice.
    """
    from inference.phantom import PhantomConfig, generate_slice

    cfg = PhantomConfig(**phantom_config) if phantom_config else None
    return generate_slice(rng, config=cfg, **kw)  # type: ignore[return-value]


def normalize_window(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    """HU → float32 in [0, 1] through the window ``[center - width/2, center + width/2]``."""
    lo = center - width / 2.0
    out = (np.asarray(hu, dtype=np.float32) - np.float32(lo)) * np.float32(1.0 / width)
    return np.clip(out, 0.0, 1.0, out=out)


def resample_slice(
    hu: np.ndarray, spacing_yx: tuple[float, float], target_mm: float, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Resample a slice (float32 HU ``[H, W]``) to ``target_mm`` isotropic in-plane spacing.

    Area averaging when shrinking, bilinear when enlarging; labels by nearest neighbour.
    """
    sy, sx = float(spacing_yx[0]), float(spacing_yx[1])
    h, w = hu.shape
    nh = max(1, int(round(h * sy / target_mm)))
    nw = max(1, int(round(w * sx / target_mm)))
    if (nh, nw) == (h, w):
        return hu.astype(np.float32, copy=False), labels
    interp = cv2.INTER_AREA if nh * nw < h * w else cv2.INTER_LINEAR
    out = cv2.resize(hu.astype(np.float32, copy=False), (nw, nh), interpolation=interp)
    lab = None
    if labels is not None:
        lab = cv2.resize(labels, (nw, nh), interpolation=cv2.INTER_NEAREST)
    return out, lab


def fit_canvas(a: np.ndarray, size: int, fill: float) -> np.ndarray:
    """Centre-crop or pad ``a`` ([H, W]) to ``size x size`` with ``fill``."""
    h, w = a.shape
    out = np.full((size, size), fill, dtype=a.dtype)
    sy, sx = max(0, (h - size) // 2), max(0, (w - size) // 2)
    dy, dx = max(0, (size - h) // 2), max(0, (size - w) // 2)
    ch, cw = min(h, size), min(w, size)
    out[dy : dy + ch, dx : dx + cw] = a[sy : sy + ch, sx : sx + cw]
    return out


def augment(
    hu: np.ndarray, labels: np.ndarray, rng: np.random.Generator, cfg: DataConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Random crop + rotation/scale (one affine warp), HU shift/scale, blur, noise. No flips.

    Left/right flips are never used: the two lungs carry different labels and the anatomy
    (heart to the patient's left) is not mirror-symmetric. Returns float32 HU and uint8 labels
    of size ``cfg.crop``.
    """
    c = cfg.crop
    h, w = hu.shape
    ang = rng.uniform(-cfg.rotate_deg, cfg.rotate_deg) if cfg.augment else 0.0
    scale = 1.0 + (rng.uniform(-cfg.spacing_jitter, cfg.spacing_jitter) if cfg.augment else 0.0)
    # crop centre: anywhere that keeps most of the body in view
    max_off = max(0.0, (min(h, w) - c) / 2.0)
    cy = h / 2.0 + (rng.uniform(-max_off, max_off) if cfg.augment else 0.0)
    cx = w / 2.0 + (rng.uniform(-max_off, max_off) if cfg.augment else 0.0)
    m = cv2.getRotationMatrix2D((cx, cy), ang, scale)
    m[0, 2] += c / 2.0 - cx
    m[1, 2] += c / 2.0 - cy
    out = cv2.warpAffine(
        hu.astype(np.float32, copy=False), m, (c, c), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=-1024.0,
    )
    lab = cv2.warpAffine(labels, m, (c, c), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if cfg.augment:
        if rng.random() < 0.3:  # softer reconstruction / thicker partial volume
            out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.4, 1.2))
        out = out * np.float32(rng.uniform(0.95, 1.05)) + np.float32(rng.uniform(-40.0, 40.0))
        if rng.random() < 0.5:
            sigma = rng.uniform(0.0, 35.0)
            out += rng.standard_normal(out.shape, dtype=np.float32) * np.float32(sigma)
    return out, lab


class PhantomSlices:
    """Index-able pool of training slices (see the module docstring). Not torch-specific.

    ``ds[k]`` returns ``(x float32 [1, crop, crop] in [0, 1], y int64 [crop, crop])`` for
    slot ``k`` at the current epoch (:meth:`set_epoch`).
    """

    def __init__(
        self, cfg: DataConfig, seed: int, generator: Generator | None = None, cache_dir: str | None = None
    ) -> None:
        self.cfg = cfg
        self.cache_dir = Path(cache_dir) if cache_dir else None
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.seed = int(seed)
        self.generator = generator if generator is not None else load_generator(cfg.generator)
        self.epoch = 0
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.generated = 0

    def __len__(self) -> int:
        return self.cfg.pool

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        live = {self.sample_id(k) for k in range(self.cfg.pool)}
        for sid in [s for s in self._cache if s not in live]:
            del self._cache[sid]
        if self.cache_dir is not None:
            for f in self.cache_dir.glob("s*.npz"):
                if f.stem[1:].isdigit() and int(f.stem[1:]) not in live:
                    f.unlink(missing_ok=True)

    def sample_id(self, k: int) -> int:
        L = max(1, self.cfg.lifetime)
        return k + self.cfg.pool * ((self.epoch + k % L) // L)

    def make_sample(self, sid: int) -> tuple[np.ndarray, np.ndarray]:
        """Generate sample ``sid``: int16 HU and uint8 labels, ``canvas x canvas`` at the model spacing."""
        rng = np.random.default_rng([self.seed, int(sid)])
        kw = dict(self.cfg.gen_kwargs)
        if self.cfg.hires_fraction > 0 and rng.random() < self.cfg.hires_fraction:
            # like a real 512² reconstruction: fine pixels, resampled to the model spacing below
            kw.update(size=512, spacing_mm=float(rng.uniform(0.6, 0.98)))
        hu, lab, spacing = self.generator(rng, **kw)
        sp = spacing if isinstance(spacing, tuple | list | np.ndarray) else (float(spacing), float(spacing))
        hu, lab = resample_slice(np.asarray(hu, np.float32), (float(sp[-2]), float(sp[-1])), self.cfg.spacing_mm,
                                 np.asarray(lab, np.uint8))
        hu16 = np.clip(np.rint(hu), -2048, 4095).astype(np.int16)
        assert lab is not None
        return fit_canvas(hu16, self.cfg.canvas, -1024), fit_canvas(lab, self.cfg.canvas, 0)

    def raw(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        sid = self.sample_id(k)
        if sid not in self._cache:
            f = self.cache_dir / f"s{sid}.npz" if self.cache_dir is not None else None
            if f is not None and f.is_file():
                with np.load(f) as z:
                    self._cache[sid] = (z["hu"], z["lab"])
            else:
                self._cache[sid] = self.make_sample(sid)
                self.generated += 1
                if f is not None:  # disk cache: a resume or a second stage does not regenerate
                    tmp = f.with_name(f"{f.stem}.{os.getpid()}.tmp.npz")
                    np.savez(tmp, hu=self._cache[sid][0], lab=self._cache[sid][1])
                    os.replace(tmp, f)
        return self._cache[sid]

    def __getitem__(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        hu, lab = self.raw(int(k))
        rng = np.random.default_rng([self.seed, 7, self.epoch, int(k)])
        hu_a, lab_a = augment(hu, lab, rng, self.cfg)
        x = normalize_window(hu_a, self.cfg.window_center, self.cfg.window_width)[None]
        return x, lab_a.astype(np.int64)


def cosine_lr(step: int, total: int, warmup: int) -> float:
    """LR multiplier: linear warm-up then cosine decay to 2 % of the peak."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * t))
