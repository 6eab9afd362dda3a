"""Robust fusion for torch tensors: the vector median (batched, masked, any device).

Same semantics as :func:`geometry.fusion.vector_median`: the member of each set with the least
summed Euclidean distance to the other usable members (ties go to the lowest index). The choice is
made without gradient; the returned value is the chosen member itself, so gradients flow to that
member of ``X`` (a selection: 1 for the chosen member, 0 for the others).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common import _shape_str, as_mask, as_tensor, flat, upcast

__all__ = ["MedianResult", "vector_median"]

ELEMENT_BUDGET = 1 << 24  # members² × dims handled per pass (memory bound, not a batch limit)


@dataclass(frozen=True)
class MedianResult:
    """Result of :func:`vector_median` (tensors), batch ``(...)``: ``X (..., D)`` the median
    (0 where invalid); ``valid (...)``: at least one usable member; ``index (...)`` int64, the
    chosen member (-1 where invalid); ``iterations (...)`` int64 (always 0, kept for parity with
    :class:`geometry.fusion.MedianResult`); ``converged (...)`` (= ``valid``)."""

    X: torch.Tensor
    valid: torch.Tensor
    index: torch.Tensor
    iterations: torch.Tensor
    converged: torch.Tensor


def _summed_distances(X: torch.Tensor, use: torch.Tensor) -> torch.Tensor:
    """``X (B, M, D)``, ``use (B, M)`` → ``(B, M)`` summed distance of each member to the other
    usable members; ``inf`` for unusable members. Elementwise (no ``cdist``: exact zeros for
    duplicates, identical arithmetic on every device)."""
    B, M, D = X.shape
    per = max(1, ELEMENT_BUDGET // max(1, M * M * D))
    outs = []
    for b0 in range(0, B, per):  # a loop over memory-bounded slices, never over problems
        x, u = X[b0:b0 + per], use[b0:b0 + per]
        d = (x[:, :, None, :] - x[:, None, :, :]).pow(2).sum(-1).sqrt()       # (b, M, M)
        d = torch.where(u[:, None, :], d, torch.zeros_like(d)).sum(-1)
        outs.append(torch.where(u, d, torch.full_like(d, float("inf"))))
    return outs[0] if len(outs) == 1 else torch.cat(outs)


def vector_median(X, mask=None, axis: int = -2) -> MedianResult:
    """The member of each set with the least summed Euclidean distance to the other members.

    Args:
        X: ``(..., M, D)`` float tensor: sets of ``M`` vectors of dimension ``D`` (``axis``
            picks the member axis; the last axis is always the vector). Members with NaN or inf
            are ignored. float32 or float64, any device.
        mask: optional bool, ``X``'s shape without the last axis (or broadcastable to it);
            False ignores a member.
        axis: the member axis of ``X`` (default -2); not the last axis.
    Returns:
        :class:`MedianResult` on ``X``'s device, ``X`` of shape ``X.shape`` without ``axis``.
        A set with no usable member gives ``valid=False``, ``X = 0``, ``index = -1``.

    Unlike the coordinate-wise median the result is one of the inputs (a whole 3-D pose or joint
    from one camera pair, as EpipolarPose fuses them). The distance sums are computed under
    ``torch.no_grad``; the value is gathered from ``X``, so ``X.grad`` is a selection.
    """
    X = as_tensor("X", X)
    nd = X.ndim
    if nd < 2:
        raise ValueError(f"X: expected shape (..., M, D), got shape {_shape_str(X.shape)}")
    if isinstance(axis, bool) or not isinstance(axis, int) or not -nd <= axis < nd:
        raise ValueError(f"axis: expected an int in [{-nd}, {nd - 1}], got {axis!r}")
    ax = axis % nd
    if ax == nd - 1:
        raise ValueError("axis: the last axis holds the vector coordinates; pick another")
    Xm = torch.movedim(X, ax, -2)
    batch, M, D = tuple(Xm.shape[:-2]), Xm.shape[-2], Xm.shape[-1]
    if mask is not None:
        mt = torch.as_tensor(mask, device=X.device)
        if mt.ndim == nd - 1:
            mt = torch.movedim(mt, ax, -1)
        mask = mt
    m = as_mask("mask", mask, batch + (M,), X.device)
    Xf = flat(Xm, len(batch), (M, D))
    use = flat(m, len(batch), (M,)) & torch.isfinite(Xf).all(-1)
    B = Xf.shape[0]
    if B == 0 or M == 0:
        idx = torch.full((B,), -1, dtype=torch.int64, device=X.device)
        out = X.new_zeros((B, D))
    else:
        Xs = torch.where(use[..., None], Xf, torch.zeros_like(Xf))
        with torch.no_grad():
            cost = _summed_distances(upcast(Xs.detach()), use)  # float16: distances in float32
            idx = cost.argmin(-1)                                 # first minimum on ties
            has = use.any(-1)
            idx = torch.where(has, idx, torch.full_like(idx, -1))
        pick = torch.gather(Xs, 1, idx.clamp_min(0)[:, None, None].expand(B, 1, D)).squeeze(1)
        out = torch.where(has[:, None], pick, torch.zeros_like(pick))
    valid = idx >= 0
    return MedianResult(X=out.reshape(batch + (D,)), valid=valid.reshape(batch),
                        index=idx.reshape(batch),
                        iterations=torch.zeros(batch, dtype=torch.int64, device=X.device),
                        converged=valid.reshape(batch))
