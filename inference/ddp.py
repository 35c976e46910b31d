"""Distributed-training helpers (torch-only module, imported lazily).

Under ``torchrun`` the environment carries ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`setup` then initialises the default process group
(``nccl`` on CUDA, ``gloo`` on CPU) and picks the device. Without those variables it is a
single process on CPU (or ``cuda:0`` when asked and available).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "setup", "cleanup", "all_reduce_mean", "barrier"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    distributed: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto", backend: str | None = None) -> DistInfo:
    """Initialise from environment variables (``torchrun``), or a single process.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda"}
        ``auto`` uses CUDA when available.
    backend : str, optional
        Process-group backend; default ``nccl`` for CUDA, ``gloo`` for CPU.
    """
    use_cuda = (device == "cuda" or (device == "auto" and torch.cuda.is_available()))
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but torch sees no CUDA device; use --device cpu")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    if use_cuda:
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    distributed = world > 1
    if distributed and not dist.is_initialized():
        be = backend or ("nccl" if use_cuda else "gloo")
        dist.init_process_group(backend=be, init_method="env://", rank=rank, world_size=world)
        log.info("process group %s: rank %d of %d on %s", be, rank, world, dev)
    return DistInfo(rank, world, local, dev, distributed)


def cleanup(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean of ``value`` over ranks (a copy; the input is unchanged)."""
    if not info.distributed:
        return value.detach().clone()
    v = value.detach().clone()
    dist.all_reduce(v, op=dist.ReduceOp.SUM)
    return v / info.world_size
