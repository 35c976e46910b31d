"""Per-frame values of one header: geometry, rescale, windows, echo/temporal keys. No Qt.

Single-frame images take them from the top level; enhanced multi-frame objects from the
functional groups (PS3.3 C.7.6.16): PlanePosition, PlaneOrientation, PixelMeasures,
PixelValueTransformation, FrameVOILUT, FrameContent, MR echo (shared first, per-frame overrides).
Works on a ``pydicom.Dataset`` or a :class:`viewer.dicom.fastheader.FastDataset`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from viewer.dicom.records import FileInfo, FrameRecord

__all__ = ["frame_records"]


def _str(ds: Dataset, key: str, default: str = "") -> str:
    v = ds.get(key)
    return default if v is None else str(v).strip()


def _int(ds: Dataset, key: str) -> int | None:
    v = ds.get(key)
    try:
        return None if v is None or v == "" else int(v)
    except (TypeError, ValueError):
        return None


def _floats(v: Any, n: int) -> tuple[float, ...] | None:
    if v is None:
        return None
    try:
        vals = tuple(
            float(x)
            for x in (
                v
                if isinstance(v, (list, tuple)) or hasattr(v, "__iter__") and not isinstance(v, str)
                else [v]
            )
        )
    except (TypeError, ValueError):
        return None
    return vals if len(vals) == n else None


def _first(ds: Dataset, seq: str) -> Dataset | None:
    s = ds.get(seq)
    return s[0] if s is not None and len(s) else None


def _windows(item: Dataset | None) -> list[tuple[float, float, str]]:
    if item is None or "WindowCenter" not in item or "WindowWidth" not in item:
        return []
    c, w = item.WindowCenter, item.WindowWidth
    multi = (list, tuple, pydicom.multival.MultiValue)
    cs = list(c) if isinstance(c, multi) else [c]
    ws = list(w) if isinstance(w, multi) else [w]
    ex = item.get("WindowCenterWidthExplanation", "")
    exs = list(ex) if isinstance(ex, multi) else [ex] * len(cs)
    out = []
    for i, (ci, wi) in enumerate(zip(cs, ws, strict=False)):
        try:
            cf, wf = float(ci), float(wi)
        except (TypeError, ValueError):
            continue
        if wf > 0:
            out.append((cf, wf, str(exs[i]) if i < len(exs) and exs[i] else f"Header {i + 1}"))
    return out


def _number(v: Any, default: float) -> float:
    """``float(v)``, or ``default`` when the attribute is absent or empty (0 stays 0)."""
    return default if v is None or v == "" else float(v)


def _finite(v: Any) -> bool:
    return v is not None and all(math.isfinite(x) for x in v)


def _valid_position(p: tuple[float, ...] | None) -> tuple[float, ...] | None:
    return p if _finite(p) and max(abs(x) for x in p) < 1e7 else None  # type: ignore[union-attr]


def _valid_orientation(iop: tuple[float, ...] | None) -> tuple[float, ...] | None:
    """IOP with finite, non-zero, orthogonal (within ~0.6°) row and column vectors, else None."""
    if not _finite(iop):
        return None
    a = np.asarray(iop, dtype=np.float64).reshape(2, 3)
    n = np.linalg.norm(a, axis=1)
    if (
        not np.isfinite(n).all()
        or n.min() < 1e-6
        or not abs(float(a[0] @ a[1]) / float(n[0] * n[1])) <= 0.01
    ):
        return None
    return iop


def _valid_spacing(ps: tuple[float, ...] | None) -> tuple[float, ...] | None:
    return ps if _finite(ps) and all(0 < x < 1e4 for x in ps) else None  # type: ignore[union-attr]


def _valid_thickness(th: float | None) -> float | None:
    return th if th is not None and math.isfinite(th) and 0 < th < 1e5 else None


def _check_rescale(slope: float, intercept: float) -> None:
    if not (math.isfinite(slope) and slope != 0 and abs(slope) < 1e6) or not (
        math.isfinite(intercept) and abs(intercept) < 1e9
    ):
        raise ValueError(
            f"RescaleSlope (0028,1053) {slope!r} / RescaleIntercept (0028,1052) {intercept!r} "
            "cannot be applied (must be finite, slope non-zero); fix the header"
        )


def _note_geometry(info: FileInfo, raw_iop: Any, raw_pos: Any, iop: Any, pos: Any) -> None:
    notes = info.header.setdefault("notes", [])
    if raw_iop is not None and iop is None:
        msg = "ImageOrientationPatient (0020,0037) is degenerate (NaN, zero or non-orthogonal)"
    elif raw_pos is not None and pos is None:
        msg = "ImagePositionPatient (0020,0032) is not a finite position"
    else:
        return
    note = f"{msg}: loaded as a 2-D image without patient coordinates"
    if note not in notes:
        notes.append(note)


def frame_records(ds: Dataset, info: FileInfo) -> list[FrameRecord]:
    """One record per frame (one for a single-frame image), with geometry and rescale values."""
    shared = _first(ds, "SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    base_pos = _floats(ds.get("ImagePositionPatient"), 3)
    base_iop = _floats(ds.get("ImageOrientationPatient"), 6)
    base_ps = _floats(ds.get("PixelSpacing"), 2)
    base_th = _valid_thickness(float(ds.get("SliceThickness") or 0) or None)
    slope = _number(ds.get("RescaleSlope"), 1.0)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    rtype = _str(ds, "RescaleType")
    windows = _windows(ds)
    inst = _int(ds, "InstanceNumber")
    acq, echo, temporal = (
        _str(ds, "AcquisitionNumber"),
        _str(ds, "EchoNumbers"),
        _str(ds, "TemporalPositionIdentifier"),
    )
    n = info.number_of_frames
    recs: list[FrameRecord] = []
    for k in range(n):
        pos, iop, ps, th = base_pos, base_iop, base_ps, base_th
        sl, ic, rt, win, stack_key, fecho, ftemp = (
            slope,
            intercept,
            rtype,
            windows,
            "",
            echo,
            temporal,
        )
        groups = [
            g
            for g in (
                shared,
                per_frame[k] if per_frame is not None and k < len(per_frame) else None,
            )
            if g
        ]
        for g in groups:  # shared first, per-frame overrides
            if (it := _first(g, "PlanePositionSequence")) is not None:
                pos = _floats(it.get("ImagePositionPatient"), 3) or pos
            if (it := _first(g, "PlaneOrientationSequence")) is not None:
                iop = _floats(it.get("ImageOrientationPatient"), 6) or iop
            if (it := _first(g, "PixelMeasuresSequence")) is not None:
                ps = _floats(it.get("PixelSpacing"), 2) or ps
                th = _valid_thickness(float(it.get("SliceThickness") or 0) or None) or th
            if (it := _first(g, "PixelValueTransformationSequence")) is not None:
                sl = _number(it.get("RescaleSlope"), sl)
                ic = _number(it.get("RescaleIntercept"), ic)
                rt = _str(it, "RescaleType", rt)
            if (it := _first(g, "FrameVOILUTSequence")) is not None:
                win = _windows(it) or win
            if (it := _first(g, "FrameContentSequence")) is not None:
                stack_key = _str(it, "StackID")
                ftemp = _str(it, "TemporalPositionIndex", ftemp)
            if (it := _first(g, "MREchoSequence")) is not None:
                fecho = _str(it, "EffectiveEchoTime", fecho)
        if n > 1 and per_frame is None and pos is not None and iop is not None:
            # legacy multi-frame (e.g. NM): frames stepped by SpacingBetweenSlices along the normal
            step = info.header.get("spacing_between_slices") or th or 0.0
            if step:
                from viewer.dicom.geometry import slice_normal

                pos = tuple(float(v) for v in (slice_normal(iop) * step * k + base_pos))
            else:
                pos = None
        _check_rescale(sl, ic)
        raw_pos, raw_iop = pos, iop
        pos, iop = _valid_position(pos), _valid_orientation(iop)
        if pos is None or iop is None:
            _note_geometry(info, raw_iop, raw_pos, iop, pos)
            pos = iop = None
        ps = _valid_spacing(ps)
        recs.append(
            FrameRecord(
                file=info,
                frame=k if n > 1 or per_frame is not None else None,
                instance_number=inst,
                position=pos,
                orientation=iop,
                pixel_spacing=ps,
                slice_thickness=th,
                slope=sl,
                intercept=ic,
                rescale_type=rt,
                windows=win,
                acquisition=acq,
                echo=fecho,
                temporal=ftemp,
                stack_key=stack_key,
                gantry_tilt=float(info.header.get("gantry_tilt", 0.0)),
            )
        )
    return recs
