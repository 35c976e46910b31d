"""Domain check: is this scan the kind of image the model was made for? No Qt, no ``viewer``.

:func:`check_domain` compares a volume with ``model.json`` ``"domain"``::

    "domain": {"modalities": ["CT"], "body_parts": ["CHEST", "LUNG", "THORAX", ""],
               "hu_range": [-1100, 3100], "pixel_spacing_mm": [0.4, 1.2],
               "fov_mm": [250, 550], "orientations": ["axial"]}

and returns one plain-language warning per mismatch (empty list: in domain). The pipeline refuses
to run with warnings unless forced (:class:`DomainError`), and records them in its result.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from inference.package import ModelPackage, PackageError
from inference.preprocess_input import orientation_of

__all__ = [
    "DomainError",
    "check_domain",
    "validate_domain_spec",
    "OBLIQUE_TOLERANCE_DEG",
    "PADDING_BELOW_HU",
]

#: Slices tilted more than this from the nearest canonical plane get a warning.
OBLIQUE_TOLERANCE_DEG = 10.0


class DomainError(PackageError):
    """The scan is outside the model's declared domain; ``warnings`` lists why. Run with force
    to override."""

    def __init__(self, warnings: list[str], model: str = "") -> None:
        self.warnings = list(warnings)
        what = f"model '{model}'" if model else "the model"
        super().__init__(
            f"this scan is outside the domain of {what}: "
            + "; ".join(warnings)
            + ". Results would be unreliable; run anyway only with --force (GUI: 'Run anyway')."
        )


def _meta(volume_like: Any, name: str) -> str:
    meta = getattr(volume_like, "meta", None)
    if meta is None:
        return ""
    value = meta.get(name, "") if isinstance(meta, dict) else getattr(meta, name, "")
    return str(value or "").strip()


#: Values at or below this are padding outside a circular reconstruction (-2000, -3024 ...).
PADDING_BELOW_HU = -1500.0


def _robust_range(voxels: np.ndarray) -> tuple[float, float] | None:
    """1st and 99th percentile of a strided subsample (~1e6 voxels) without padding; None if
    empty."""
    step = max(1, int(round((voxels.size / 1e6) ** (1 / 3))))
    sub = voxels[::step, ::step, ::step].ravel()
    sub = sub[sub > PADDING_BELOW_HU]
    if sub.size < 10:
        return None
    lo, hi = np.percentile(sub, [1.0, 99.0])
    return float(lo), float(hi)


def check_domain(volume_like: Any, package: ModelPackage | dict[str, Any]) -> list[str]:
    """Warnings (strings) for every way ``volume_like`` differs from the package's domain.

    Parameters
    ----------
    volume_like : object with ``voxels`` [z, y, x], ``spacing`` (sz, sy, sx) mm, ``direction``
        (3x3, columns = LPS of the x, y, z axes) and optionally ``meta`` with ``modality``,
        ``body_part``.
    package : the model package, or its ``domain`` dict.

    Checked: modality, body part (when the header has one, or when ``""`` is not allowed), the
    1st–99th percentile of the values above :data:`PADDING_BELOW_HU` (padding outside a
    circular reconstruction is ignored) against ``hu_range``, and for CT that air is present,
    slice orientation (plane and obliquity), in-plane pixel spacing and field of view
    (``max(nx * sx, ny * sy)``). A radiograph fails the modality check.
    """
    dom = dict(package.domain if isinstance(package, ModelPackage) else package)
    name = package.name if isinstance(package, ModelPackage) else ""
    warnings: list[str] = []
    vox = np.asarray(volume_like.voxels)
    if vox.ndim != 3:
        return [
            f"the image is not a grey-level volume (shape {vox.shape}); the model takes [z, y, "
            "x] scans"
        ]
    nz, ny, nx = vox.shape
    sz, sy, sx = (float(s) for s in volume_like.spacing)

    modality = _meta(volume_like, "modality").upper()
    mods = [m.upper() for m in dom.get("modalities", getattr(package, "modalities", []) or [])]
    if mods and modality not in mods:
        warnings.append(
            f"modality is {modality or 'unknown'}, the model {name and f'{name!r} '}expects "
            f"{'/'.join(mods)}"
        )
    body = _meta(volume_like, "body_part").upper()
    parts = [str(p).upper() for p in dom.get("body_parts", [])]
    if parts and body not in parts:
        warnings.append(
            f"body part is {body or 'not stated'}, the model expects "
            f"{'/'.join(p for p in parts if p)}"
        )
    if "hu_range" in dom and vox.size:
        lo, hi = (float(v) for v in dom["hu_range"])
        rng = _robust_range(vox)
        if rng is None:
            warnings.append(
                f"the image holds no values above {PADDING_BELOW_HU:.0f} (empty or all padding)"
            )
        else:
            p1, p99 = rng
            if p1 < lo or p99 > hi:
                warnings.append(
                    f"values range {p1:.0f}..{p99:.0f} (1st-99th percentile) lie outside "
                    f"{lo:.0f}..{hi:.0f} HU "
                    "expected for CT"
                )
            elif modality == "CT" and p1 > -500:
                warnings.append(
                    f"no air in the image (1st percentile {p1:.0f} HU): are the values "
                    "Hounsfield units "
                    "(rescale intercept applied)?"
                )
    orient = orientation_of(volume_like.direction)
    allowed = [str(o).lower() for o in dom.get("orientations", ["axial"])]
    if orient.plane not in allowed:
        warnings.append(
            f"slices are {orient.plane}, the model was made for {'/'.join(allowed)} slices "
            "(the volume is resliced, which is only as good as the slice spacing)"
        )
    if orient.max_angle_deg > OBLIQUE_TOLERANCE_DEG:
        warnings.append(
            f"the scan is oblique ({orient.max_angle_deg:.0f}° from the nearest standard plane)"
        )
    # in-plane of the canonical axial slice
    cs = orient.spacing((sz, sy, sx))
    cshape = orient.shape((nz, ny, nx))
    if "pixel_spacing_mm" in dom:
        lo, hi = (float(v) for v in dom["pixel_spacing_mm"])
        bad = [s for s in cs[1:] if not lo <= s <= hi]
        if bad:
            warnings.append(
                f"pixel spacing {cs[1]:.3g} x {cs[2]:.3g} mm is outside {lo:g}..{hi:g} mm"
            )
    if "fov_mm" in dom:
        lo, hi = (float(v) for v in dom["fov_mm"])
        fov = max(cshape[1] * cs[1], cshape[2] * cs[2])
        if not lo <= fov <= hi:
            what = "smaller" if fov < lo else "larger"
            warnings.append(
                f"field of view {fov:.0f} mm is {what} than the {lo:g}..{hi:g} mm of a chest scan"
                + (" (head or extremity?)" if fov < lo else "")
            )
    return warnings


def validate_domain_spec(domain: dict[str, Any], where: str = "model.json domain") -> None:
    """Raise :class:`PackageError` when a ``domain`` dict has malformed ranges."""
    for key in ("hu_range", "pixel_spacing_mm", "fov_mm"):
        if key in domain:
            v = domain[key]
            if not (isinstance(v, list | tuple) and len(v) == 2 and float(v[0]) <= float(v[1])):
                raise PackageError(f"{where}: '{key}' must be [low, high], got {v!r}")
