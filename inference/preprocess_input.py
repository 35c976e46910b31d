"""Model-input construction: Volume-like → canonical orientation → windowed, resampled, padded NCHW.

No Qt, never imports ``viewer``. Everything the network sees is built here, so the pipeline, the
"model-input replay" view and training can share it (:func:`model_input_for_slice`).

Steps, in order (all per slice, vectorised with numpy / OpenCV):

1. **Reorientation** (:class:`Orientation`): the array axes are permuted and flipped, as views,
   so that in the canonical array ``[z', y', x']`` columns run toward patient Left (LPS +X), rows
   toward Posterior (LPS +Y) and slices toward Inferior (LPS -Z). This is the radiological
   display of an axial slice (patient's right on the image's left) for head-first and feet-first,
   supine and prone scans. Slices run head → feet (canonical slice 0 is the most cranial, like
   the training phantoms of :mod:`inference.phantom`), so 2.5D channel order is anatomical.
   Each array axis is matched to the LPS axis its direction cosine is
   closest to (the best of the 6 permutations), so coronal and sagittal stacks are resliced
   axially (the domain check warns about them).
2. **In-plane resampling** to the model's pixel spacing (``inplane.policy == "spacing"``:
   ``H' = round(ny * sy / spacing_mm)``) or to a fixed size (``policy == "size"``, ``[H, W]``),
   with ``cv2.INTER_AREA`` when shrinking and ``cv2.INTER_LINEAR`` when enlarging, on HU
   (float32).
3. **Window / normalisation**: ``(HU - (c - w/2)) / w`` clipped to ``[0, 1]`` (``"0..1"``) or
   mapped to ``[-1, 1]`` (``"-1..1"``).
4. **Padding** to a multiple of ``divisible_by`` (split evenly before/after, the extra pixel
   after), with the normalised value of ``pad_value_hu``.
5. **Channels**: ``channels == C > 1`` stacks the canonical slices ``z'-C//2 … z'+C//2``
   (clamped at the ends) as channels, slice ``z'`` in the middle.

The inverse (:meth:`SliceGeometry.crop` + resize back, and :meth:`Orientation.view` on the output
array) is exact: writing through the canonical *view* of an output array in the original grid
lands every value in its original voxel.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from inference.package import InputSpec, ModelPackage, PackageError

__all__ = [
    "VolumeLike",
    "ArrayVolume",
    "Orientation",
    "SliceGeometry",
    "orientation_of",
    "slice_geometry",
    "normalize_hu",
    "prepare_slices",
    "model_input_for_slice",
]


class VolumeLike(Protocol):
    """What the pipeline needs of a volume (``viewer.volume.Volume`` fits)."""

    voxels: np.ndarray  # [z, y, x]
    spacing: tuple[float, float, float]  # (sz, sy, sx) mm
    direction: np.ndarray  # 3x3, columns = LPS unit vectors of the x, y, z array axes


@dataclass
class ArrayVolume:
    """A minimal volume for callers without ``viewer`` (tests, training, benchmarks).

    ``voxels`` [z, y, x] (HU for CT); ``spacing`` (sz, sy, sx) mm; ``direction`` 3x3 with columns
    the LPS unit vectors of the x, y, z array axes; ``meta`` any object with optional
    ``modality``, ``body_part``, ``patient_position`` attributes.
    """

    voxels: np.ndarray
    spacing: tuple[float, float, float]
    direction: np.ndarray
    meta: Any = None

    def __post_init__(self) -> None:
        self.direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]


# ---------------------------------------------------------------------------------- orientation
@dataclass(frozen=True)
class Orientation:
    """How to view an array ``[z, y, x]`` in the canonical LPS-axial order.

    ``perm[k]`` is the source numpy axis shown as canonical axis ``k`` (0 = slices toward I (feet),
    1 = rows toward P, 2 = columns toward L); ``flip[k]`` reverses canonical axis ``k``.
    ``max_angle_deg`` is the largest angle between an array axis and the LPS axis it was
    matched to (0 for a non-oblique scan). ``plane`` is the acquisition plane of the slices
    (``"axial"``, ``"coronal"``, ``"sagittal"``).
    """

    perm: tuple[int, int, int]
    flip: tuple[bool, bool, bool]
    max_angle_deg: float
    plane: str

    @property
    def is_identity(self) -> bool:
        return self.perm == (0, 1, 2) and not any(self.flip)

    def view(self, arr: np.ndarray, lead: int = 0) -> np.ndarray:
        """Canonical view (no copy) of ``arr``, whose axes ``lead`` … ``lead+2`` are [z, y, x].

        Writing into the view writes the original array's voxels.
        """
        axes = list(range(arr.ndim))
        axes[lead : lead + 3] = [lead + p for p in self.perm]
        out = arr.transpose(axes)
        idx = [slice(None)] * arr.ndim
        for k, f in enumerate(self.flip):
            if f:
                idx[lead + k] = slice(None, None, -1)
        return out[tuple(idx)]

    def spacing(self, spacing: tuple[float, float, float]) -> tuple[float, float, float]:
        """Canonical ``(sz', sy', sx')`` from the original ``(sz, sy, sx)``."""
        return tuple(float(spacing[p]) for p in self.perm)  # type: ignore[return-value]

    def shape(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        return tuple(int(shape[p]) for p in self.perm)  # type: ignore[return-value]


_PLANES = {2: "axial", 1: "coronal", 0: "sagittal"}  # LPS axis of the slice normal → plane


def orientation_of(direction: np.ndarray) -> Orientation:
    """The :class:`Orientation` for a volume ``direction`` (columns: LPS of the x, y, z axes).

    Each numpy axis ``a`` (0 = z, 1 = y, 2 = x) has the LPS direction ``direction[:, 2 - a]``.
    The permutation maximising the summed |cosine| with the target LPS axes is chosen, so a
    tilted or slightly oblique stack still maps to the nearest canonical orientation.
    """
    d = np.asarray(direction, dtype=np.float64).reshape(3, 3)
    cols = [
        d[:, 2 - a] / (np.linalg.norm(d[:, 2 - a]) or 1.0) for a in range(3)
    ]  # numpy axis → LPS vector
    target = (2, 1, 0)  # canonical axis k shows LPS axis target[k]: I (= -S), P, L
    sign = (-1.0, 1.0, 1.0)
    best: tuple[float, tuple[int, ...]] | None = None
    for perm in itertools.permutations(range(3)):
        score = sum(abs(cols[perm[k]][target[k]]) for k in range(3))
        if best is None or score > best[0] + 1e-12:
            best = (score, perm)
    assert best is not None
    perm = tuple(int(p) for p in best[1])
    flip = tuple(bool(sign[k] * cols[perm[k]][target[k]] < 0) for k in range(3))
    cosines = [min(1.0, abs(cols[perm[k]][target[k]])) for k in range(3)]
    angle = float(np.degrees(np.arccos(min(cosines))))
    normal_axis = int(np.argmax(np.abs(cols[0])))  # numpy axis 0 is the slice direction
    return Orientation(perm, flip, angle, _PLANES[normal_axis])  # type: ignore[arg-type]


# ------------------------------------------------------------------------- in-plane geometry
@dataclass(frozen=True)
class SliceGeometry:
    """In-plane mapping of one canonical slice ``[ny, nx]`` to the network input ``[H, W]``.

    The slice is resized to ``(rh, rw)`` pixels (spacing ``out_spacing`` mm), then padded by
    ``pad = (top, bottom, left, right)`` to ``(H, W)``, multiples of ``divisible_by``.
    """

    in_shape: tuple[int, int]
    in_spacing: tuple[float, float]
    resized: tuple[int, int]
    pad: tuple[int, int, int, int]

    @property
    def out_shape(self) -> tuple[int, int]:
        top, bottom, left, right = self.pad
        return self.resized[0] + top + bottom, self.resized[1] + left + right

    @property
    def out_spacing(self) -> tuple[float, float]:
        """Pixel spacing (row, column) in mm of the resized slice."""
        return (
            self.in_shape[0] * self.in_spacing[0] / self.resized[0],
            self.in_shape[1] * self.in_spacing[1] / self.resized[1],
        )

    @property
    def needs_resize(self) -> bool:
        return self.resized != self.in_shape

    def crop(self, arr: np.ndarray) -> np.ndarray:
        """Remove the padding from ``arr[..., H, W]`` (a view)."""
        top, _, left, _ = self.pad
        return arr[..., top : top + self.resized[0], left : left + self.resized[1]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "in_shape": list(self.in_shape),
            "in_spacing_mm": list(self.in_spacing),
            "resized": list(self.resized),
            "resized_spacing_mm": list(self.out_spacing),
            "pad_top_bottom_left_right": list(self.pad),
            "input_shape": list(self.out_shape),
        }


def slice_geometry(
    shape_yx: tuple[int, int], spacing_yx: tuple[float, float], spec: InputSpec
) -> SliceGeometry:
    """The :class:`SliceGeometry` of a canonical slice of ``shape_yx`` pixels at
    ``spacing_yx`` mm."""
    ny, nx = int(shape_yx[0]), int(shape_yx[1])
    sy, sx = float(spacing_yx[0]), float(spacing_yx[1])
    if spec.inplane_policy == "spacing":
        if not spec.spacing_mm or spec.spacing_mm <= 0:
            raise PackageError(f"input.inplane.spacing_mm must be > 0, got {spec.spacing_mm}")
        rh = max(1, int(round(ny * sy / spec.spacing_mm)))
        rw = max(1, int(round(nx * sx / spec.spacing_mm)))
    elif spec.inplane_policy == "size":
        if not spec.size or len(spec.size) != 2 or min(spec.size) < 1:
            raise PackageError(f"input.inplane.size must be [H, W] > 0, got {spec.size}")
        rh, rw = int(spec.size[0]), int(spec.size[1])
    elif spec.inplane_policy in ("native", "none"):
        rh, rw = ny, nx
    else:
        raise PackageError(
            "input.inplane.policy must be 'spacing', 'size' or 'native', got "
            f"{spec.inplane_policy!r}"
        )
    d = max(1, spec.divisible_by)
    py, px = (-rh) % d, (-rw) % d
    return SliceGeometry(
        (ny, nx), (sy, sx), (rh, rw), (py // 2, py - py // 2, px // 2, px - px // 2)
    )


# ---------------------------------------------------------------------------------- intensities
def normalize_hu(hu: np.ndarray | float, spec: InputSpec) -> np.ndarray:
    """Window + normalise HU (float32 out): ``"0..1"``, ``"-1..1"`` or ``"none"`` (HU as is)."""
    x = np.asarray(hu, dtype=np.float32)
    if spec.normalize == "none":
        return x.copy()
    lo = spec.window_center - spec.window_width / 2.0
    y = np.asarray((x - np.float32(lo)) * np.float32(1.0 / spec.window_width), dtype=np.float32)
    if y.ndim == 0:
        y = np.asarray(np.clip(y, 0.0, 1.0), dtype=np.float32)
    else:
        np.clip(y, 0.0, 1.0, out=y)
    if spec.normalize == "0..1":
        return y
    if spec.normalize == "-1..1":
        return np.asarray(y * 2.0 - 1.0, dtype=np.float32)
    raise PackageError(f"input.normalize must be '0..1', '-1..1' or 'none', got {spec.normalize!r}")


def _resize(img: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    h, w = img.shape[:2]
    if (h, w) == tuple(size_hw):
        return img
    shrink = size_hw[0] * size_hw[1] < h * w
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(img, (int(size_hw[1]), int(size_hw[0])), interpolation=interp)


def _prepare_one(
    slice_hu: np.ndarray, geom: SliceGeometry, spec: InputSpec, pad_value: float
) -> np.ndarray:
    img = np.ascontiguousarray(slice_hu, dtype=np.float32)
    img = _resize(img, geom.resized)
    img = normalize_hu(img, spec)
    top, bottom, left, right = geom.pad
    if top or bottom or left or right:
        img = cv2.copyMakeBorder(
            img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=float(pad_value)
        )
    return img


def prepare_slices(
    canon: np.ndarray, zs: list[int] | np.ndarray, geom: SliceGeometry, spec: InputSpec
) -> np.ndarray:
    """Network input ``float32 [N, C, H, W]`` for canonical slices ``zs`` of ``canon`` (HU).

    ``C = spec.channels``; channel ``c`` holds slice ``z' + c - C // 2`` clamped to the volume.
    """
    nz = canon.shape[0]
    c = spec.channels
    h, w = geom.out_shape
    pad_value = float(normalize_hu(np.float32(spec.pad_value_hu), spec))
    out = np.empty((len(zs), c, h, w), dtype=np.float32)
    cache: dict[int, np.ndarray] = {}
    for i, z in enumerate(zs):
        for ch in range(c):
            src = min(max(int(z) + ch - c // 2, 0), nz - 1)
            if src not in cache:
                cache[src] = _prepare_one(canon[src], geom, spec, pad_value)
            out[i, ch] = cache[src]
    return out


def _spec_of(package: ModelPackage | InputSpec) -> InputSpec:
    return package if isinstance(package, InputSpec) else package.input


def model_input_for_slice(
    volume_like: VolumeLike, z: int, package: ModelPackage | InputSpec
) -> tuple[np.ndarray, dict[str, Any]]:
    """Exactly what the network receives for original slice ``z`` (the model-input replay view).

    Parameters
    ----------
    volume_like : object with ``voxels`` [z, y, x] (HU), ``spacing`` (sz, sy, sx) mm, ``direction``.
    z : slice index in the *original* array. For a coronal/sagittal stack the network slices
        are axial, and ``z`` then indexes canonical (axial) slices instead; ``info`` says so.
    package : the model package (or its ``InputSpec``).

    Returns
    -------
    x : float32 ``[C, H, W]`` — the network input for that slice (channel ``C // 2`` is slice z).
    info : dict with ``orientation`` (perm, flip, plane, oblique angle), ``canonical_z``,
        ``geometry`` (:meth:`SliceGeometry.to_dict`), ``window``, ``normalize``, ``pad_value``,
        ``value_range`` of the array.
    """
    spec = _spec_of(package)
    vox = np.asarray(volume_like.voxels)
    if vox.ndim != 3:
        raise PackageError(f"model input needs a [z, y, x] volume, got shape {vox.shape}")
    orient = orientation_of(volume_like.direction)
    canon = orient.view(vox)
    nz = canon.shape[0]
    if orient.perm[0] == 0:
        cz = (nz - 1 - int(z)) if orient.flip[0] else int(z)
        z_meaning = "original slice index"
    else:
        cz = int(z)
        z_meaning = "canonical axial slice index (the stack is not axial)"
    if not 0 <= cz < nz:
        raise IndexError(f"slice {z} out of range 0..{nz - 1}")
    cs = orient.spacing(tuple(volume_like.spacing))
    geom = slice_geometry(canon.shape[1:], cs[1:], spec)
    x = prepare_slices(canon, [cz], geom, spec)[0]
    info = {
        "orientation": {
            "perm": list(orient.perm),
            "flip": list(orient.flip),
            "plane": orient.plane,
            "oblique_deg": orient.max_angle_deg,
        },
        "canonical_z": cz,
        "z_meaning": z_meaning,
        "geometry": geom.to_dict(),
        "window": {"center": spec.window_center, "width": spec.window_width},
        "normalize": spec.normalize,
        "pad_value": float(normalize_hu(np.float32(spec.pad_value_hu), spec)),
        "channels": spec.channels,
        "value_range": [float(x.min()), float(x.max())],
    }
    return x, info
