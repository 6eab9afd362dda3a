"""Shared training utilities: seeding, device choice, mini-batches, a training loop with tqdm
progress, prediction, checkpoints and JSON reports.

Every example and model in :mod:`learn` uses these so that runs are deterministic given a seed
(on CPU; CUDA kernels may differ in the last bits), use CUDA when present, and write the same
kinds of artefacts (``checkpoint_*.pt``, ``report.json``).
"""
from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from . import distributed as dist_utils

__all__ = ["seed_everything", "get_device", "set_threads", "to_tensor", "minibatches",
           "train_loop", "predict", "save_checkpoint", "load_checkpoint", "write_report",
           "TrainHistory"]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); returns a CPU ``torch.Generator`` seeded
    with ``seed`` for data shuffling."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def get_device(preference: str | None = None) -> torch.device:
    """``"cuda"`` when available (or when asked), else ``"cpu"``. ``preference`` may be
    ``None``/``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; asking for CUDA without it
    raises ValueError."""
    if preference in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(preference)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {preference!r} requested but CUDA is not available")
    return dev


def set_threads(num_threads: int | None) -> None:
    """Limit torch's intra-op CPU threads (shared machines); ``None`` leaves the default."""
    if num_threads is not None and num_threads > 0:
        torch.set_num_threads(int(num_threads))


def to_tensor(a, device=None, dtype=torch.float32) -> torch.Tensor:
    """NumPy array (or tensor) → tensor of ``dtype`` on ``device``."""
    if isinstance(a, torch.Tensor):
        return a.to(device=device, dtype=dtype)
    return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)


def minibatches(num: int, batch_size: int, generator: torch.Generator | None = None,
                shuffle: bool = True, drop_last: bool = False):
    """Index tensors ``(B,)`` covering ``range(num)`` once, shuffled with ``generator``."""
    idx = torch.randperm(num, generator=generator) if shuffle else torch.arange(num)
    stop = num - num % batch_size if (drop_last and num >= batch_size) else num
    for s in range(0, stop, batch_size):
        yield idx[s:s + batch_size]


class _Shards:
    """The DDP side of :func:`train_loop`: the wrapped model and each rank's index batches."""

    def __init__(self, model, n: int, batch_size: int, generator):
        from torch.utils.data import DistributedSampler
        w, r = dist_utils.world_size(), dist_utils.rank()
        if batch_size % w:
            raise ValueError(f"batch_size: the global batch {batch_size} must be divisible by "
                             f"the {w} torchrun processes")
        self.local = batch_size // w
        # one integer from the shuffling generator (the same on every rank: same seed) seeds the
        # sampler; each rank's own dropout stream is seeded from it and its rank
        base = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=generator)) if generator \
            is not None else 0
        torch.manual_seed(base + 1 + r)
        self.sampler = DistributedSampler(range(n), num_replicas=w, rank=r, shuffle=True,
                                          seed=base, drop_last=n > batch_size)
        self.drop_last = n > batch_size
        m = len(self.sampler)
        self.steps_per_epoch = max(1, m // self.local if self.drop_last else -(-m // self.local))
        self.model = dist_utils.wrap_model(model)

    def batches(self, epoch: int):
        self.sampler.set_epoch(epoch)
        idx = torch.tensor(list(iter(self.sampler)), dtype=torch.long)
        stop = len(idx) - len(idx) % self.local if self.drop_last else len(idx)
        for s in range(0, stop, self.local):
            yield idx[s:s + self.local]


class TrainHistory(dict):
    """``{"loss": [per-epoch mean], "step_loss": [...], "seconds": float}``."""


def train_loop(model: torch.nn.Module, loss_fn: Callable, tensors: dict, *, epochs: int,
               batch_size: int, lr: float = 1e-3, weight_decay: float = 0.0,
               generator: torch.Generator | None = None, params=None, desc: str = "train",
               progress: bool = True, lr_decay: float = 0.1, max_steps: int | None = None,
               grad_clip: float | None = 5.0) -> TrainHistory:
    """Train ``model`` with Adam and a cosine learning-rate schedule.

    Args:
        loss_fn: ``loss_fn(model, batch) -> scalar tensor`` where ``batch`` is ``{name: t[idx]}``
            for every tensor in ``tensors`` (all sharing their first dimension, already on the
            model's device).
        epochs, batch_size, lr, weight_decay: the usual. ``params``: what to optimise (default
            all parameters requiring grad). ``lr_decay``: final lr = ``lr · lr_decay``.
        max_steps: stop early after this many optimiser steps.
        generator: shuffling generator (from :func:`seed_everything`).

    Under ``torchrun`` (a process group started by :func:`learn.distributed.init_distributed`)
    the model is wrapped in DistributedDataParallel with batch norm synchronised over the ranks,
    the samples are sharded by a :class:`~torch.utils.data.DistributedSampler` seeded from
    ``generator`` and reshuffled every epoch (``set_epoch``), each rank takes
    ``batch_size / world_size`` samples of every global batch of ``batch_size`` (which must
    divide evenly), the reported losses are means over all ranks and only rank 0 shows
    progress. ``loss_fn`` then receives the DDP wrapper (call it like the model). Without a
    process group nothing changes.
    Returns:
        :class:`TrainHistory` with per-epoch and per-step mean losses.
    """
    n = next(iter(tensors.values())).shape[0]
    params = [p for p in (model.parameters() if params is None else params) if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    shard = _Shards(model, n, batch_size, generator) if dist_utils.is_distributed() else None
    net = shard.model if shard else model
    steps_per_epoch = shard.steps_per_epoch if shard else max(1, -(-n // batch_size))
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps,
                                                                   epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(total, 1), eta_min=lr * lr_decay)
    hist = TrainHistory(loss=[], step_loss=[], seconds=0.0)
    t0 = time.perf_counter()
    step = 0
    bar = tqdm(total=total, desc=desc, disable=not progress or not dist_utils.is_main_process(),
               leave=False, mininterval=1.0)
    model.train()
    for epoch in range(epochs):
        losses = []
        batches = shard.batches(epoch) if shard else \
            minibatches(n, batch_size, generator, drop_last=n > batch_size)
        for idx in batches:
            if step >= total:
                break
            dev_idx = idx.to(next(iter(tensors.values())).device)
            batch = {k: v[dev_idx] for k, v in tensors.items()}
            loss = loss_fn(net, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            opt.step()
            sched.step()
            v = float(dist_utils.all_reduce_mean(loss.detach()))
            losses.append(v)
            hist["step_loss"].append(v)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{v:.4g}", refresh=False)
        if losses:
            hist["loss"].append(float(np.mean(losses)))
        if step >= total:
            break
    bar.close()
    model.eval()
    hist["seconds"] = time.perf_counter() - t0
    return hist


@torch.no_grad()
def predict(fn: Callable, inputs, batch_size: int = 512, device=None,
            dtype: torch.dtype | None = None) -> np.ndarray:
    """Apply ``fn`` (a module in eval mode, or any callable on tensors) to ``inputs`` (array
    ``(N, ...)``) in batches; returns a float64 NumPy array ``(N, ...)``.

    ``dtype``: the batches' dtype; by default uint8 inputs (images) stay uint8 and everything
    else becomes float32."""
    if dtype is None:
        dtype = torch.uint8 if np.asarray(inputs[:0]).dtype == np.uint8 else torch.float32
    outs = []
    for s in range(0, len(inputs), batch_size):
        xb = to_tensor(inputs[s:s + batch_size], device, dtype)
        outs.append(fn(xb).detach().cpu().double().numpy())
    return np.concatenate(outs) if outs else np.zeros((0,))


def save_checkpoint(path, model: torch.nn.Module, **extra) -> Path:
    """Save ``{"model": state_dict, **extra}`` to ``path`` (parents created). Under torchrun
    only rank 0 writes (the weights are the same on every rank); a DDP wrapper is unwrapped."""
    path = Path(path)
    if not dist_utils.is_main_process():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": dist_utils.unwrap_model(model).state_dict(), **extra}, path)
    return path


def load_checkpoint(path, model: torch.nn.Module, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` into ``model``; returns the dict."""
    ckpt = torch.load(Path(path), map_location=map_location, weights_only=False)
    model.load_state_dict(ckpt["model"])
    return ckpt


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, (np.floating, float)):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, Path):
        return str(v)
    return v


def write_report(path, report: dict) -> Path:
    """Write ``report`` as indented JSON (NumPy values converted, non-finite → null), adding
    the torch version, device and thread count under ``"environment"``. Under torchrun only
    rank 0 writes, and the environment names the world size."""
    path = Path(path)
    if not dist_utils.is_main_process():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    env = {"torch": torch.__version__, "cuda": torch.cuda.is_available(),
           "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
           "date": time.strftime("%Y-%m-%d %H:%M"), "world_size": dist_utils.world_size()}
    path.write_text(json.dumps(_jsonable({**report, "environment": env}), indent=2))
    return path
