"""Preprocessing views of a slice (CLAHE, equalisation, Canny, Sobel, denoise). No Qt.

Every filter is a pure function ``filter(img_u8, **params) -> uint8`` of the *windowed 8-bit
image* ``[y, x]`` (uint8, C-contiguous or not, never modified). 16-bit data (HU, stored values)
is never handed to OpenCV directly and never truncated: window it first with
:func:`windowed_uint8`, which clips values outside ``[center - width/2, center + width/2]`` to
0 / 255 and maps the window linearly onto 0…255 (the display mapping, without any LUT shape).
Filters given anything but a 2-D uint8 array raise ``TypeError`` saying so.

:data:`FILTERS` is a registry (name → :class:`FilterSpec`) with a parameter spec per filter
(name, kind, range, default, step) so that a GUI can build its controls from it;
:func:`apply_filter` validates parameters against the spec and runs the filter;
:func:`describe` returns the JSON-serialisable settings that go into a report.
:func:`edges_overlay` draws a binary edge map in a colour over the (grey) image, as RGB.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

__all__ = [
    "ParamSpec",
    "FilterSpec",
    "FILTERS",
    "windowed_uint8",
    "clahe",
    "equalize",
    "canny",
    "sobel",
    "gaussian",
    "median",
    "apply_filter",
    "default_params",
    "validate_params",
    "describe",
    "edges_overlay",
    "render_preview",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- windowing
def windowed_uint8(
    slice_values: np.ndarray, center: float, width: float, *, invert: bool = False
) -> np.ndarray:
    """Map a slice (HU or stored values, any real dtype) through a window to uint8.

    The same mapping as the display (:func:`viewer.display.window_to_uint8`), so the filters see
    exactly the image on screen.

    Parameters
    ----------
    slice_values : ndarray ``[y, x]``
        int16 / uint16 / int32 / float image in output units (HU for CT).
    center, width : float
        Window centre and width in the same units; ``width > 0``.
    invert : bool
        MONOCHROME1 display (low values bright).

    Returns
    -------
    ndarray ``[y, x]`` uint8
        ``0`` for values ``<= center - width/2``, ``255`` for values ``>= center + width/2``,
        linear in between (rounded to nearest). Values outside the window are clipped, never
        wrapped or mirrored.
    """
    if not width > 0:
        raise ValueError(f"window width must be > 0, got {width}")
    arr = np.asarray(slice_values)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(
            f"windowed_uint8 expects a real 2-D slice [y, x], got {arr.dtype} {arr.shape}"
        )
    if arr.dtype not in (np.int16, np.uint16, np.uint8, np.float32):
        arr = arr.astype(np.float32)
    from viewer.display import window_to_uint8

    return window_to_uint8(arr, float(center), float(width), invert=invert)


# --------------------------------------------------------------------------- parameter specs
@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a filter, enough for a GUI to build a slider or spin box.

    ``kind`` is ``"int"``, ``"odd"`` (odd integers only) or ``"float"``; ``minimum``/``maximum``
    are inclusive; ``unit`` is a short display string ("px", "grey levels", "").
    """

    name: str
    label: str
    kind: str
    minimum: float
    maximum: float
    default: float
    step: float = 1.0
    unit: str = ""
    help: str = ""

    def validate(self, value: Any, filter_name: str) -> float | int:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"{filter_name}: parameter '{self.name}' must be a number, got {value!r}"
            ) from None
        if not np.isfinite(v) or v < self.minimum or v > self.maximum:
            raise ValueError(
                f"{filter_name}: parameter '{self.name}' must be in [{self.minimum:g}, "
                f"{self.maximum:g}], got {value!r}"
            )
        if self.kind in ("int", "odd"):
            if v != int(v):
                raise ValueError(
                    f"{filter_name}: parameter '{self.name}' must be an integer, got {value!r}"
                )
            if self.kind == "odd" and int(v) % 2 == 0:
                raise ValueError(
                    f"{filter_name}: parameter '{self.name}' must be odd, got {value!r}"
                )
            return int(v)
        return v


@dataclass(frozen=True)
class FilterSpec:
    """A registered filter: ``func(img_u8, **params) -> uint8``, with its parameters."""

    name: str
    label: str
    func: Callable[..., np.ndarray]
    params: tuple[ParamSpec, ...] = field(default_factory=tuple)
    output: str = "image"  # "image" (grey levels) or "edges" (binary 0/255 map)
    description: str = ""


def _check_u8(img: np.ndarray, who: str) -> np.ndarray:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 2:
        got = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
        raise TypeError(
            f"{who}: expects the windowed 8-bit slice (2-D uint8), got {got}; "
            "window 16-bit data first with viewer.preprocess.windowed_uint8(slice, center, width)"
        )
    return img


# --------------------------------------------------------------------------- filters
def clahe(img: np.ndarray, *, clip_limit: float = 2.0, tile_grid: int = 8) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation (``cv2.createCLAHE``).

    ``clip_limit`` is OpenCV's relative clip limit; ``tile_grid`` the number of tiles per axis.
    """
    _check_u8(img, "clahe")
    op = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(int(tile_grid), int(tile_grid)))
    return op.apply(np.ascontiguousarray(img))


def equalize(img: np.ndarray) -> np.ndarray:
    """Global histogram equalisation (``cv2.equalizeHist``)."""
    _check_u8(img, "equalize")
    return cv2.equalizeHist(np.ascontiguousarray(img))


def canny(
    img: np.ndarray,
    *,
    low: float = 50.0,
    high: float = 150.0,
    blur_sigma: float = 1.0,
    aperture: int = 3,
    l2_gradient: bool = True,
) -> np.ndarray:
    """Canny edges (0/255 uint8) after a Gaussian pre-blur of ``blur_sigma`` px (0 = none).

    ``low``/``high`` are the hysteresis thresholds in gradient units of OpenCV (grey levels times
    the Sobel aperture gain); ``low > high`` is accepted and swapped, as OpenCV does.
    """
    _check_u8(img, "canny")
    src = gaussian(img, sigma=blur_sigma) if blur_sigma > 0 else np.ascontiguousarray(img)
    return cv2.Canny(
        src, float(low), float(high), apertureSize=int(aperture), L2gradient=bool(l2_gradient)
    )


def _sobel_gain(ksize: int) -> float:
    kx, ky = cv2.getDerivKernels(1, 0, ksize)
    k = np.outer(ky, kx)
    return float(k[k > 0].sum())


def sobel(img: np.ndarray, *, ksize: int = 3, gain: float = 1.0) -> np.ndarray:
    """Sobel gradient magnitude, ``saturate(gain * |∇I| / g(ksize))`` as uint8.

    ``g(ksize)`` is the Sobel kernel's positive weight sum (4 for 3×3, 48 for 5×5, 640 for 7×7),
    so with ``gain = 1`` an ideal step edge of ``h`` grey levels gives about ``h``: the output is
    independent of the aperture size and comparable between slices (no per-image normalisation).
    """
    _check_u8(img, "sobel")
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=int(ksize))
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=int(ksize))
    mag = cv2.magnitude(gx, gy)
    return cv2.convertScaleAbs(
        mag, alpha=float(gain) / _sobel_gain(int(ksize))
    )  # mag >= 0: abs is a no-op


def gaussian(img: np.ndarray, *, sigma: float = 1.0) -> np.ndarray:
    """Gaussian denoise, standard deviation ``sigma`` px (kernel size from OpenCV); 0 = copy."""
    _check_u8(img, "gaussian")
    if sigma <= 0:
        return img.copy()
    return cv2.GaussianBlur(np.ascontiguousarray(img), (0, 0), float(sigma))


def median(img: np.ndarray, *, ksize: int = 3) -> np.ndarray:
    """Median denoise over a ``ksize`` × ``ksize`` window (odd), ``cv2.medianBlur``."""
    _check_u8(img, "median")
    return cv2.medianBlur(np.ascontiguousarray(img), int(ksize))


FILTERS: dict[str, FilterSpec] = {
    f.name: f
    for f in (
        FilterSpec(
            "clahe",
            "CLAHE",
            clahe,
            (
                ParamSpec("clip_limit", "Clip limit", "float", 0.1, 40.0, 2.0, 0.1),
                ParamSpec("tile_grid", "Tile grid", "int", 1, 32, 8, 1, "tiles"),
            ),
            description="Contrast-limited adaptive histogram equalisation",
        ),
        FilterSpec(
            "equalize",
            "Histogram equalisation",
            equalize,
            (),
            description="Global histogram equalisation",
        ),
        FilterSpec(
            "canny",
            "Canny edges",
            canny,
            (
                ParamSpec("low", "Low threshold", "float", 0, 1000, 50, 1),
                ParamSpec("high", "High threshold", "float", 0, 1000, 150, 1),
                ParamSpec("blur_sigma", "Pre-blur σ", "float", 0, 10, 1.0, 0.1, "px"),
            ),
            output="edges",
            description="Canny edges after a Gaussian pre-blur",
        ),
        FilterSpec(
            "sobel",
            "Sobel magnitude",
            sobel,
            (
                ParamSpec("ksize", "Aperture", "odd", 3, 7, 3, 2, "px"),
                ParamSpec("gain", "Gain", "float", 0.1, 16, 1.0, 0.1),
            ),
            description="Gradient magnitude (grey levels per edge)",
        ),
        FilterSpec(
            "gaussian",
            "Gaussian denoise",
            gaussian,
            (ParamSpec("sigma", "σ", "float", 0, 10, 1.0, 0.1, "px"),),
            description="Gaussian smoothing",
        ),
        FilterSpec(
            "median",
            "Median denoise",
            median,
            (ParamSpec("ksize", "Kernel", "odd", 3, 11, 3, 2, "px"),),
            description="Median filter",
        ),
    )
}


def _spec(name: str) -> FilterSpec:
    try:
        return FILTERS[name]
    except KeyError:
        raise ValueError(f"unknown filter {name!r}; known: {', '.join(FILTERS)}") from None


def default_params(name: str) -> dict[str, float | int]:
    """The default parameters of filter ``name`` (typed per spec)."""
    return {
        p.name: (int(p.default) if p.kind in ("int", "odd") else float(p.default))
        for p in _spec(name).params
    }


def validate_params(name: str, params: dict[str, Any] | None = None) -> dict[str, float | int]:
    """Defaults overlaid with ``params``, each checked against its spec (else ``ValueError``)."""
    spec = _spec(name)
    known = {p.name: p for p in spec.params}
    unknown = sorted(set(params or {}) - set(known))
    if unknown:
        raise ValueError(f"{name}: unknown parameter(s) {unknown}; known: {sorted(known)}")
    out = default_params(name)
    for k, v in (params or {}).items():
        out[k] = known[k].validate(v, name)
    return out


def apply_filter(name: str, img: np.ndarray, **params: Any) -> np.ndarray:
    """Run registered filter ``name`` on the windowed uint8 slice with validated ``params``."""
    spec = _spec(name)
    return spec.func(img, **validate_params(name, params))


def describe(name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """JSON-serialisable description of a filter and its (validated) settings, for reports."""
    spec = _spec(name)
    return {
        "filter": spec.name,
        "label": spec.label,
        "params": validate_params(name, params),
        "input": "windowed 8-bit slice",
    }


def edges_overlay(
    img: np.ndarray,
    edges: np.ndarray,
    color: tuple[int, int, int] = (255, 64, 0),
    alpha: float = 1.0,
) -> np.ndarray:
    """Draw an edge map in ``color`` (RGB) over a grey uint8 image; returns ``[y, x, 3]`` RGB uint8.

    ``edges`` is any 2-D array of the image's shape; non-zero pixels are edges. ``alpha`` in
    [0, 1] is the edge opacity (1 = solid colour).
    """
    _check_u8(img, "edges_overlay")
    if edges.shape != img.shape:
        raise ValueError(f"edges_overlay: edges shape {edges.shape} != image shape {img.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"edges_overlay: alpha must be in [0, 1], got {alpha}")
    rgb = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_GRAY2RGB)
    solid = np.empty_like(rgb)
    solid[:] = np.asarray(color, dtype=np.uint8)
    blended = (
        cv2.addWeighted(solid, float(alpha), rgb, 1.0 - float(alpha), 0.0) if alpha < 1.0 else solid
    )
    cv2.copyTo(blended, (edges != 0).astype(np.uint8), rgb)
    return rgb


def render_preview(
    slice_values: np.ndarray,
    center: float,
    width: float,
    name: str,
    params: dict[str, Any] | None = None,
    *,
    overlay: bool = False,
    color: tuple[int, int, int] = (255, 64, 0),
    invert: bool = False,
) -> np.ndarray:
    """One preview frame: window ``slice_values`` (HU), run filter ``name``, return RGB uint8.

    With ``overlay=True`` an edge filter's output (``FilterSpec.output == "edges"``) is drawn in
    ``color`` over the windowed slice; otherwise the filtered grey image is returned as RGB.
    This is the whole per-request work of a live preview (see ``docs/bench/preprocess.md``).
    """
    img = windowed_uint8(slice_values, center, width, invert=invert)
    out = apply_filter(name, img, **(params or {}))
    if overlay and FILTERS[name].output == "edges":
        return edges_overlay(img, out, color=color)
    return cv2.cvtColor(out, cv2.COLOR_GRAY2RGB)
