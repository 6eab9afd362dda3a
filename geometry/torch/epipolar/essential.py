"""Essential matrices for torch tensors: from F (Kornia), the four pose candidates (Kornia's
SVD decomposition), and the cheirality test — batched, sync-free.

Own cheirality (:func:`recover_pose`), not Kornia's ``motion_from_essential_choose_solution``:
the same pose and count on 10k problems, but ours is 15× faster on CPU (0.13 s vs 2.06 s,
float64; Kornia triangulates every point for all four candidates by SVD) and keeps OpenCV's
distance threshold and masks.

Conventions as :mod:`geometry.essential`: ``E = K2ᵀ F K1``, ``X2 = R X1 + t``, ``|t| = 1``,
``E ∝ [t]ₓ R``; candidates ordered ``(R1, t), (R1, −t), (R2, t), (R2, −t)`` as OpenCV lists them
(which rotation is "R1" depends on the SVD's signs, in every library: compare candidates as sets).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from kornia.geometry.epipolar import decompose_essential_matrix as _k_decompose
from kornia.geometry.epipolar import essential_from_fundamental as _k_e_from_f

from ..common import (adjugate3, as_mask, as_matrix, as_points, broadcast_batch,
                      check_positive, det3, flat, linalg_chunked, scale_free, upcast)

__all__ = ["PoseResult", "essential_from_fundamental", "decompose_essential", "recover_pose",
           "rank2_ok", "cheirality_depths"]


@dataclass(frozen=True)
class PoseResult:
    """Result of :func:`recover_pose` (tensors): ``R (..., 3, 3)``, ``t (..., 3)`` (``|t| = 1``),
    ``in_front (..., N)``, ``num_in_front (...)`` int64, ``valid (...)``; invalid problems hold
    ``R = I``, ``t = 0``."""

    R: torch.Tensor
    t: torch.Tensor
    in_front: torch.Tensor
    num_in_front: torch.Tensor
    valid: torch.Tensor


def essential_from_fundamental(F, K1, K2, *, project: bool = True,
                               chunk_size: int = 16384) -> torch.Tensor:
    """``E = K2ᵀ F K1`` (Kornia) scaled to unit Frobenius norm → ``(..., 3, 3)``.

    With ``project=True`` E is projected onto the essential manifold (singular values
    ``(1, 1, 0)/√2``, batched SVD, chunked). A zero ``F`` gives a zero ``E``.
    """
    F = as_matrix("F", F, 3, 3)
    dt = F.dtype
    K1 = as_matrix("K1", K1, 3, 3, like=F)
    K2 = as_matrix("K2", K2, 3, 3, like=F)
    batch = broadcast_batch("F/K1/K2", F.shape[:-2], K1.shape[:-2], K2.shape[:-2])
    # E is scale-free: each factor is scaled by its largest entry first, so astronomically
    # scaled input cannot overflow (float16/bfloat16 are computed in float32)
    (F, _), (K1, _), (K2, _) = (scale_free(upcast(a)) for a in (F, K1, K2))
    E = _k_e_from_f(F.expand(batch + (3, 3)), K1.expand(batch + (3, 3)),
                    K2.expand(batch + (3, 3)))
    E = scale_free(flat(E, len(batch), (3, 3)))[0]
    if project:
        def proj(e):
            U, S, Vh = torch.linalg.svd(e)
            Vh = torch.cat([Vh[:, :2], torch.zeros_like(Vh[:, 2:])], 1)  # singular values 1, 1, 0
            return (U @ Vh) * (S[:, :1, None] > 0)
        E = linalg_chunked(proj, chunk_size, E)
    n = E.flatten(-2).norm(dim=-1)[:, None, None]
    E = torch.where(n > 0, E / torch.where(n > 0, n, torch.ones_like(n)), torch.zeros_like(E))
    return E.reshape(batch + (3, 3)).to(dt)


def rank2_ok(E: torch.Tensor) -> torch.Tensor:
    """``(...)`` bool: E finite with rank ≥ 2 — the second eigenvalue of ``EᵀE`` above
    ``1e-12`` (float32: ``1e-5``) of its trace (from the principal 2×2 minors of ``EᵀE``; no
    decomposition)."""
    A = E.transpose(-1, -2) @ E
    tr = A.diagonal(dim1=-2, dim2=-1).sum(-1)
    m2 = (A[..., 0, 0] * A[..., 1, 1] - A[..., 0, 1] ** 2 + A[..., 0, 0] * A[..., 2, 2]
          - A[..., 0, 2] ** 2 + A[..., 1, 1] * A[..., 2, 2] - A[..., 1, 2] ** 2)
    tol = 1e-12 if E.dtype == torch.float64 else 1e-5  # float32: above its rounding of m2
    return torch.isfinite(tr) & (tr > 0) & (m2 > tol * tr * tr)


def _motion(E: torch.Tensor):  # own: Kornia's decompose copies W host→device on every call
    """Kornia's ``motion_from_essential`` (SVD; ``U``, ``Vᵀ`` sign-fixed to det +1;
    ``R1 = U W Vᵀ``, ``R2 = U Wᵀ Vᵀ`` with ``W = [[0,-1,0],[1,0,0],[0,0,1]]``, ``t = U[:, 2]``;
    stacked ``[R1, R1, R2, R2] × [t, −t, t, −t]``) written with elementwise column operations,
    so no constant tensor is copied host→device inside the loop. ``E (B, 3, 3)`` →
    ``Rs (B, 4, 3, 3)``, ``ts (B, 4, 3)``."""
    U, _, Vh = torch.linalg.svd(E)
    flip_u = (det3(U) < 0)[:, None, None]
    U = torch.cat([U[..., :2], torch.where(flip_u, -U[..., 2:], U[..., 2:])], -1)
    flip_v = (det3(Vh) < 0)[:, None, None]
    Vh = torch.cat([Vh[:, :2], torch.where(flip_v, -Vh[:, 2:], Vh[:, 2:])], 1)
    u1, u2, u3 = U[..., 0:1], U[..., 1:2], U[..., 2:3]
    R1 = torch.cat([u2, -u1, u3], -1) @ Vh
    R2 = torch.cat([-u2, u1, u3], -1) @ Vh
    t = U[..., 2]
    return torch.stack([R1, R1, R2, R2], 1), torch.stack([t, -t, t, -t], 1)


def _decompose(E, chunk_size):
    """``E (B, 3, 3)`` → ``Rs (B, 4, 3, 3)``, ``ts (B, 4, 3)``, ``ok (B,)``."""
    ok = rank2_ok(E)
    Es = torch.where(ok[:, None, None], E, torch.eye(3, dtype=E.dtype, device=E.device))
    Rs, ts = linalg_chunked(_motion, chunk_size, Es)
    Rs, ts = Rs.to(E.dtype), ts.to(E.dtype)
    ts = ts / ts.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(E.dtype).tiny)
    eye = torch.eye(3, dtype=E.dtype, device=E.device).expand_as(Rs)
    Rs = torch.where(ok[:, None, None, None], Rs, eye)
    ts = torch.where(ok[:, None, None], ts, torch.zeros_like(ts))
    return Rs, ts, ok


def decompose_essential(E, *, chunk_size: int = 16384):
    """The four pose candidates of ``E (..., 3, 3)``.

    Returns ``R (..., 4, 3, 3)`` (proper rotations) and ``t (..., 4, 3)`` (unit) in OpenCV's
    order ``(R1, t), (R1, −t), (R2, t), (R2, −t)`` with ``E ∝ [t]ₓ R`` for each (Kornia's
    ``decompose_essential_matrix``: the numpy path's set to 2e-15 on 10k problems, as fast as our
    own ``_motion``, which :func:`recover_pose` keeps because Kornia builds ``W`` with
    ``torch.tensor``, a host→device copy per call). Which rotation comes first depends on the
    SVD's sign choices, as in the numpy path and OpenCV; the set of four is the same. A rank < 2
    ``E`` gives identity rotations and zero translations.
    """
    E = as_matrix("E", E, 3, 3)
    dt, batch = E.dtype, E.shape[:-2]
    E = scale_free(upcast(flat(E, len(batch), (3, 3))))[0]  # scale-free: no overflow
    ok = rank2_ok(E)
    eye = torch.eye(3, dtype=E.dtype, device=E.device)

    def k(e):
        R1, R2, t = _k_decompose(e)
        t = t[..., 0]
        return torch.stack([R1, R1, R2, R2], 1), torch.stack([t, -t, t, -t], 1)
    Rs, ts = linalg_chunked(k, chunk_size, torch.where(ok[:, None, None], E, eye))
    ts = ts / ts.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(E.dtype).tiny)
    Rs = torch.where(ok[:, None, None, None], Rs, eye)
    ts = torch.where(ok[:, None, None], ts, torch.zeros_like(ts))
    return Rs.reshape(batch + (4, 3, 3)).to(dt), ts.reshape(batch + (4, 3)).to(dt)


def cheirality_depths(R, t, y1, y2):
    """Midpoint depths of normalised rays: ``R (..., 3, 3)``, ``t (..., 3)``, ``y1, y2
    (..., N, 3)`` (z = 1) → ``d1, d2 (..., N)`` along each ray; NaN for parallel rays."""
    a = torch.einsum("...ij,...nj->...ni", R, y1)
    aa = (a * a).sum(-1)
    bb = (y2 * y2).sum(-1)
    ab = (a * y2).sum(-1)
    at = (a * t[..., None, :]).sum(-1)
    bt = (y2 * t[..., None, :]).sum(-1)
    det = aa * bb - ab * ab
    ok = det > 1e-14 * aa * bb
    ds = torch.where(ok, det, torch.ones_like(det))
    nan = torch.full_like(det, float("nan"))
    return (torch.where(ok, (ab * bt - at * bb) / ds, nan),
            torch.where(ok, (aa * bt - ab * at) / ds, nan))


def _rays(Ki, x):
    """Normalised rays ``(B, N, 3)`` (z = 1) of pixels ``x (B, N, 2)``; ok mask."""
    xh = torch.cat([x, torch.ones_like(x[..., :1])], -1)
    y = torch.einsum("bij,bnj->bni", Ki, xh)
    ok = torch.isfinite(y).all(-1) & (y[..., 2] != 0)
    z = torch.where(ok, y[..., 2], torch.ones_like(y[..., 2]))
    y = torch.cat([y[..., :2] / z[..., None], torch.ones_like(z)[..., None]], -1)
    return torch.where(ok[..., None], y, torch.zeros_like(y)), ok


def recover_core(E, x1, x2, K1, K2, mask, dist, chunk_size):
    """Flat-batch cheirality: ``E (B,3,3)``, ``x (B,N,2)``, ``K (B,3,3)``, ``mask (B,N)``."""
    Rs, ts, ok = _decompose(E, chunk_size)
    d1k, d2k = det3(K1), det3(K2)
    kok = (d1k != 0) & (d2k != 0) & torch.isfinite(d1k) & torch.isfinite(d2k)
    K1i = adjugate3(K1) / torch.where(d1k != 0, d1k, 1.0)[:, None, None]
    K2i = adjugate3(K2) / torch.where(d2k != 0, d2k, 1.0)[:, None, None]
    y1, ok1 = _rays(K1i, x1)
    y2, ok2 = _rays(K2i, x2)
    use = mask & ok1 & ok2
    # candidates 0 and 2 (t); −t flips both depths
    Rc = Rs[:, 0::2]                                                   # (B, 2, 3, 3)
    tc = ts[:, 0::2]
    d1, d2 = cheirality_depths(Rc, tc, y1[:, None], y2[:, None])       # (B, 2, N)
    fp = use[:, None] & (d1 > 0) & (d2 > 0) & (d1 < dist) & (d2 < dist)
    fm = use[:, None] & (d1 < 0) & (d2 < 0) & (-d1 < dist) & (-d2 < dist)
    front = torch.stack([fp[:, 0], fm[:, 0], fp[:, 1], fm[:, 1]], 1)   # (B, 4, N)
    counts = front.sum(-1)
    best = counts.argmax(-1)                                           # first maximum
    nbest = torch.gather(counts, 1, best[:, None]).squeeze(1)
    valid = ok & kok & (nbest > 0)
    R = torch.gather(Rs, 1, best[:, None, None, None].expand(-1, 1, 3, 3)).squeeze(1)
    t = torch.gather(ts, 1, best[:, None, None].expand(-1, 1, 3)).squeeze(1)
    inf = torch.gather(front, 1, best[:, None, None].expand(-1, 1, front.shape[-1])).squeeze(1)
    eye = torch.eye(3, dtype=E.dtype, device=E.device).expand_as(R)
    R = torch.where(valid[:, None, None], R, eye)
    t = torch.where(valid[:, None], t, torch.zeros_like(t))
    inf = inf & valid[:, None]
    return R, t, inf, torch.where(valid, nbest, torch.zeros_like(nbest)), valid


def recover_pose(E, x1, x2, K1, K2, mask=None, *, distance_threshold: float = 50.0,
                 chunk_size: int = 16384) -> PoseResult:
    """Pick the candidate of ``E`` with the most points in front of both cameras.

    Args:
        E: ``(..., 3, 3)`` essential matrices (``x̂2ᵀ E x̂1 = 0`` in normalised coordinates).
        x1, x2: ``(..., N, 2)`` pixels (NaN = missing); K1, K2: ``(..., 3, 3)``.
        mask: optional ``(..., N)`` bool (e.g. RANSAC inliers).
        distance_threshold: points farther than this (units of ``|t| = 1``) count as at infinity,
            as in OpenCV's ``recoverPose``.
    Returns:
        :class:`PoseResult`; ``valid=False`` when E has rank < 2, K is singular or no point is
        in front. Ties go to the first candidate in OpenCV's order (as the numpy path).
    """
    x1 = as_points("x1", x1)
    x2 = as_points("x2", x2, like=x1)
    if x2.shape[-2] != x1.shape[-2]:
        raise ValueError(f"x2: expected shape (..., {x1.shape[-2]}, 2) like x1, got shape "
                         f"{tuple(x2.shape)}")
    E = as_matrix("E", E, 3, 3, like=x1)
    K1 = as_matrix("K1", K1, 3, 3, like=x1)
    K2 = as_matrix("K2", K2, 3, 3, like=x1)
    dist = check_positive("distance_threshold", distance_threshold)
    dt = x1.dtype
    x1, x2, E, K1, K2 = (upcast(a) for a in (x1, x2, E, K1, K2))  # float16/bfloat16 → float32
    E, K1, K2 = (scale_free(a)[0] for a in (E, K1, K2))  # scale-free here (rays are x/z)
    N = x1.shape[-2]
    batch = broadcast_batch("E/x1/x2/K1/K2", E.shape[:-2], x1.shape[:-2], x2.shape[:-2],
                            K1.shape[:-2], K2.shape[:-2])
    m = flat(as_mask("mask", mask, batch + (N,), x1.device), len(batch), (N,))
    ex = lambda a, tail: flat(a.expand(batch + tail), len(batch), tail)  # noqa: E731
    R, t, inf, num, valid = recover_core(ex(E, (3, 3)), ex(x1, (N, 2)), ex(x2, (N, 2)),
                                         ex(K1, (3, 3)), ex(K2, (3, 3)), m, dist, chunk_size)
    return PoseResult(R=R.reshape(batch + (3, 3)).to(dt), t=t.reshape(batch + (3,)).to(dt),
                      in_front=inf.reshape(batch + (N,)), num_in_front=num.reshape(batch),
                      valid=valid.reshape(batch))
