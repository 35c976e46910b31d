"""Uniform average of training checkpoints (stochastic weight averaging over a run's kept steps).

    python -m inference.average_checkpoints OUT.pt CKPT.pt [CKPT.pt ...]

Averages every floating-point tensor of the ``model`` state dicts (weights *and* BatchNorm running
statistics); integer buffers (``num_batches_tracked``) are taken from the last checkpoint. The output
is a checkpoint in the same format as :mod:`inference.train` writes (the last input's metadata, no
optimizer state, ``averaged_from`` listing the inputs), so ``clinical-viewer model export
--checkpoint OUT.pt`` packages it like any other. Checkpoints of different architectures are
refused (exit 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["average_checkpoints", "main"]


class AverageError(ValueError):
    """Checkpoints that cannot be averaged; the message says which and why."""


def average_checkpoints(paths: list[str | Path]) -> dict[str, Any]:
    """The averaged checkpoint dict of ``paths`` (at least one)."""
    import torch

    if not paths:
        raise AverageError("no checkpoints given")
    cks = []
    for p in paths:
        try:
            ck = torch.load(str(p), map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - torch.load raises pickle/zip/OS errors on a foreign file
            raise AverageError(f"{p}: cannot read a checkpoint ({exc})") from exc
        if not isinstance(ck, dict) or not isinstance(ck.get("model"), dict):
            raise AverageError(f"{p}: not a training checkpoint (no 'model' state dict)")
        cks.append(ck)
    first, last = cks[0], cks[-1]
    for p, ck in zip(paths, cks, strict=True):
        if (ck.get("arch"), ck.get("arch_args")) != (first.get("arch"), first.get("arch_args")) or \
                ck["model"].keys() != first["model"].keys():
            raise AverageError(f"{p}: a different architecture than {paths[0]}")
    avg: dict[str, Any] = {}
    for k, v in last["model"].items():
        if torch.is_floating_point(v):
            avg[k] = torch.stack([ck["model"][k].float() for ck in cks]).mean(0).to(v.dtype)
        else:
            avg[k] = v.clone()
    out = {k: v for k, v in last.items() if k not in ("model", "optimizer", "scheduler")}
    out["model"] = avg
    out["averaged_from"] = [str(p) for p in paths]
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("checkpoints", nargs="+")
    a = ap.parse_args(argv)
    try:
        ck = average_checkpoints(a.checkpoints)
    except AverageError as exc:
        print(f"average_checkpoints: error: {exc}", file=sys.stderr)
        return 2
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(ck, a.out)
    print(f"{a.out}: average of {len(a.checkpoints)} checkpoints (step {ck.get('step')} metadata)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
