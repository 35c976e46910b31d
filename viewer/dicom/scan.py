"""Scan a file, folder, DICOMDIR or zip (headers only) into patients → studies → series → stacks.

No Qt. ``scan(path)`` reads every candidate file with ``stop_before_pixels`` and groups images:

* a **series** is one SeriesInstanceUID;
* a **stack** is a loadable set of 2-D images of one series: one orientation, one matrix size,
  one echo / temporal position / enhanced StackID, one multi-frame file, and never two images at
  the same position. Images that share a position are split first by AcquisitionNumber and
  otherwise by order (copy 1, copy 2 …), so duplicates are never stacked as slices.
  AcquisitionNumber alone does not split a stack: step-and-shoot CT gives every rotation (often
  every slice) its own number, and splitting on it would shatter such a series into slices. Images
  without ImagePositionPatient/ImageOrientationPatient form one stack each.

Non-image objects (SR, SEG, RTSTRUCT, presentation states, KO …) are listed in
``ScanResult.non_image``; unusable files in ``ScanResult.skipped``, each with a reason.
``ScanResult.to_dict()`` is JSON-serialisable (no pixel data). ``Stack.stack_id`` is a hash of
the series UID and the frames' SOPInstanceUIDs, so it is stable across scans of the same files.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from viewer.dicom.geometry import ABS_TOL_MM, analyse_positions, orientation_label, slice_normal
from viewer.dicom.headers import read_header
from viewer.dicom.records import FileInfo, FrameRecord, NonImageObject, SkippedFile
from viewer.dicom.sources import list_sources
from viewer.jobs import CancelCheck, Progress, check_cancel, report

__all__ = [
    "scan",
    "ScanResult",
    "Patient",
    "Study",
    "Series",
    "Stack",
    "SkippedFile",
    "NonImageObject",
]

log = logging.getLogger(__name__)


@dataclass
class Stack:
    """A loadable set of frames, sorted along the slice normal (ascending) when geometry exists."""

    stack_id: str
    frames: list[FrameRecord]
    spacing: tuple[float, float, float] | None = None  # (sz, sy, sx) mm, sz from positions
    orientation: str = ""
    warnings: list[str] = field(default_factory=list)  # notes + geometry warnings
    notes: list[str] = field(default_factory=list)  # grouping notes (not geometry)

    @property
    def first(self) -> FileInfo:
        return self.frames[0].file

    @property
    def series_uid(self) -> str:
        return self.first.series_uid

    @property
    def modality(self) -> str:
        return self.first.modality

    @property
    def description(self) -> str:
        return self.first.series_description

    @property
    def image_count(self) -> int:
        return len(self.frames)

    @property
    def rows(self) -> int:
        return self.first.rows

    @property
    def columns(self) -> int:
        return self.first.columns

    @property
    def files(self) -> list[str]:
        return list(dict.fromkeys(str(f.file.ref) for f in self.frames))

    def to_dict(self) -> dict[str, Any]:
        ts = sorted({f.file.transfer_syntax for f in self.frames})
        return {
            "stack_id": self.stack_id,
            "series_instance_uid": self.series_uid,
            "modality": self.modality,
            "description": self.description,
            "image_count": self.image_count,
            "rows": self.rows,
            "columns": self.columns,
            "spacing": list(self.spacing) if self.spacing else None,
            "orientation": self.orientation,
            "photometric": self.first.photometric,
            "multiframe": self.first.number_of_frames > 1,
            "transfer_syntaxes": ts,
            "warnings": list(self.warnings),
            "files": self.files,
        }


@dataclass
class Series:
    series_uid: str
    series_number: int | None
    description: str
    modality: str
    stacks: list[Stack] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "series_instance_uid": self.series_uid,
            "series_number": self.series_number,
            "description": self.description,
            "modality": self.modality,
            "image_count": sum(s.image_count for s in self.stacks),
            "stacks": [s.to_dict() for s in self.stacks],
        }


@dataclass
class Study:
    study_uid: str
    date: str
    description: str
    series: list[Series] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "study_instance_uid": self.study_uid,
            "date": self.date,
            "description": self.description,
            "series": [s.to_dict() for s in self.series],
        }


@dataclass
class Patient:
    patient_id: str
    patient_name: str
    studies: list[Study] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "patient_id": self.patient_id,
            "patient_name": self.patient_name,
            "studies": [s.to_dict() for s in self.studies],
        }


@dataclass
class ScanResult:
    """Everything found under ``root``."""

    root: str
    patients: list[Patient] = field(default_factory=list)
    non_image: list[NonImageObject] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)

    @property
    def series(self) -> list[Series]:
        return [se for p in self.patients for st in p.studies for se in st.series]

    @property
    def stacks(self) -> list[Stack]:
        return [sk for se in self.series for sk in se.stacks]

    def find(self, key: str) -> list[Stack]:
        """Stacks whose stack_id or SeriesInstanceUID equals ``key``."""
        return [s for s in self.stacks if key in (s.stack_id, s.series_uid)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "patients": [p.to_dict() for p in self.patients],
            "stack_count": len(self.stacks),
            "non_image": [n.to_dict() for n in self.non_image],
            "skipped": [s.to_dict() for s in self.skipped],
        }


def _stack_id(frames: Iterable[FrameRecord], series_uid: str, *, with_files: bool = False) -> str:
    h = hashlib.sha1(series_uid.encode())
    for key in sorted(
        f"{f.file.sop_instance_uid}:{f.frame}" + (f":{f.file.ref}" if with_files else "")
        for f in frames
    ):
        h.update(key.encode())
    return h.hexdigest()[:12]


def _unique_ids(stacks: list[Stack]) -> None:
    """Copies of one SOP instance (same UIDs in several files) get ids that include the file
    names."""
    count: dict[str, int] = defaultdict(int)
    for s in stacks:
        count[s.stack_id] += 1
    for s in stacks:
        if count[s.stack_id] > 1:
            s.stack_id = _stack_id(s.frames, s.series_uid, with_files=True)


def _group_key(f: FrameRecord) -> tuple:
    info = f.file
    iop = tuple(round(v, 3) for v in f.orientation) if f.orientation else None
    geometry_less = f.position is None or iop is None
    per_file = info.sop_instance_uid if (info.number_of_frames > 1 or geometry_less) else ""
    return (
        info.series_uid,
        info.rows,
        info.columns,
        info.samples_per_pixel,
        iop,
        f.echo,
        f.temporal,
        f.stack_key,
        per_file,
    )


def _position_keys(frames: list[FrameRecord]) -> list[int]:
    """Same key for frames whose positions along the normal are within ABS_TOL_MM (one position)."""
    n = slice_normal(frames[0].orientation)  # type: ignore[arg-type]
    d = np.array([float(np.dot(f.position, n)) for f in frames])  # type: ignore[arg-type]
    order = np.argsort(d, kind="stable")
    keys = np.empty(len(d), dtype=int)
    keys[order] = np.concatenate([[0], np.cumsum(np.diff(d[order]) > ABS_TOL_MM)])
    return keys.tolist()


def _split_duplicates(frames: list[FrameRecord]) -> tuple[list[list[FrameRecord]], str]:
    """Split frames so that no position occurs twice in one group."""
    if frames[0].position is None or frames[0].orientation is None:
        return [frames], ""
    keys = _position_keys(frames)
    if len(set(keys)) == len(keys):
        return [frames], ""
    by_acq: dict[str, list[FrameRecord]] = defaultdict(list)
    for f, k in zip(frames, keys, strict=True):
        by_acq[f.acquisition].append((f, k))  # type: ignore[arg-type]
    if len(by_acq) > 1 and all(len({k for _, k in g}) == len(g) for g in by_acq.values()):
        return [[f for f, _ in g] for _, g in sorted(by_acq.items())], "AcquisitionNumber differs"
    order = sorted(
        range(len(frames)),
        key=lambda i: (
            frames[i].instance_number or 0,
            frames[i].file.sop_instance_uid,
            frames[i].frame or 0,
        ),
    )
    seen: dict[int, int] = defaultdict(int)
    copies: dict[int, list[FrameRecord]] = defaultdict(list)
    for i in order:
        copies[seen[keys[i]]].append(frames[i])
        seen[keys[i]] += 1
    dup = sum(c - 1 for c in seen.values() if c > 1)
    return [
        copies[c] for c in sorted(copies)
    ], f"{dup} image(s) share a position with another; duplicates are kept apart"


def _build_stack(frames: list[FrameRecord], series_uid: str, notes: list[str]) -> Stack:
    f0 = frames[0]
    notes = list(notes) + list(f0.file.header.get("notes", []))
    warnings = list(notes)
    spacing = None
    if f0.position is not None and f0.orientation is not None:
        try:
            geo = analyse_positions(
                np.array([f.position for f in frames]),
                f0.orientation,
                slice_thickness=f0.slice_thickness,
            )
            frames = [frames[i] for i in geo.order]
            warnings.extend(geo.warnings)
            ps = f0.pixel_spacing or (1.0, 1.0)
            spacing = (round(geo.step, 6), float(ps[0]), float(ps[1]))
        except ValueError as exc:  # pragma: no cover - duplicates are split before
            warnings.append(str(exc))
    else:
        frames = sorted(frames, key=lambda f: (f.instance_number or 0, f.frame or 0))
        warnings.append("no ImagePositionPatient/ImageOrientationPatient: loaded as a 2-D image")
    return Stack(
        _stack_id(frames, series_uid),
        frames,
        spacing,
        orientation_label(f0.orientation),
        warnings,
        notes,
    )


def _group(records: list[FrameRecord]) -> list[Stack]:
    groups: dict[tuple, list[FrameRecord]] = defaultdict(list)
    for r in records:
        groups[_group_key(r)].append(r)
    stacks: list[Stack] = []
    by_series: dict[str, int] = defaultdict(int)
    for key in groups:
        by_series[key[0]] += 1
    for key, frames in groups.items():
        parts, why = _split_duplicates(frames)
        notes = []
        if by_series[key[0]] > 1 or len(parts) > 1:
            notes.append(
                "series split into several stacks ("
                + (why or "orientation, size, echo, temporal position or multi-frame file differ")
                + ")"
            )
        stacks.extend(_build_stack(p, key[0], notes) for p in parts)
    return stacks


def _tree(stacks: list[Stack]) -> list[Patient]:
    patients: dict[tuple[str, str], Patient] = {}
    studies: dict[str, Study] = {}
    series: dict[str, Series] = {}
    for sk in sorted(
        stacks, key=lambda s: (s.first.series_number or 0, s.series_uid, -s.image_count, s.stack_id)
    ):
        fi = sk.first
        pkey = (fi.patient_id, fi.patient_name)
        if pkey not in patients:
            patients[pkey] = Patient(fi.patient_id, fi.patient_name)
        if fi.study_uid not in studies:
            studies[fi.study_uid] = Study(
                fi.study_uid,
                fi.header.get("study_date", ""),
                fi.header.get("study_description", ""),
            )
            patients[pkey].studies.append(studies[fi.study_uid])
        if fi.series_uid not in series:
            series[fi.series_uid] = Series(
                fi.series_uid, fi.series_number, fi.series_description, fi.modality
            )
            studies[fi.study_uid].series.append(series[fi.series_uid])
        series[fi.series_uid].stacks.append(sk)
    return list(patients.values())


def scan(
    path: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
) -> ScanResult:
    """Scan ``path`` (file, folder, DICOMDIR or zip) reading headers only.

    Parameters
    ----------
    path : what to scan; folders are searched recursively, any file name.
    progress : ``progress(done, total, message)`` per file.
    cancel : polled per file; raises :class:`viewer.errors.Cancelled` when it returns True.

    Raises
    ------
    DicomError
        ``path`` does not exist or is an unreadable DICOMDIR / zip.
    """
    refs, skipped = list_sources(path)
    records: list[FrameRecord] = []
    non_image: list[NonImageObject] = []
    total = len(refs)
    for i, ref in enumerate(refs):
        check_cancel(cancel)
        res = read_header(ref)
        if isinstance(res, SkippedFile):
            skipped.append(res)
        elif isinstance(res, NonImageObject):
            non_image.append(res)
        else:
            records.extend(res[1])
        if i % 16 == 0 or i == total - 1:
            report(progress, i + 1, total, "scanning headers")
    stacks = _group(records)
    _unique_ids(stacks)
    log.debug(
        "scan: %d files, %d stacks, %d non-image, %d skipped",
        total,
        len(stacks),
        len(non_image),
        len(skipped),
    )
    return ScanResult(str(path), _tree(stacks), non_image, skipped)
