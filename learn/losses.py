"""Losses for training on pseudo-labels (torch).

- :func:`weighted_smooth_l1`: smooth-L1 (Huber) on 3D joints with per-joint quality weights;
  ``beta`` is in the units of the labels (see :func:`beta_for_labels`).
- :func:`projection_consistency`: the 3D-to-2D self-supervised correction term of Wang et al.
  (2019): the predicted root-relative 3D pose is placed in front of the camera by the
  least-squares translation that best explains the input 2D, projected with the intrinsics, and
  its distance to the input 2D is penalised. Scale-free (the 3D may be in any unit).
- :func:`solve_translation`: that translation, in closed form (differentiable).
"""
from __future__ import annotations

import torch

__all__ = ["weighted_smooth_l1", "beta_for_labels", "solve_translation",
           "projection_consistency"]


def weighted_smooth_l1(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None,
                       beta: float = 0.05) -> torch.Tensor:
    """Mean smooth-L1 between ``pred`` and ``target`` ``(B, J, D)``, each joint weighted.

    ``weights (B, J)`` ≥ 0 (0 ignores a joint; default all ones). The per-joint loss is the sum
    over the ``D`` coordinates of ``0.5 d²/β`` for ``|d| < β`` and ``|d| − β/2`` beyond, so
    ``β`` is in label units: errors below ``β`` are treated as noise (quadratic), above as
    outliers (linear). Returns ``Σ w·ℓ / max(Σ w, ε)``.
    """
    if pred.shape != target.shape:
        raise ValueError(f"target: expected shape {tuple(pred.shape)}, got {tuple(target.shape)}")
    if beta <= 0:
        raise ValueError(f"beta: expected > 0, got {beta}")
    per = torch.nn.functional.smooth_l1_loss(pred, target, reduction="none", beta=beta).sum(-1)
    if weights is None:
        return per.mean()
    if weights.shape != per.shape:
        raise ValueError(f"weights: expected shape {tuple(per.shape)}, got {tuple(weights.shape)}")
    return (weights * per).sum() / weights.sum().clamp_min(1e-8)


def beta_for_labels(labels, fraction: float = 0.02) -> float:
    """``β`` matched to the label units: ``fraction`` of the RMS root-relative joint distance
    of ``labels (N, J, 3)`` (2 % of body size ≈ 1.5 cm on a person in metres)."""
    import numpy as np
    a = np.asarray(labels, dtype=np.float64)
    a = a - a[..., :1, :]
    rms = float(np.sqrt(np.nanmean(np.sum(a ** 2, -1))))
    return max(fraction * rms, 1e-6)


def solve_translation(points: torch.Tensor, x: torch.Tensor, weights: torch.Tensor | None = None,
                      ridge: float = 1e-6) -> torch.Tensor:
    """Translation ``T (B, 3)`` placing ``points (B, J, 3)`` (camera axes) so that they project
    onto normalised image coordinates ``x (B, J, 2)`` (``K⁻¹·pixel``): the weighted linear
    least squares of ``x_j (Y_jz + T_z) = Y_jxy + T_xy`` (``weights (B, J)``, default 1;
    ``ridge``: relative damping of the normal equations' diagonal). Differentiable."""
    if points.dim() != 3 or points.shape[-1] != 3:
        raise ValueError(f"points: expected shape (B, J, 3), got shape {tuple(points.shape)}")
    if tuple(x.shape) != tuple(points.shape[:2]) + (2,):
        raise ValueError(f"x: expected shape {tuple(points.shape[:2]) + (2,)}, got shape "
                         f"{tuple(x.shape)}")
    B, J, _ = points.shape
    w = torch.ones(B, J, dtype=points.dtype, device=points.device) if weights is None else weights
    u, v = x[..., 0], x[..., 1]
    ones, zeros = torch.ones_like(u), torch.zeros_like(u)
    A = torch.stack([torch.stack([ones, zeros, -u], -1),
                     torch.stack([zeros, ones, -v], -1)], -2).reshape(B, 2 * J, 3)
    b = torch.stack([u * points[..., 2] - points[..., 0],
                     v * points[..., 2] - points[..., 1]], -1).reshape(B, 2 * J)
    ww = w.repeat_interleave(2, dim=1)
    AtA = torch.einsum("bn,bni,bnj->bij", ww, A, A)
    diag = AtA.diagonal(dim1=-2, dim2=-1)
    AtA = AtA + torch.diag_embed(ridge * diag + 1e-12)     # relative (Levenberg) damping
    Atb = torch.einsum("bn,bni,bn->bi", ww, A, b)
    return torch.linalg.solve(AtA, Atb)


def projection_consistency(pred: torch.Tensor, x: torch.Tensor, weights: torch.Tensor | None = None,
                           beta: float = 0.02, min_depth_ratio: float = 0.2) -> torch.Tensor:
    """3D-to-2D correction loss (Wang et al.): smooth-L1 distance between the input 2D and the
    projection of the predicted 3D.

    Args:
        pred: ``(B, J, 3)`` predicted root-relative 3D in the camera's axes, any unit.
        x: ``(B, J, 2)`` the input 2D in normalised image coordinates (``K⁻¹·pixel``, i.e. the
            projection with the intrinsics factored out).
        weights: ``(B, J)`` per-joint confidences (0 ignores a joint).
        beta: smooth-L1 ``β`` in units of the 2D pose size (residuals are divided by the RMS
            spread of the 2D pose, so the term is scale-free).
        min_depth_ratio: depths are clamped to at least this fraction of the 3D pose's RMS
            size, so a bad prediction cannot divide by ~0.
    Returns:
        scalar: ``Σ w·ℓ / Σ w``.
    """
    if pred.dim() != 3 or pred.shape[-1] != 3:
        raise ValueError(f"pred: expected shape (B, J, 3), got shape {tuple(pred.shape)}")
    if tuple(x.shape) != tuple(pred.shape[:2]) + (2,):
        raise ValueError(f"x: expected shape {tuple(pred.shape[:2]) + (2,)}, got shape "
                         f"{tuple(x.shape)}")
    if weights is not None and tuple(weights.shape) != tuple(pred.shape[:2]):
        raise ValueError(f"weights: expected shape {tuple(pred.shape[:2])}, got shape "
                         f"{tuple(weights.shape)}")
    w = torch.ones(pred.shape[:2], dtype=pred.dtype, device=pred.device) if weights is None \
        else weights
    T = solve_translation(pred, x, w)
    P = pred + T[:, None, :]
    size3 = pred.pow(2).sum(-1).mean(-1).sqrt().detach()
    z = torch.maximum(P[..., 2], min_depth_ratio * size3[:, None].clamp_min(1e-6))
    proj = P[..., :2] / z[..., None]
    wsum = w.sum(-1, keepdim=True).clamp_min(1e-8)
    centre = (w[..., None] * x).sum(1, keepdim=True) / wsum[..., None]
    size2 = ((w * (x - centre).pow(2).sum(-1)).sum(-1, keepdim=True) / wsum).sqrt().clamp_min(1e-8)
    r = (proj - x) / size2[..., None]
    per = torch.nn.functional.smooth_l1_loss(r, torch.zeros_like(r), reduction="none",
                                             beta=beta).sum(-1)
    return (w * per).sum() / w.sum().clamp_min(1e-8)
