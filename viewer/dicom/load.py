"""Load a scanned stack into a :class:`viewer.volume.Volume`. No Qt.

``load_stack(stack)`` decodes the frames of one :class:`viewer.dicom.scan.Stack`:

* slices sorted by ImagePositionPatient · normal, spacing from positions (DESIGN.md rule 4);
  missing slices become blank slices at their true position (warning), irregular spacing and
  gantry tilt are warnings (tilt keeps the true slice step vector in ``direction[:, 2]``);
* rescale slope/intercept applied once: int16 when the result is exactly integer and fits,
  float32 otherwise; the int16 path rescales in place (modular int16 arithmetic is exact when
  the final value fits), so peak memory stays near one int16 volume;
* PixelPaddingValue voxels become air (-1024 HU for CT) or the lowest real value otherwise;
* MONOCHROME1 is flagged (``meta.invert``), colour becomes RGB uint8 ``[z, y, x, 3]``;
* the middle slice is decoded first and handed to ``first_slice_callback(z, slice)`` so a GUI can
  show it at once; ``threads=N`` decodes files in a thread pool. By default threads are used only
  when every file takes the GIL-free imagecodecs route (:mod:`viewer.dicom.fastcodecs`):
  measured here, pylibjpeg's libjpeg and openjpeg decoders hold the GIL during a frame, and two
  threads were slower than one on the shared 2-core machine (see docs/bench/load.md);
* a file that fails to decode leaves a blank slice and a warning naming it; the rest loads.

``load_path(path, series=None)`` scans and loads in one call.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from viewer.dicom.decode import is_color, iter_stored_frames
from viewer.dicom.fastcodecs import fast_codec_ok
from viewer.dicom.layout import SliceLayout, plan_layout
from viewer.dicom.records import FileInfo, FrameRecord
from viewer.dicom.scan import ScanResult, Stack, scan
from viewer.errors import Cancelled, DicomError
from viewer.jobs import CancelCheck, Progress, check_cancel, report
from viewer.volume import Volume, VolumeMeta, WindowPreset

__all__ = ["load_stack", "load_path", "pick_stack", "FirstSliceCallback"]

log = logging.getLogger(__name__)

FirstSliceCallback = Callable[[int, np.ndarray], None]
INT16 = (-32768, 32767)


class _CallbackError(Exception):
    """Carries an exception raised by ``first_slice_callback`` past the per-file handler."""


def _raw_range(info: FileInfo) -> tuple[int, int]:
    bs = info.bits_stored
    return (
        (-(1 << (bs - 1)), (1 << (bs - 1)) - 1) if info.pixel_representation else (0, (1 << bs) - 1)
    )


def _fill_raw(rec: FrameRecord, raw: np.ndarray | None, ct: bool) -> float:
    """Stored value used for padding / blank slices: air (-1024 HU) for CT, else the lowest
    value."""
    lo, hi = _raw_range(rec.file)
    if ct and rec.slope > 0:
        v = round((-1024.0 - rec.intercept) / rec.slope)
        if lo <= v <= hi:
            return v
    if raw is not None and raw.size:
        return float(raw.min())
    return float(max(lo, 0) if lo < 0 < hi else lo)


class _Assembler:
    """Writes decoded frames into the output array (thread-safe per slice)."""

    def __init__(
        self, stack: Stack, layout: SliceLayout, out: np.ndarray, int_path: bool, ct: bool
    ) -> None:
        self.stack, self.layout, self.out, self.int_path, self.ct = stack, layout, out, int_path, ct
        self.color = out.ndim == 4
        self.padded = 0
        self.lock = threading.Lock()

    def store(self, z: int, rec: FrameRecord, raw: np.ndarray) -> np.ndarray:
        """Write stored values ``raw`` into slice ``z``; returns them after padding replacement."""
        info = rec.file
        want = (info.rows, info.columns, 3) if self.color else (info.rows, info.columns)
        if raw.shape != want:
            raise ValueError(f"decoded frame has shape {raw.shape}, the header says {want}")
        if self.color:
            self.out[z] = raw
            return raw
        if info.padding_value is not None:
            m = raw == info.padding_value
            if m.any():
                raw = raw if raw.flags.writeable else raw.copy()
                raw[m] = _fill_raw(rec, raw[~m], self.ct)
                with self.lock:
                    self.padded += int(m.sum())
        if self.int_path:
            np.copyto(self.out[z], raw, casting="unsafe")
        else:
            np.multiply(raw, rec.slope, out=self.out[z], casting="unsafe")
            self.out[z] += np.float32(rec.intercept)
        return raw

    def rescaled(self, rec: FrameRecord, raw: np.ndarray) -> np.ndarray:
        """One slice in output units (for the first-slice callback)."""
        if self.color:
            return raw.copy()
        v = raw.astype(np.float64) * rec.slope + rec.intercept
        if self.int_path and v.min() >= INT16[0] and v.max() <= INT16[1]:
            return v.astype(np.int16)
        return v.astype(np.float32)


def _check_memory(stack: Stack, nz: int, itemsize: int, max_bytes: int | None) -> None:
    need = nz * stack.rows * stack.columns * itemsize
    if max_bytes is None:
        try:
            import psutil

            max_bytes = int(psutil.virtual_memory().available * 0.8)
        except ImportError:  # pragma: no cover
            max_bytes = 16 << 30
    if need > max_bytes:
        raise DicomError(
            f"stack {stack.stack_id} ({stack.description or 'no description'}): {nz} x "
            f"{stack.rows} x "
            f"{stack.columns} voxels need {need / 2**30:.1f} GiB but only "
            f"{max_bytes / 2**30:.1f} GiB may be "
            "used; free memory or load a smaller series"
        )


def _rescale_int16(
    out: np.ndarray, recs: list[FrameRecord | None], unsigned: bool, theory_fits: bool
) -> np.ndarray:
    """Apply integer slope/intercept to stored values held in ``out`` (int16), in place when
    exact."""
    present = [(z, r) for z, r in enumerate(recs) if r is not None]
    slopes = {int(r.slope) for _, r in present}
    inters = {int(r.intercept) for _, r in present}
    raw_view = out.view(np.uint16) if unsigned else out
    if not theory_fits:  # measure what is really stored
        lo, hi = int(raw_view.min()), int(raw_view.max())
        vals = [lo * s + b for s in slopes for b in inters] + [
            hi * s + b for s in slopes for b in inters
        ]
        if min(vals) < INT16[0] or max(vals) > INT16[1]:
            res = raw_view.astype(np.float32)
            for z, r in present:
                res[z] *= np.float32(r.slope)
                res[z] += np.float32(r.intercept)
            return res
    if len(slopes) == 1 and len(inters) == 1:
        s, b = slopes.pop(), inters.pop()
        if s != 1:
            np.multiply(out, _scalar(s), out=out, casting="unsafe")
        if b:
            np.add(out, _scalar(b), out=out, casting="unsafe")
        return out
    for z, r in present:
        if int(r.slope) != 1:
            np.multiply(out[z], _scalar(int(r.slope)), out=out[z], casting="unsafe")
        np.add(out[z], _scalar(int(r.intercept)), out=out[z], casting="unsafe")
    return out


def _scalar(v: int) -> np.integer:
    """int16 scalar when it fits (in-place int16 maths), else int64 (wraps back exactly on the
    cast)."""
    return np.int16(v) if INT16[0] <= v <= INT16[1] else np.int64(v)


def _meta(stack: Stack, layout: SliceLayout, mid: FrameRecord, color: bool) -> VolumeMeta:
    info, h = mid.file, mid.file.header
    ct = info.modality == "CT"
    presets, seen = [], set()
    for c, w, name in mid.windows:
        if (c, w) not in seen:
            seen.add((c, w))
            presets.append(WindowPreset(name, c, w))
    recs = layout.records
    return VolumeMeta(
        modality=info.modality,
        patient_name=info.patient_name,
        patient_id=info.patient_id,
        patient_birth_date=h.get("patient_birth_date", ""),
        patient_sex=h.get("patient_sex", ""),
        patient_position=h.get("patient_position", ""),
        study_instance_uid=info.study_uid,
        study_date=h.get("study_date", ""),
        study_description=h.get("study_description", ""),
        series_instance_uid=info.series_uid,
        series_number=info.series_number,
        series_description=info.series_description,
        frame_of_reference_uid=h.get("frame_of_reference_uid", ""),
        body_part=h.get("body_part", ""),
        manufacturer=h.get("manufacturer", ""),
        photometric="RGB" if color else info.photometric,
        invert=info.photometric == "MONOCHROME1",
        units="" if color else ("HU" if ct or mid.rescale_type == "HU" else ""),
        window_presets=presets,
        slice_thickness=mid.slice_thickness,
        sop_class_uid=info.sop_class_uid,
        sop_instance_uids=[r.file.sop_instance_uid if r else "" for r in recs],
        frame_numbers=[r.frame_number if r else None for r in recs],
        source_files=[str(r.file.ref) if r else "" for r in recs],
        extra={
            "stack_id": stack.stack_id,
            "transfer_syntaxes": sorted({r.file.transfer_syntax for r in recs if r}),
            "missing_slices": layout.missing,
        },
    )


def _units(layout: SliceLayout, mid_z: int) -> list[tuple[FileInfo, list[tuple[int, FrameRecord]]]]:
    """Work units (one per file), the one holding slice ``mid_z`` first and that slice first in
    it."""
    by_file: dict[int, list[tuple[int, FrameRecord]]] = defaultdict(list)
    infos: dict[int, FileInfo] = {}
    for z, r in enumerate(layout.records):
        if r is not None:
            by_file[id(r.file)].append((z, r))
            infos[id(r.file)] = r.file
    units = [(infos[k], v) for k, v in by_file.items()]
    units.sort(key=lambda u: 0 if any(z == mid_z for z, _ in u[1]) else 1)
    items = units[0][1]
    items.sort(key=lambda t: 0 if t[0] == mid_z else 1)
    return units


def load_stack(
    stack: Stack,
    *,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    first_slice_callback: FirstSliceCallback | None = None,
    threads: int | None = None,
    max_bytes: int | None = None,
) -> Volume:
    """Decode ``stack`` into a Volume (see the module docstring for the rules).

    Parameters
    ----------
    stack : from :func:`viewer.dicom.scan.scan`.
    progress, cancel : the job protocol (``progress(done, total, msg)`` per file; ``Cancelled``).
    first_slice_callback : ``callback(z, slice)`` with the middle slice in output units, called
        before the other slices are decoded.
    threads : decoder threads (default: up to 4 for GIL-free imagecodecs decoding, else 1).
    max_bytes : refuse volumes larger than this (default: 80 % of available memory).

    Raises
    ------
    DicomError
        no frame could be decoded, or the volume would not fit in memory.
    Cancelled
        ``cancel()`` returned True.
    """
    if not stack.frames:
        raise DicomError(f"stack {stack.stack_id} has no images")
    layout = plan_layout(stack)
    info0 = stack.first
    color = is_color(info0)
    ct = info0.modality == "CT"
    recs = [r for r in layout.records if r is not None]
    integer = all(
        r.slope == round(r.slope) and r.intercept == round(r.intercept) and r.slope != 0
        for r in recs
    )
    int_path = not color and integer and info0.bits_allocated <= 16
    lo, hi = _raw_range(info0)
    ends = [v * r.slope + r.intercept for r in recs for v in (lo, hi)]
    theory_fits = int_path and min(ends) >= INT16[0] and max(ends) <= INT16[1]
    dtype = np.uint8 if color else (np.int16 if int_path else np.float32)
    shape = (layout.nz, info0.rows, info0.columns) + ((3,) if color else ())
    _check_memory(stack, layout.nz, int(np.dtype(dtype).itemsize) * (3 if color else 1), max_bytes)
    out = np.empty(shape, dtype=dtype)
    asm = _Assembler(stack, layout, out, int_path, ct)
    mid_z = layout.middle
    units = _units(layout, mid_z)
    failed: dict[str, str] = {}
    done = [0]
    total = len(recs)
    lock = threading.Lock()

    def deliver(z: int, arr: np.ndarray) -> None:
        if first_slice_callback is not None:
            try:
                first_slice_callback(z, arr)
            except Exception as exc:  # the caller's bug, not a decode failure of this file
                raise _CallbackError(str(exc)) from exc

    def run(unit: tuple[FileInfo, list[tuple[int, FrameRecord]]], first: bool = False) -> None:
        check_cancel(cancel)
        info, items = unit
        stored: set[int] = set()
        try:
            for (z, rec), raw in zip(
                items, iter_stored_frames(info, [r.frame for _, r in items]), strict=False
            ):
                raw = asm.store(z, rec, raw)
                stored.add(z)
                if first and z == mid_z:
                    deliver(z, asm.rescaled(rec, raw))
            if len(stored) < len(items):
                raise ValueError(f"only {len(stored)} of {len(items)} frames could be decoded")
        except (Cancelled, _CallbackError):
            raise
        except BaseException as exc:  # noqa: BLE001 - any decoder failure becomes a per-file reason
            if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                raise  # KeyboardInterrupt / SystemExit; a Rust decoder panic is a bad file
            with lock:
                failed[str(info.ref)] = f"{type(exc).__name__}: {exc}"
            for z, _ in items:
                if z not in stored:
                    layout.blank(z)
                    if z == mid_z and first:
                        deliver(z, np.zeros(shape[1:], dtype=dtype))
        with lock:
            done[0] += len(items)
            report(progress, done[0], total, "loading slices")

    try:
        run(units[0], first=True)
    except _CallbackError as exc:
        raise exc.__cause__ from None  # type: ignore[misc]
    rest = units[1:]
    if threads is None:  # threads only help decoders that release the GIL (imagecodecs)
        gil_free = all(fast_codec_ok(r.file) for r in recs)
        threads = min(4, os.cpu_count() or 1) if gil_free else 1
    n_threads = max(1, int(threads))
    if n_threads <= 1 or len(rest) < 2:
        for u in rest:
            run(u)
    else:
        with ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="dicom-decode") as pool:
            futures = [pool.submit(run, u) for u in rest]
            try:
                for f in futures:
                    f.result()
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    if len(failed) == len(units):
        first = next(iter(failed.items()))
        raise DicomError(
            f"stack {stack.stack_id}: no image could be decoded; {first[0]}: {first[1]}"
        )
    mid_rec = layout.records[mid_z] or recs[0]
    blank = sorted(set(layout.missing) | layout.failed)
    raw_fill = _fill_raw(mid_rec, None, ct)
    out_fill = -1024.0 if ct and int_path else raw_fill * mid_rec.slope + mid_rec.intercept
    if blank:
        out[blank] = 0 if color else (raw_fill if int_path else out_fill)
    if int_path:
        out = _rescale_int16(out, layout.records, info0.pixel_representation == 0, theory_fits)
        if blank:
            out[blank] = out_fill
    warnings = list(stack.notes) + layout.warnings
    if failed:
        warnings.append(
            f"{len(failed)} file(s) could not be decoded and are blank slices: "
            + "; ".join(f"{p}: {r}" for p, r in list(failed.items())[:10])
        )
    if len({(r.slope, r.intercept) for r in recs}) > 1:
        warnings.append(
            "rescale slope/intercept differ between slices; each slice was rescaled with its "
            "own values"
        )
    if asm.padded:
        warnings.append(
            f"{asm.padded} padding voxels (PixelPaddingValue) set to "
            f"{'air (-1024 HU)' if ct else 'the lowest value'}"
        )
    meta = _meta(stack, layout, mid_rec, color)
    meta.extra["failed_files"] = failed
    return Volume(out, layout.spacing, layout.origin, layout.direction, meta, warnings)


def pick_stack(result: ScanResult, series: str | None = None) -> tuple[Stack, list[str]]:
    """The stack to load: by stack id or SeriesInstanceUID (largest stack of that series), else the
    largest image stack. Returns the stack and notes about the choice."""
    stacks = result.find(series) if series else result.stacks
    if not stacks:
        if series:
            known = ", ".join(
                f"{s.series_uid} (stack {s.stack_id}, {s.image_count} images)"
                for s in result.stacks[:8]
            )
            raise DicomError(
                f"series {series!r} not found under {result.root}; available: {known or 'none'}"
            )
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in result.skipped[:3])
        raise DicomError(
            f"no loadable DICOM images under {result.root}"
            + (f" ({len(result.skipped)} file(s) skipped, e.g. {reasons})" if reasons else "")
        )
    best = max(stacks, key=lambda s: (s.image_count, s.rows * s.columns))
    notes = []
    if len(stacks) > 1:
        notes.append(
            f"{len(stacks)} stacks match; loaded the largest (stack {best.stack_id}, "
            f"{best.image_count} "
            "images); pass its stack id to choose another"
        )
    return best, notes


def load_path(
    path: str | os.PathLike[str],
    series: str | None = None,
    *,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    **kwargs: object,
) -> Volume:
    """Scan ``path`` and load one stack (see :func:`pick_stack`); keyword arguments go to
    :func:`load_stack`."""
    result = scan(path, cancel=cancel)
    stack, notes = pick_stack(result, series)
    vol = load_stack(stack, progress=progress, cancel=cancel, **kwargs)  # type: ignore[arg-type]
    vol.warnings[:0] = notes
    return vol
