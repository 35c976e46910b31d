"""Speed of the synthetic chest CT generator, and the picture gallery of its output.

Measures ``generate_slice`` (256 and 512 px, random z) and ``generate_volume`` (40 x 256 x 256,
5 mm slices), wall and CPU time, single thread. Prints a markdown table and writes
``docs/bench/phantom.md``. With ``--gallery`` it also writes ``docs/images/phantom_*.png``: grids
of slices (apex, hilum, base, abdomen, random patients) in a lung window (-600/1500) above a
mediastinal window (40/400) with label contours (green right lung, blue left lung, red lesion).

Usage: ``python bench/bench_phantom.py [--n 30] [--gallery]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _win(hu: np.ndarray, c: float, w: float) -> np.ndarray:
    return np.clip((hu - (c - w / 2)) / w * 255, 0, 255).astype(np.uint8)


def tile(hu: np.ndarray, lab: np.ndarray, text: str) -> np.ndarray:
    """Lung-window image above a mediastinal-window image with label contours (BGR uint8)."""
    import cv2

    a = cv2.cvtColor(_win(hu, -600, 1500), cv2.COLOR_GRAY2BGR)
    b = cv2.cvtColor(_win(hu, 40, 400), cv2.COLOR_GRAY2BGR)
    for lv, col in ((1, (0, 220, 0)), (2, (255, 140, 0)), (3, (0, 0, 255))):
        cs, _ = cv2.findContours((lab == lv).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(b, cs, -1, col, 1)
    cv2.putText(a, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([a, b])


def gallery(out_dir: Path) -> list[Path]:
    """Write the gallery PNGs; returns their paths."""
    import cv2

    from inference.phantom import generate_slice, generate_volume

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    # 1) one patient from neck to abdomen
    zs = [0.04, 0.14, 0.3, 0.45, 0.6, 0.75, 0.85, 0.98]
    for name, seed in (("phantom_levels_a.png", 11), ("phantom_levels_b.png", 12)):
        tiles = []
        for z in zs:
            hu, lab, sp = generate_slice(
                np.random.default_rng(seed), z_frac=z, size=256, spacing_mm=1.5
            )
            tiles.append(tile(hu, lab, f"z={z:.2f}"))
        p = out_dir / name
        cv2.imwrite(str(p), np.hstack(tiles))
        paths.append(p)
    # 2) random patients at random levels (what training sees)
    rows = []
    for r in range(2):
        tiles = []
        for i in range(6):
            rng = np.random.default_rng(1000 + 6 * r + i)
            hu, lab, sp, info = generate_slice(rng, size=256, return_info=True)
            tiles.append(
                tile(hu, lab, f"z={info['zf']:.2f} {info['kernel']} {info['thickness_mm']}mm")
            )
        rows.append(np.hstack(tiles))
    p = out_dir / "phantom_random.png"
    cv2.imwrite(str(p), np.vstack(rows))
    paths.append(p)
    # 3) a coherent volume: coronal and sagittal reformats through the lungs
    hu, lab, info = generate_volume(
        np.random.default_rng(3),
        shape=(60, 256, 256),
        spacing=(5.0, 1.5, 1.5),
        z_range=(0.0, 1.0),
        lesions=3,
    )
    scale = 5.0 / 1.5
    cor = hu[:, 128 + 10, :]
    sag = hu[:, :, 85]
    ims = []
    for img, lb in ((cor, lab[:, 138, :]), (sag, lab[:, :, 85])):
        h = int(img.shape[0] * scale)
        img_r = cv2.resize(img, (img.shape[1], h), interpolation=cv2.INTER_LINEAR)
        lb_r = cv2.resize(lb, (lb.shape[1], h), interpolation=cv2.INTER_NEAREST)
        ims.append(tile(img_r, lb_r, "coronal" if not ims else "sagittal"))
    p = out_dir / "phantom_volume_reformats.png"
    cv2.imwrite(str(p), np.hstack(ims))
    paths.append(p)
    # 4) the lung bases without / with the deep posterior recess (PhantomConfig.posterior_recess)
    from inference.phantom import PhantomConfig

    rows = []
    for pr in (0.0, 2.5):
        cfg = PhantomConfig(lesion_prob=0.0, posterior_recess=pr)
        tiles = []
        for seed in (21, 23):
            for z in (0.8, 0.85, 0.9):
                hu, lab, sp = generate_slice(
                    np.random.default_rng(seed), z_frac=z, size=256, spacing_mm=1.5, config=cfg
                )
                tiles.append(tile(hu, lab, f"z={z:.2f} posterior_recess={pr}"))
        rows.append(np.hstack(tiles))
    p = out_dir / "phantom_bases.png"
    cv2.imwrite(str(p), np.vstack(rows))
    paths.append(p)
    return paths


def bench(n: int) -> list[tuple[str, float, float]]:
    """(case, wall ms, cpu ms) per item."""
    from inference.phantom import generate_slice, generate_volume

    rows = []
    for size in (256, 512):
        rng = np.random.default_rng(0)
        generate_slice(rng, size=size)  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            generate_slice(rng, size=size)
        rows.append(
            (
                f"generate_slice {size}x{size}, random z (ms/slice)",
                (time.perf_counter() - t0) / n * 1e3,
                (time.process_time() - c0) / n * 1e3,
            )
        )
    rng = np.random.default_rng(1)
    t0, c0 = time.perf_counter(), time.process_time()
    generate_volume(rng, shape=(40, 256, 256), spacing=(5.0, 1.4, 1.4))
    rows.append(
        (
            "generate_volume 40x256x256, 5 mm (ms/volume)",
            (time.perf_counter() - t0) * 1e3,
            (time.process_time() - c0) * 1e3,
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30, help="slices per size")
    ap.add_argument("--gallery", action="store_true", help="also write docs/images/phantom_*.png")
    args = ap.parse_args(argv)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover
        pass
    rows = bench(args.n)
    lines = [
        "# Phantom generator speed",
        "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"single thread (OMP_NUM_THREADS=1, cv2 1 thread); n = {args.n} slices per size. "
        "Target: <= 15 ms per 256 px slice.",
        "",
        "| case | wall ms | CPU ms |",
        "|---|---:|---:|",
    ]
    lines += [f"| {c} | {w:.1f} | {cpu:.1f} |" for c, w, cpu in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "docs" / "bench" / "phantom.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    if args.gallery:
        for p in gallery(ROOT / "docs" / "images"):
            print("wrote", p.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
