"""Train the lung U-Net on synthetic phantom slices (torch-only module, imported lazily).

``python -m inference.train --out runs/NAME --steps 3000`` (also ``clinical-viewer model train``).
Seeded and reproducible on CPU (same seed + same thread count → identical losses, also across a
``--resume``); checkpoints ``last.pt`` every ``--ckpt-every`` steps and ``best.pt`` at the best
validation Dice; progress lines go to the log and ``metrics.jsonl``. The same script runs on
several GPUs with ``torchrun --nproc_per_node=N -m inference.train ...`` (DistributedDataParallel
+ DistributedSampler; process group from the environment, nccl on CUDA, gloo on CPU).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler

from inference import ddp
from inference.jobs import CancelCheck, Progress, check_cancel, report
from inference.networks import UNet2D, count_parameters
from inference.package import PackageError
from inference.train_data import DataConfig, Generator, PhantomSlices, cosine_lr, normalize_window

__all__ = ["TrainConfig", "train", "dice_per_label", "seg_loss", "build_parser", "main", "load_checkpoint"]

log = logging.getLogger("inference.train")


@dataclass
class TrainConfig:
    out: str = "runs/lung"
    seed: int = 1234
    steps: int = 3000
    batch: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    base: int = 16
    depth: int = 4
    norm: str = "batch"
    up: str = "transpose"
    num_classes: int = 4
    ckpt_every: int = 200
    val_every: int = 200
    val_n: int = 32
    val_seed: int = 99991
    log_every: int = 20
    threads: int = 2
    workers: int = 0
    device: str = "cpu"
    init: str | None = None  # start from these weights (fine-tuning), fresh optimiser
    resume: bool = False
    max_minutes: float | None = None
    cache_dir: str | None = None  # on-disk sample cache (shared by resumes and later stages)
    class_weights: list[float] | None = None  # cross-entropy weight per label (None: all 1)
    keep_every: int = 0  # also keep step_NNNNN.pt every this many steps (0: never)
    data: DataConfig = field(default_factory=DataConfig)

    def arch_args(self) -> dict[str, Any]:
        return {"in_channels": 1, "num_classes": self.num_classes, "base": self.base,
                "depth": self.depth, "norm": self.norm, "up": self.up}


def seg_loss(
    logits: torch.Tensor, target: torch.Tensor, class_weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cross-entropy (optionally class-weighted) + (1 - mean soft Dice over the foreground labels).

    Returns (loss, ce, dice_loss).
    """
    ce = F.cross_entropy(logits, target, weight=class_weights)
    k = logits.shape[1]
    prob = logits.softmax(1)[:, 1:]
    onehot = F.one_hot(target, k).permute(0, 3, 1, 2)[:, 1:].to(prob.dtype)
    inter = (prob * onehot).sum((0, 2, 3))
    denom = prob.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    dice = (2 * inter + 1.0) / (denom + 1.0)
    dl = 1.0 - dice.mean()
    return ce + dl, ce, dl


def dice_per_label(pred: np.ndarray, ref: np.ndarray, labels: Sequence[int]) -> dict[int, float]:
    """Dice of ``pred == l`` vs ``ref == l`` for each label (NaN when both are empty)."""
    out = {}
    for lab in labels:
        a, b = pred == lab, ref == lab
        s = int(a.sum()) + int(b.sum())
        out[int(lab)] = float("nan") if s == 0 else 2.0 * int((a & b).sum()) / s
    return out


def _validation_set(cfg: TrainConfig, generator: Generator | None) -> tuple[np.ndarray, np.ndarray]:
    vcfg = DataConfig(**{**cfg.data.to_dict(), "augment": False})
    ds = PhantomSlices(vcfg, cfg.val_seed, generator)
    hus, labs = zip(*(ds.make_sample(i) for i in range(cfg.val_n)), strict=True)
    x = normalize_window(np.stack(hus), vcfg.window_center, vcfg.window_width)[:, None]
    return x, np.stack(labs)


@torch.no_grad()
def _validate(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, device: torch.device) -> dict[str, float]:
    model.eval()
    preds = [model(torch.from_numpy(x[i : i + 8]).to(device)).argmax(1).cpu().numpy() for i in range(0, len(x), 8)]
    model.train()
    d = dice_per_label(np.concatenate(preds), y, [1, 2, 3])
    return {f"dice_{k}": v for k, v in d.items()}


def _save(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint written by :func:`train` (CPU tensors)."""
    return torch.load(path, map_location="cpu", weights_only=False)


def train(
    cfg: TrainConfig,
    *,
    generator: Generator | None = None,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
) -> dict[str, Any]:
    """Run (or resume) a training run into ``cfg.out``. Returns a summary dict (also ``summary.json``)."""
    info = ddp.setup(cfg.device)
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = UNet2D(**cfg.arch_args()).to(info.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_lr(s, cfg.steps, cfg.warmup))
    step, history, best = 0, [], -1.0
    last = out / "last.pt"
    if cfg.resume and last.is_file():
        ck = load_checkpoint(last)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        step, history, best = int(ck["step"]), list(ck["history"]), float(ck.get("best", -1.0))
        log.info("resumed from %s at step %d", last, step)
    elif cfg.init:
        ck = load_checkpoint(cfg.init)  # a training checkpoint, or a package's model.pt
        weights = ck.get("model", ck.get("state_dict")) if isinstance(ck, dict) else None
        if weights is None:
            raise PackageError(f"--init {cfg.init}: neither a training checkpoint ('model') nor a model "
                             "package's model.pt ('state_dict')")
        model.load_state_dict(weights)
        log.info("initialised weights from %s (step %s there)", cfg.init, ck.get("step"))
    net: torch.nn.Module = model
    if info.distributed:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[info.local_rank] if info.device.type == "cuda" else None)
    ds = PhantomSlices(cfg.data, cfg.seed, generator, cache_dir=cfg.cache_dir)
    sampler = DistributedSampler(ds, num_replicas=info.world_size, rank=info.rank, shuffle=True,
                                 seed=cfg.seed, drop_last=True)
    per_epoch = len(sampler) // cfg.batch
    if per_epoch < 1:
        raise ValueError(f"pool {cfg.data.pool} too small for batch {cfg.batch} x {info.world_size} ranks")
    val = _validation_set(cfg, ds.generator) if info.is_main and cfg.val_n > 0 else None
    if info.is_main:
        log.info("UNet2D %s: %d parameters; %d steps, batch %d x %d ranks, %d steps/epoch, device %s",
                 cfg.arch_args(), count_parameters(model), cfg.steps, cfg.batch, info.world_size,
                 per_epoch, info.device)
    cw = None
    if cfg.class_weights is not None:
        if len(cfg.class_weights) != cfg.num_classes:
            raise ValueError(f"class_weights needs {cfg.num_classes} values, got {cfg.class_weights}")
        cw = torch.tensor(cfg.class_weights, dtype=torch.float32, device=info.device)
    t0 = time.perf_counter()
    t_last = t0
    metrics_f = open(out / "metrics.jsonl", "a", encoding="utf-8") if info.is_main else None

    def checkpoint(name: str) -> None:
        if info.is_main:
            _save(out / name, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                               "scheduler": sched.state_dict(), "step": step, "history": history,
                               "best": best, "arch": "UNet2D", "arch_args": cfg.arch_args(),
                               "config": _config_dict(cfg), "world_size": info.world_size})

    stopped = "completed"
    model.train()
    try:
        while step < cfg.steps:
            epoch, pos = divmod(step, per_epoch)
            ds.set_epoch(epoch)
            sampler.set_epoch(epoch)
            idx = list(sampler)
            batches = [idx[b * cfg.batch : (b + 1) * cfg.batch] for b in range(pos, per_epoch)]
            loader = DataLoader(ds, batch_sampler=batches, num_workers=cfg.workers)
            for xb, yb in loader:
                check_cancel(cancel)
                xb, yb = xb.to(info.device, non_blocking=True), yb.to(info.device, non_blocking=True)
                loss, ce, dl = seg_loss(net(xb), yb, cw)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                vals = torch.stack([loss, ce, dl]).detach()
                vals = ddp.all_reduce_mean(vals, info).cpu().tolist()
                history.append(round(vals[0], 6))
                rec: dict[str, Any] = {"step": step, "epoch": epoch, "loss": vals[0], "ce": vals[1],
                                       "dice_loss": vals[2], "lr": sched.get_last_lr()[0]}
                if info.is_main and val is not None and (step % cfg.val_every == 0 or step == cfg.steps):
                    rec.update(_validate(model, val[0], val[1], info.device))
                    score = float(np.nanmean([rec["dice_1"], rec["dice_2"], rec["dice_3"]]))
                    rec["val_score"] = score
                    log.info("validation at step %d: right %.4f left %.4f lesion %.4f", step,
                             rec["dice_1"], rec["dice_2"], rec["dice_3"])
                    if score > best:
                        best = score
                        checkpoint("best.pt")
                if metrics_f is not None:
                    metrics_f.write(json.dumps(rec) + "\n")
                    metrics_f.flush()
                if info.is_main and (step % cfg.log_every == 0 or step == 1):
                    now = time.perf_counter()
                    n = cfg.log_every if step > 1 else 1
                    sps = (now - t_last) / n
                    t_last = now
                    log.info("step %d/%d ep %d loss %.4f (ce %.4f dice %.4f) lr %.2e %.2f s/step gen %d "
                             "eta %.1f min", step, cfg.steps, epoch, vals[0], vals[1], vals[2],
                             rec["lr"], sps, ds.generated, sps * (cfg.steps - step) / 60)
                report(progress, step, cfg.steps, f"loss {vals[0]:.4f}")
                if step % cfg.ckpt_every == 0:
                    checkpoint("last.pt")
                if cfg.keep_every > 0 and step % cfg.keep_every == 0:
                    checkpoint(f"step_{step:05d}.pt")
                if cfg.max_minutes is not None and (time.perf_counter() - t0) / 60 > cfg.max_minutes:
                    stopped = "time limit"
                    break
                if step >= cfg.steps:
                    break
            if stopped != "completed":
                break
    finally:
        checkpoint("last.pt")
        if metrics_f is not None:
            metrics_f.close()
    if stopped != "completed":
        log.warning("stopped at step %d of %d (%s); resume with --resume", step, cfg.steps, stopped)
    summary = {"steps_done": step, "steps": cfg.steps, "stopped": stopped, "best_val_score": best,
               "final_loss": history[-1] if history else None, "seconds": time.perf_counter() - t0,
               "world_size": info.world_size, "parameters": count_parameters(model),
               "generated_samples_rank0": ds.generated}
    if info.is_main:
        (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    ddp.barrier(info)
    ddp.cleanup(info)
    return summary


def _config_dict(cfg: TrainConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["data"] = cfg.data.to_dict()
    return d


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clinical-viewer model train", description=__doc__.splitlines()[0])
    d, dd = TrainConfig(), DataConfig()
    p.add_argument("--out", default=d.out, help="run folder (checkpoints, log, metrics)")
    for name in ("seed", "val_seed", "steps", "batch", "warmup", "base", "depth", "ckpt_every", "val_every", "val_n",
                 "log_every", "threads", "workers", "keep_every"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--norm", default=d.norm, choices=["batch", "group"])
    p.add_argument("--up", default=d.up, choices=["transpose", "bilinear", "nearest"])
    p.add_argument("--device", default=d.device, choices=["cpu", "cuda", "auto"])
    p.add_argument("--class-weights", default=None,
                   help="comma-separated cross-entropy weight per label, e.g. 1,1,1,2")
    p.add_argument("--init", default=None,
                   help="checkpoint (or a model package's model.pt) to start from (fine-tune)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--cache-dir", default=None, help="keep generated samples here (reused on resume)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this")
    p.add_argument("--generator", default=dd.generator, help="module:function producing (hu, labels, spacing)")
    p.add_argument("--gen-kwargs", default="{}", help="JSON keyword arguments for the generator")
    for name in ("pool", "lifetime", "canvas", "crop"):
        p.add_argument("--" + name, type=int, default=getattr(dd, name))
    p.add_argument("--spacing-mm", type=float, default=dd.spacing_mm)
    p.add_argument("--hires-fraction", type=float, default=dd.hires_fraction)
    p.add_argument("--no-augment", action="store_true")
    return p


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    data = DataConfig(generator=a.generator, gen_kwargs=json.loads(a.gen_kwargs), spacing_mm=a.spacing_mm,
                      canvas=a.canvas, crop=a.crop, pool=a.pool, lifetime=a.lifetime, augment=not a.no_augment,
                      hires_fraction=a.hires_fraction)
    keys = [k for k in TrainConfig.__dataclass_fields__ if k not in ("data", "num_classes", "class_weights")]
    cw = [float(v) for v in a.class_weights.split(",")] if a.class_weights else None
    return TrainConfig(**{k: getattr(a, k) for k in keys}, data=data, class_weights=cw)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    rank = int(os.environ.get("RANK", "0"))
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if rank == 0:
        handlers.append(logging.FileHandler(Path(cfg.out) / "progress.log", encoding="utf-8"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING, handlers=handlers,
                        format="%(asctime)s %(levelname)s %(message)s", force=True)
    if rank == 0:
        log.info("command: %s", " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]))
    def _term(signum: int, frame: object) -> None:  # kill → KeyboardInterrupt → last.pt is saved
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _term)
    try:
        summary = train(cfg)
    except (PackageError, FileNotFoundError) as exc:  # bad --init / --resume file: a message, not a traceback
        print(f"train: {exc}", file=sys.stderr)
        return 2
    if rank == 0:
        log.info("summary: %s", json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
