"""DICOM input (no Qt): scan folders/files/DICOMDIR/zip (headers only), load stacks into a
``Volume``.

The 3D Slicer "examine, then load" split::

    from viewer.dicom import scan, load_stack, load_path
    result = scan("/path/to/study")  # patients -> studies -> series -> stacks; skipped files
    vol = load_stack(result.stacks[0], progress=..., cancel=..., first_slice_callback=...)
    vol = load_path("/path/to/study", series="1.2.840...")   # both in one call

Modules: ``scan`` (grouping), ``headers`` / ``fastheader`` (header reading), ``geometry`` /
``layout`` (slice order, spacing, gaps, tilt), ``decode`` (pixel data), ``load`` (Volume
assembly), ``commands`` (CLI), ``synth`` (synthetic series for tests, benchmarks and the demo).
"""

from __future__ import annotations

from viewer.dicom.load import load_path, load_stack, pick_stack
from viewer.dicom.scan import ScanResult, Stack, scan

__all__ = ["scan", "load_stack", "load_path", "pick_stack", "ScanResult", "Stack"]
