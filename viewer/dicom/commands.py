"""Command handlers ``clinical-viewer scan`` and ``clinical-viewer convert`` (wired in
viewer/cli.py).

No Qt. ``scan PATH [--json]`` lists patients / studies / series / stacks (UIDs, description,
modality, image count, dimensions, spacing, warnings), non-image objects and skipped files with
reasons. ``convert PATH [--series UID|STACK_ID] --out FILE.nii[.gz]`` loads one stack and writes
it as NIfTI with the LPS→RAS affine. User errors raise :class:`viewer.errors.DicomError` /
:class:`viewer.cli.BadInput` (exit code 2).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import TextIO

from viewer.dicom.scan import ScanResult, scan

__all__ = ["cmd_scan", "cmd_convert", "format_scan"]

log = logging.getLogger(__name__)


def _fmt_spacing(sp: tuple[float, float, float] | None) -> str:
    return "-" if sp is None else "x".join(f"{v:.3g}" for v in sp)


def format_scan(result: ScanResult) -> str:
    """Human-readable table of a scan (one line per stack, then non-image and skipped files)."""
    lines = [
        f"Scanned {result.root}: {len(result.stacks)} stack(s), {len(result.non_image)} non-image "
        f"object(s), {len(result.skipped)} skipped file(s)"
    ]
    head = (
        f"{'stack id':<13} {'series#':>7} {'mod':<4} {'images':>6} {'size':>9} "
        f"{'spacing mm (z,y,x)':<20} description"
    )
    for p in result.patients:
        for st in p.studies:
            lines.append("")
            lines.append(f"Study {st.study_uid or '(no UID)'}  {st.date}  {st.description}")
            lines.append(head)
            for se in st.series:
                for sk in se.stacks:
                    size = f"{sk.columns}x{sk.rows}"
                    number = se.series_number if se.series_number is not None else "-"
                    lines.append(
                        f"{sk.stack_id:<13} {number:>7} "
                        f"{sk.modality:<4} {sk.image_count:>6} {size:>9} "
                        f"{_fmt_spacing(sk.spacing):<20} "
                        f"{sk.description}"
                    )
                    lines.append(f"{'':<13} series {se.series_uid}")
                    lines.extend(f"{'':<13} ! {w}" for w in sk.warnings)
    if result.non_image:
        lines.append("")
        lines.append("Non-image objects:")
        lines.extend(f"  {n.sop_class_name:<32} {n.path}" for n in result.non_image)
    if result.skipped:
        lines.append("")
        lines.append("Skipped files:")
        not_dicom = [s for s in result.skipped if s.reason.startswith("not a DICOM file")]
        lines.extend(f"  {s.path}: {s.reason}" for s in result.skipped if s not in not_dicom)
        if not_dicom:
            names = ", ".join(os.path.basename(s.path) for s in not_dicom[:5])
            more = " ..." if len(not_dicom) > 5 else ""
            lines.append(
                f"  {len(not_dicom)} non-DICOM file(s): {names}{more} (--json lists them all)"
            )
    return "\n".join(lines)


def cmd_scan(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """``clinical-viewer scan PATH [--json]``; returns the exit code (0)."""
    out = out or sys.stdout
    result = scan(args.path)
    if getattr(args, "json", False):
        json.dump(result.to_dict(), out, indent=2)
        out.write("\n")
    else:
        out.write(format_scan(result) + "\n")
    return 0


def cmd_convert(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """``clinical-viewer convert PATH [--series UID] --out FILE.nii.gz``; returns the exit code
    (0)."""
    from viewer.cli import BadInput
    from viewer.dicom.load import load_path
    from viewer.export.nifti import write_nifti

    out = out or sys.stdout
    dest = str(args.out)
    if not (dest.endswith(".nii") or dest.endswith(".nii.gz")):
        raise BadInput(f"--out {dest}: the output must end in .nii or .nii.gz")
    vol = load_path(args.path, getattr(args, "series", None))
    path = write_nifti(vol, dest)
    for w in vol.warnings:
        print(f"warning: {w}", file=sys.stderr)
    nz, ny, nx = vol.shape
    out.write(
        f"wrote {path}: {nx}x{ny}x{nz} voxels, spacing {_fmt_spacing(vol.spacing)} mm (z,y,x), "
        f"{vol.voxels.dtype}, series {vol.meta.series_instance_uid} (stack "
        f"{vol.meta.extra.get('stack_id')})\n"
    )
    return 0
