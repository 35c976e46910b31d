"""A tiny training run on real phantom slices: reproducible, checkpointed, resumable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from inference.train import TrainConfig, dice_per_label, load_checkpoint, main, seg_loss, train  # noqa: E402
from inference.train_data import DataConfig, PhantomSlices, augment, fit_canvas, resample_slice  # noqa: E402

# Real generator, tiny images: 64 px phantom slices resampled to 6 mm, 32 px training crops.
TINY_DATA = dict(gen_kwargs={"size": 64}, spacing_mm=6.0, canvas=64, crop=32, pool=8, lifetime=2,
                 hires_fraction=0.0)


def tiny_config(out: Path, steps: int = 4, **kw) -> TrainConfig:
    return TrainConfig(out=str(out), seed=7, steps=steps, batch=2, base=4, depth=2, warmup=1,
                       ckpt_every=2, val_every=2, val_n=2, log_every=1, threads=1,
                       data=DataConfig(**TINY_DATA), **kw)


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("run_a")
    return out, train(tiny_config(out, steps=6))


def test_same_seed_gives_identical_losses(straight_run, tmp_path) -> None:
    out_a, summary_a = straight_run
    summary_b = train(tiny_config(tmp_path / "b", steps=6))
    hist_a = load_checkpoint(out_a / "last.pt")["history"]
    hist_b = load_checkpoint(tmp_path / "b" / "last.pt")["history"]
    assert len(hist_a) == 6 and hist_a == hist_b
    assert summary_a["final_loss"] == summary_b["final_loss"]
    assert np.isfinite(hist_a).all()


def test_resume_continues_exactly(straight_run, tmp_path) -> None:
    out_a, _ = straight_run
    out = tmp_path / "c"
    first = train(tiny_config(out, steps=6, max_minutes=0.0))  # stops after one step (time limit)
    assert first["stopped"] == "time limit" and first["steps_done"] == 1
    resumed = train(tiny_config(out, steps=6, resume=True))
    assert resumed["steps_done"] == 6 and resumed["stopped"] == "completed"
    assert load_checkpoint(out / "last.pt")["history"] == load_checkpoint(out_a / "last.pt")["history"]


def test_checkpoints_metrics_and_summary(straight_run) -> None:
    out, summary = straight_run
    ck = load_checkpoint(out / "best.pt")
    assert ck["arch"] == "UNet2D" and ck["arch_args"]["base"] == 4 and ck["config"]["data"]["crop"] == 32
    lines = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(1, 7))
    assert any("dice_1" in r for r in lines)
    assert json.loads((out / "summary.json").read_text())["steps_done"] == 6 == summary["steps_done"]


def test_cli_entry_point_writes_progress_log(tmp_path) -> None:
    out = tmp_path / "cli"
    argv = ["--out", str(out), "--steps", "2", "--batch", "2", "--base", "4", "--depth", "2", "--val-n", "0",
            "--threads", "1", "--pool", "4", "--canvas", "64", "--crop", "32", "--spacing-mm", "6",
            "--hires-fraction", "0", "--gen-kwargs", '{"size": 64}', "--log-every", "1"]
    assert main(argv) == 0
    log = (out / "progress.log").read_text()
    assert "step 2/2" in log and "command:" in log


def test_loss_is_low_for_a_perfect_prediction() -> None:
    y = torch.randint(0, 4, (2, 16, 16))
    good = torch.nn.functional.one_hot(y, 4).permute(0, 3, 1, 2).float() * 20
    bad = torch.zeros(2, 4, 16, 16)
    assert seg_loss(good, y)[0] < 0.05 < seg_loss(bad, y)[0]


def test_dice_per_label() -> None:
    a = np.array([[1, 1, 0, 2]])
    b = np.array([[1, 0, 0, 2]])
    d = dice_per_label(a, b, [1, 2, 3])
    assert d[1] == pytest.approx(2 / 3) and d[2] == 1.0 and np.isnan(d[3])


def test_data_pipeline_deterministic_and_no_lr_flip() -> None:
    ds = PhantomSlices(DataConfig(**TINY_DATA), seed=3)
    x1, y1 = ds[1]
    x2, y2 = PhantomSlices(DataConfig(**TINY_DATA), seed=3)[1]
    assert x1.shape == (1, 32, 32) and x1.dtype == np.float32 and 0 <= x1.min() and x1.max() <= 1
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    # right lung (1) stays on the image left of the left lung (2) after augmentation
    hu, lab = ds.raw(0)
    for k in range(5):
        _, la = augment(hu.astype(np.float32), lab, np.random.default_rng(k), DataConfig(**{**TINY_DATA, "crop": 64}))
        if (la == 1).any() and (la == 2).any():
            assert np.nonzero(la == 1)[1].mean() < np.nonzero(la == 2)[1].mean()


def test_resample_and_canvas() -> None:
    hu = np.zeros((100, 50), np.float32)
    out, lab = resample_slice(hu, (1.0, 2.0), 2.0, np.zeros((100, 50), np.uint8))
    assert out.shape == (50, 50) and lab is not None and lab.shape == (50, 50)
    c = fit_canvas(np.ones((10, 30), np.int16), 20, -1024)
    assert c.shape == (20, 20) and (c[:5] == -1024).all() and (c[5:15] == 1).all()


def test_init_from_a_package_model_pt(straight_run, tmp_path) -> None:
    """--init takes a training checkpoint or a model package's model.pt ({state_dict, architecture, args})."""
    out_a, _ = straight_run
    ck = load_checkpoint(out_a / "last.pt")
    pkg_pt = tmp_path / "model.pt"
    torch.save({"state_dict": ck["model"], "architecture": "UNet2D", "args": ck["arch_args"]}, pkg_pt)
    first = []
    for init in (out_a / "last.pt", pkg_pt):
        out = tmp_path / f"ft_{init.stem}"
        train(tiny_config(out, steps=1, init=str(init)))
        first.append(load_checkpoint(out / "last.pt")["history"][0])
    # same weights either way, and not the fresh initialisation's first loss
    assert first[0] == first[1] != ck["history"][0]

    bad = tmp_path / "other.pt"
    torch.save({"weights": {}}, bad)
    with pytest.raises(ValueError, match="neither a training checkpoint"):
        train(tiny_config(tmp_path / "ft_bad", steps=1, init=str(bad)))
