"""False-positive probe: a model package on lesion-free phantom slices of the lung bases.

Counts the pixels a package labels "lesion" on ``--n`` phantom slices that contain no lesion, drawn
at the lung bases (z 0.75-0.92) with the deep posterior recess, at the model spacing. Used in round 4
to tell a generator-caused false positive (the model makes it on phantoms too) from a domain gap (it
makes it only on real scans). Prints one line per package; ``--picture`` saves the worst slices.
Usage::

    python bench/phantom_fp_probe.py PKG [PKG ...] [--n 24] [--seed 9000] [--picture out.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference.evaluate import ort_engine  # noqa: E402
from inference.package import PackageError, load_package  # noqa: E402
from inference.phantom import PhantomConfig, generate_slice  # noqa: E402
from inference.train_data import normalize_window  # noqa: E402


def probe(package: str | Path, n: int = 24, seed: int = 9000, posterior_recess: float = 2.5,
          threads: int = 1) -> tuple[list[int], list[np.ndarray]]:
    """Lesion pixels predicted per lesion-free basal phantom slice, and those slices (HU) for pictures."""
    pkg = load_package(package, verify=False)
    spec = pkg.input
    eng = ort_engine(pkg.file("onnx"), threads)
    cfg = PhantomConfig(lesion_prob=0.0, posterior_recess=posterior_recess, max_sub_slices=4)
    counts, slices = [], []
    for s in range(n):
        rng = np.random.default_rng([seed, s])
        zf = float(rng.uniform(0.75, 0.92))
        hu, lab, _ = generate_slice(rng, size=256, z_frac=zf, spacing_mm=spec.spacing_mm, config=cfg, lesions=0)
        if (lab == 3).any():
            raise AssertionError("a lesion-free phantom slice has a lesion label")
        x = normalize_window(hu, spec.window_center, spec.window_width)[None, None].astype(np.float32)
        pred = eng(x)[0].argmax(0)
        counts.append(int((pred == 3).sum()))
        slices.append(np.where(pred == 3, np.float32(3000), hu))  # lesion pixels drawn white
    return counts, slices


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("packages", nargs="+")
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--seed", type=int, default=9000)
    ap.add_argument("--picture", help="PNG with the 4 worst slices of the last package")
    a = ap.parse_args(argv)
    for p in a.packages:
        try:
            counts, slices = probe(p, a.n, a.seed)
        except PackageError as exc:  # a missing or broken package folder: say so, no traceback
            print(f"phantom_fp_probe: error: {exc}", file=sys.stderr)
            return 2
        print(f"{p}: {sum(counts)} lesion pixels on {a.n} lesion-free basal phantom slices; "
              f"{sum(c > 30 for c in counts)} slices with > 30")
    if a.picture:
        import cv2

        worst = np.argsort(counts)[::-1][:4]
        tiles = [(normalize_window(slices[i], -600, 1500) * 255).astype(np.uint8) for i in worst]
        cv2.imwrite(a.picture, np.hstack(tiles))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
