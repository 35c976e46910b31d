"""bench/eval_model_real.py helpers that need no real data: the false-positive picture."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
_spec = importlib.util.spec_from_file_location("eval_model_real", ROOT / "bench" / "eval_model_real.py")
emr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(emr)  # type: ignore[union-attr]


def test_fp_picture_shows_the_slices_with_most_lesion_outside_the_boxes(tmp_path, capsys) -> None:
    hu = np.full((6, 64, 64), -800, np.float32)
    lab = np.zeros(hu.shape, np.uint8)
    lab[1, 10:20, 10:20] = 3  # 100 voxels, all inside the box -> not a false positive
    lab[3, 40:45, 40:45] = 3  # 25 outside
    lab[4, 5:8, 5:8] = 3  # 9 outside
    boxes = {1: [(8, 8, 22, 22)]}
    out = tmp_path / "fp.png"
    emr._fp_picture(out, hu, lab, np.zeros_like(lab), {3: (255, 0, 0)}, boxes)
    assert "{3: 25, 4: 9}" in capsys.readouterr().out
    import cv2

    img = cv2.imread(str(out))
    assert img is not None and img.shape[1] == 2 * 512  # two slices, 512 px each
    assert (lab[1] == 3).sum() == 100  # the labels were not modified
    # nothing outside the boxes: no picture
    emr._fp_picture(tmp_path / "none.png", hu, lab * (np.arange(6)[:, None, None] == 1), lab * 0, {3: (255, 0, 0)}, boxes)
    assert not (tmp_path / "none.png").exists()


def test_phantom_fp_probe_runs_the_shipped_model_on_lesion_free_bases(tmp_path) -> None:
    spec = importlib.util.spec_from_file_location("phantom_fp_probe", ROOT / "bench" / "phantom_fp_probe.py")
    fp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fp)  # type: ignore[union-attr]
    counts, slices = fp.probe(ROOT / "resources" / "models" / "lung-ct-unet", n=2, seed=1)
    assert len(counts) == 2 and all(c >= 0 for c in counts)
    assert slices[0].shape == (256, 256)
    assert fp.main([str(ROOT / "resources" / "models" / "lung-ct-unet"), "--n", "1", "--picture", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").exists()
    assert fp.main([str(tmp_path / "no-such-package")]) == 2  # bad input: a message, exit 2
