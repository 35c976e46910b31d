"""DICOM input: scan folders/files/DICOMDIR/zip (headers only), load stacks into a ``Volume``.

No Qt. ``scan`` examines, ``load_stack`` loads (the 3D Slicer "examine, then load" split);
``synth`` writes synthetic series for tests, benchmarks and the demo.
"""

from __future__ import annotations

__all__: list[str] = []
