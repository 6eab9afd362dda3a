"""Local optimisation for the batched F-RANSAC (private): warm-started least-squares refits and the
homography degeneracy test, mirroring the numpy kernels (``geometry.epipolar._fundamental_kernels``
and ``geometry.common.nb_linalg``): the smallest eigenvector of the 9×9 normal matrix by inverse
iteration (Cholesky with a tiny ridge, warm-started from the current model), the rank-2
projection ``F ← F (I − v vᵀ)`` with ``v`` from power iteration on ``adj(FᵀF)``.

Own code, not LAPACK ``eigh``/``svd``: batched ``torch.linalg.eigh`` on CPU costs ~20 µs per 9×9
matrix and ``svd`` ~7 µs per 3×3 (measured, one thread) — with nine refits per problem more than
the whole numpy RANSAC of a 17-point problem; a batched Cholesky factor and three solves cost
~1 µs. All elementwise or batched factorisations: no host synchronisation.
"""
from __future__ import annotations

import torch

from ..common import adjugate3
from .fundamental import design_rows

__all__ = ["smallest_eigvec_inverse", "rank2_project", "eight_point_lo", "homography_explained"]


def smallest_eigvec_inverse(M: torch.Tensor, v: torch.Tensor, iters: int):
    """Smallest eigenvector of symmetric PSD ``M (B, n, n)`` by inverse iteration from ``v (B, n)``.

    A ridge of ``1e-13`` (float32: ``1e-5``) of the trace keeps the factorisation defined for an
    exactly singular ``M``. Returns the unit vector ``(B, n)`` and ``ok (B,)`` (False where ``M``
    is not finite, zero, or the factorisation or an iterate fails; ``v`` is returned there)."""
    n = M.shape[-1]
    eye = torch.eye(n, dtype=M.dtype, device=M.device)
    tr = M.diagonal(dim1=-2, dim2=-1).sum(-1)
    ok = torch.isfinite(tr) & (tr > 0) & torch.isfinite(M).flatten(1).all(-1)
    ridge = (1e-13 if M.dtype == torch.float64 else 1e-5) * tr
    A = torch.where(ok[:, None, None], M + ridge[:, None, None] * eye, eye)
    L, info = torch.linalg.cholesky_ex(A)
    ok = ok & (info == 0)
    L = torch.where(ok[:, None, None], L, eye)
    for _ in range(iters):
        y = torch.cholesky_solve(v[..., None], L)[..., 0]
        nrm = y.norm(dim=-1)
        good = torch.isfinite(nrm) & (nrm > 0)
        ok = ok & good
        v = torch.where(good[:, None], y / torch.where(good, nrm, torch.ones_like(nrm))[:, None], v)
    return v, ok


def rank2_project(F: torch.Tensor):
    """Closest rank-2 matrix (Frobenius) of ``F (B, 3, 3)``, unit norm: ``F (I − v vᵀ)`` with
    ``v`` the smallest right singular vector (the dominant eigenvector of ``adj(FᵀF)``: its
    largest column, then two power steps, ratio ``σ₃²/σ₂²`` each). ``ok`` False for rank < 2."""
    S = F.transpose(-1, -2) @ F
    a = adjugate3(S)                                                 # symmetric
    n = a.square().sum(-2)                                           # column norms² (B, 3)
    k = n.argmax(-1)
    x = torch.gather(a, 2, k[:, None, None].expand(-1, 3, 1))[..., 0]
    nn = torch.gather(n, 1, k[:, None])[:, 0]
    scale = S.diagonal(dim1=-2, dim2=-1).sum(-1)
    tol = (1e2 * torch.finfo(F.dtype).eps) ** 2
    ok = torch.isfinite(scale) & (scale > 0) & (nn > tol * scale.pow(4))
    for _ in range(2):
        y = (a @ x[..., None])[..., 0]
        ny = y.norm(dim=-1, keepdim=True)
        x = torch.where(ny > 0, y / torch.where(ny > 0, ny, torch.ones_like(ny)), x)
    v = x / x.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(F.dtype).tiny)
    F2 = F - (F @ v[..., None]) * v[:, None, :]
    nf = F2.flatten(1).norm(dim=-1)
    ok = ok & (nf > 0) & torch.isfinite(nf)
    F2 = torch.where(ok[:, None, None], F2 / torch.where(ok, nf, torch.ones_like(nf))[:, None, None],
                     torch.zeros_like(F2))
    return F2, ok


def eight_point_lo(q: torch.Tensor, w: torch.Tensor, F0: torch.Tensor):
    """Weighted 8-point on normalised pairs ``q (B, N, 4)``, weights ``w (B, N)`` (0 drops a
    pair), warm-started from ``F0 (B, 3, 3)`` (three inverse-iteration steps, as numpy's LO) →
    rank-2 unit ``F (B, 3, 3)`` and ``ok (B,)`` (≥ 8 weighted pairs, factorisation fine)."""
    A = design_rows(q)
    M = (A * w[..., None]).transpose(1, 2) @ A
    f0 = F0.flatten(1)
    f0 = f0 / f0.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(q.dtype).tiny)
    f, ok = smallest_eigvec_inverse(M, f0, 3)
    F, ok2 = rank2_project(f.unflatten(-1, (3, 3)))
    return F, ok & ok2 & ((w > 0).sum(-1) >= 8)


def homography_explained(q: torch.Tensor, inl: torch.Tensor, thr2: torch.Tensor) -> torch.Tensor:
    """How many inliers a DLT homography ``x2 ~ H x1`` fitted to all of them transfers within
    ``sqrt(thr2)`` (normalised units) → ``(B,)`` (0 where the fit fails). Inverse iteration from
    ``H = I``, six steps, as numpy's degeneracy test."""
    x, y, u, v = q.unbind(-1)
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    r1 = torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y, -u], -1)
    r2 = torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y, -v], -1)
    w = inl.to(q.dtype)[..., None]
    M = (r1 * w).transpose(1, 2) @ r1 + (r2 * w).transpose(1, 2) @ r2
    h0 = torch.eye(3, dtype=q.dtype, device=q.device).flatten().expand(q.shape[0], 9)
    h, ok = smallest_eigvec_inverse(M, h0, 6)
    h = h.unflatten(-1, (3, 3))
    p = h @ torch.stack([x, y, one], 1)                              # (B, 3, N)
    z = p[:, 2]
    zok = z != 0
    tu = p[:, 0] / torch.where(zok, z, one)
    tv = p[:, 1] / torch.where(zok, z, one)
    e2 = (tu - u) ** 2 + (tv - v) ** 2
    return (inl & zok & (e2 < thr2[:, None]) & ok[:, None]).sum(-1)
