"""Data-parallel training under ``torchrun``: environment detection, DDP wrapping, sharding.

``torchrun --nproc_per_node=N script.py`` (or multi-node with ``--nnodes`` and
``--rdzv-endpoint``) starts ``N`` copies of a script with ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and ``MASTER_ADDR``/``MASTER_PORT`` in their environments. :func:`init_distributed`
reads them, starts the process group (``gloo`` on CPU, ``nccl`` on CUDA, one GPU per local rank)
and returns a :class:`DistEnv`; without those variables it returns the single-process
environment and nothing else changes. :func:`learn.train.train_loop` checks
:func:`is_distributed` and then wraps the model with :func:`wrap_model` (DistributedDataParallel,
batch norm synchronised over the ranks) and shards the data with a seeded
:class:`torch.utils.data.DistributedSampler` whose permutation changes every epoch
(``set_epoch``).

Semantics: ``batch_size`` stays the *global* batch; each of the ``W`` ranks takes
``batch_size / W`` samples of it, the gradients are averaged by DDP and batch-norm statistics are
computed over the whole global batch, so ``W`` processes take the same optimiser steps as one
process with the same sampler (up to the order of floating-point sums). Only rank 0 logs,
shows progress bars, writes checkpoints and reports (:func:`is_main_process`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistEnv", "init_distributed", "launched_by_torchrun", "is_distributed", "rank",
           "world_size", "is_main_process", "wrap_model", "unwrap_model", "SyncBatchNorm1d",
           "convert_sync_batchnorm", "all_reduce_mean", "global_weighted_mean", "barrier",
           "shutdown"]


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands: ``rank`` of ``world_size`` processes (``local_rank`` on its
    node), the ``backend`` (``"gloo"``/``"nccl"``, ``""`` when single-process) and the
    ``device`` this rank computes on."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device

    @property
    def distributed(self) -> bool:
        return bool(self.backend)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when the environment carries torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}: expected an integer in the environment, got {value!r}") \
            from None


def init_distributed(device: str | None = "auto", backend: str | None = None) -> DistEnv:
    """Start the process group when launched by ``torchrun``; else the single-process env.

    Args:
        device: ``"auto"``/``None`` (CUDA when present), ``"cpu"`` or ``"cuda"``. Under
            torchrun a CUDA rank uses ``cuda:LOCAL_RANK``.
        backend: override the backend (default ``nccl`` on CUDA, ``gloo`` on CPU).
    Returns:
        :class:`DistEnv`. Calling it again returns the same environment (the group is started
        once). Raises ValueError on malformed torchrun variables or a CUDA request without CUDA.
    """
    want_cuda = device in (None, "", "auto") and torch.cuda.is_available() or \
        (device is not None and str(device).startswith("cuda"))
    if want_cuda and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} requested but CUDA is not available")
    if not launched_by_torchrun():
        dev = torch.device(device if device not in (None, "", "auto") else
                           ("cuda" if want_cuda else "cpu"))
        return DistEnv(0, 1, 0, "", dev)
    r, w, lr = _env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK")
    if not 0 <= r < w:
        raise ValueError(f"RANK/WORLD_SIZE: expected 0 <= RANK < WORLD_SIZE, got {r}/{w}")
    if want_cuda:
        dev = torch.device("cuda", lr % torch.cuda.device_count())
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
    if not dist.is_initialized():
        kw = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group(backend=backend, rank=r, world_size=w, **kw)
    return DistEnv(r, w, lr, dist.get_backend(), dev)


def is_distributed() -> bool:
    """True inside a started process group (any world size, 1 included)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's global rank (0 when single-process)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 when single-process)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0 and in single-process runs: the process that logs and writes files."""
    return rank() == 0


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over the ranks: the forward and the backward both all-reduce (the
    gradient of ``y = sum_k x_k``, held on every rank, w.r.t. ``x_r`` sums every rank's
    upstream gradient)."""

    @staticmethod
    def forward(ctx, x):
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        g = grad.clone()
        dist.all_reduce(g)
        return g


class SyncBatchNorm1d(nn.BatchNorm1d):
    """``BatchNorm1d`` whose training statistics are taken over the batch of *all* ranks.

    PyTorch's :class:`torch.nn.SyncBatchNorm` only runs on GPUs; this one works with any
    backend (``gloo`` on CPU included) through the differentiable
    all-reduce of :class:`_AllReduceSum` (two reductions per call: the sum, then the sum of
    squared deviations, so the variance has no cancellation). Single-process, in eval
    mode, or without a process group it is exactly ``BatchNorm1d``. Input ``(B, C)`` or
    ``(B, C, L)``; equal batch sizes on every rank are not required.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed() and world_size() > 1):
            return super().forward(x)
        all_reduce = _AllReduceSum.apply
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        s = all_reduce(torch.cat([x.sum(dims), count]))
        n = s[-1]
        mean = s[:-1] / n
        ss = all_reduce((x - mean.reshape(shape)).pow(2).sum(dims))
        var = ss / n
        y = (x - mean.reshape(shape)) * torch.rsqrt(var + self.eps).reshape(shape)
        if self.affine:
            y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else \
                    1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1).clamp(min=1),
                                                  alpha=m)
        return y


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm1d`` in ``module`` (in place; the parameters and buffers are
    shared, not copied) by :class:`SyncBatchNorm1d`; returns ``module``. Other batch-norm kinds
    are left alone (use :class:`torch.nn.SyncBatchNorm` on GPUs for those)."""
    for name, child in list(module.named_children()):
        if type(child) is nn.BatchNorm1d:
            new = SyncBatchNorm1d.__new__(SyncBatchNorm1d)
            new.__dict__ = child.__dict__       # same Parameters, buffers and hyper-parameters
            setattr(module, name, new)
        else:
            convert_sync_batchnorm(child)
    return module


def wrap_model(model: nn.Module, sync_batchnorm: bool = True) -> nn.Module:
    """Inside a process group: batch norm synchronised over the ranks (native
    ``SyncBatchNorm`` on CUDA, :class:`SyncBatchNorm1d` otherwise), then
    ``DistributedDataParallel`` (rank 0's weights are broadcast to all ranks). Single-process:
    ``model`` unchanged."""
    if not is_distributed() or isinstance(model, nn.parallel.DistributedDataParallel):
        return model
    dev = next(model.parameters()).device
    if sync_batchnorm and world_size() > 1:
        if dev.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        else:
            model = convert_sync_batchnorm(model)
    ids = [dev.index] if dev.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module inside a DDP wrapper (itself otherwise)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of ``value`` over the ranks (``value`` itself when single-process); no gradient."""
    if not is_distributed() or world_size() == 1:
        return value
    v = value.detach().clone()
    dist.all_reduce(v)
    return v / world_size()


def global_weighted_mean(loss: torch.Tensor, weight_sum: torch.Tensor) -> torch.Tensor:
    """Make a per-batch weighted mean ``loss = Σ w·ℓ / Σ w`` (over this rank's share of the
    batch; ``weight_sum = Σ w``) exact under DDP.

    DDP averages the ranks' gradients, i.e. optimises the mean of the ranks' losses; for a loss
    normalised by its own weight sum that is not the loss of the global batch when the ranks'
    ``Σ w`` differ. Returned: ``loss · Σ w / mean_ranks(Σ w)`` (the denominator all-reduced and
    detached), whose mean over the ranks is ``Σ_all w·ℓ / Σ_all w``: the single-process loss on
    the global batch. Single-process (or one rank): ``loss`` itself, unchanged."""
    if not is_distributed() or world_size() == 1:
        return loss
    local = weight_sum.detach().to(loss.dtype).reshape(())
    return loss * local / all_reduce_mean(local).clamp_min(1e-12)


def barrier() -> None:
    """Wait for every rank (no-op when single-process)."""
    if is_distributed():
        dist.barrier()


def shutdown() -> None:
    """Destroy the process group if one was started (call at the end of a torchrun script)."""
    if is_distributed():
        dist.destroy_process_group()
