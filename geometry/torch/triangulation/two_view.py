"""Triangulation for torch tensors: differentiable linear DLT (any number of views, masks,
weights) and optimal two-view Hartley–Sturm, batched, on any device.

Same conventions and result fields as :mod:`geometry.triangulation`: ``P = K [R | t]``
``(..., C, 3, 4)`` world → pixels, pixels ``(..., C, N, 2)`` (NaN marks missing). An untriangulable
point has ``valid=False`` and ``X = 0`` — never NaN, never an exception mid-batch.

Conditioning (as in the numpy path): the world is moved so the camera centres have centroid 0 and
RMS distance 1, and every DLT row (``P_k − x_k P_3``) is scaled to unit plane normal; the point
minimising the weighted squared point-to-plane distances solves a 3×3 system (adjugate, all
elementwise: no eigensolver, no host synchronisation). Gradients flow to ``P``, ``x`` and
``weights`` (checked with ``torch.autograd.gradcheck``); invalid points get zero gradient.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common import (adjugate3, as_mask, as_matrix, as_points, as_weights, broadcast_batch,
                      det3, flat, upcast)

__all__ = ["Triangulation", "OptimalTriangulation", "triangulate_dlt", "triangulate_optimal",
           "fundamental_from_projections"]


@dataclass(frozen=True)
class Triangulation:
    """Result of :func:`triangulate_dlt` (tensors): ``X (..., N, 3)`` (0 where invalid),
    ``valid (..., N)``, ``reproj_error (..., N)`` RMS px over the views used, ``num_views
    (..., N)`` int64, ``positive_depth (..., N)`` in front of every camera used."""

    X: torch.Tensor
    valid: torch.Tensor
    reproj_error: torch.Tensor
    num_views: torch.Tensor
    positive_depth: torch.Tensor


@dataclass(frozen=True)
class OptimalTriangulation:
    """Result of :func:`triangulate_optimal` (tensors): ``X (..., N, 3)``, corrected pixels
    ``x1, x2 (..., N, 2)`` (inputs where invalid), ``valid``, ``reproj_error`` (px, RMS over the
    two views against the observations), ``positive_depth``."""

    X: torch.Tensor
    x1: torch.Tensor
    x2: torch.Tensor
    valid: torch.Tensor
    reproj_error: torch.Tensor
    positive_depth: torch.Tensor


def _tolerances(dtype):
    """(rank, far) thresholds: numpy's ``det(N) > 1e-14 tr(N)³`` and ``|X'|₁ < 1e8`` in float64."""
    if dtype == torch.float64:
        return 1e-14, 1e8
    return 1e-9, 1e5


def _condition(P: torch.Tensor):
    """World conditioning for ``P (B, C, 3, 4)``: returns ``Pn = P H``, centroid ``c (B, 3)``,
    scale ``s (B,)`` and the depth scale ``sign(det M) / |M_3|`` per camera ``(B, C)``."""
    M, p4 = P[..., :3], P[..., 3]
    det = det3(M)
    num = -(adjugate3(M) @ p4.unsqueeze(-1)).squeeze(-1)      # homogeneous centre (num, det)
    hn = torch.cat([num, det.unsqueeze(-1)], -1).norm(dim=-1)
    has_c = (hn > 0) & (det.abs() > 1e-12 * hn)
    safe_det = torch.where(has_c, det, torch.ones_like(det))
    centres = torch.where(has_c.unsqueeze(-1), num / safe_det.unsqueeze(-1), torch.zeros_like(num))
    cnt = has_c.sum(-1, keepdim=True).clamp_min(1).to(P.dtype)
    c = centres.sum(-2) / cnt
    d2 = ((centres - c.unsqueeze(-2)).pow(2).sum(-1) * has_c).sum(-1) / cnt.squeeze(-1)
    s = d2.sqrt()
    s = torch.where(s > 1e-12 * (1 + c.abs().sum(-1)), s, torch.ones_like(s))
    Pn = torch.cat([P[..., :3] * s[:, None, None, None],
                    (M @ c[:, None, :, None]).squeeze(-1).unsqueeze(-1) + P[..., 3:]], -1)
    n3 = M[..., 2, :].norm(dim=-1)
    ok = (n3 > 0) & (det != 0)
    dscale = torch.where(ok, torch.sign(det) / torch.where(ok, n3, torch.ones_like(n3)),
                         torch.zeros_like(n3))
    return Pn, c, s, dscale


def _dlt_core(P, x, use, sw, xref):
    """``P (B,C,3,4)``, ``x, xref (B,C,N,2)``, ``use (B,C,N)`` bool, ``sw (B,C,N)`` sqrt weights.

    Minimises the weighted sum of squared point-to-plane distances (each row ``P_k − x_k P_3``
    scaled to unit normal) in the conditioned frame: a 3×3 normal system solved with its
    adjugate — elementwise, no eigensolver, differentiable everywhere it is valid.
    """
    B, C, N = x.shape[:3]
    dt = P.dtype
    rank_eps, far = _tolerances(dt)
    Pn, c, s, dscale = _condition(P)
    xs = torch.where(use.unsqueeze(-1), x, torch.zeros_like(x))
    # rows P1 - x P3 and P2 - y P3 for every (view, point): (B, C, N, 2, 4)
    rows = Pn[:, :, None, :2, :] - xs.unsqueeze(-1) * Pn[:, :, None, 2:3, :]
    nrm2 = rows[..., :3].pow(2).sum(-1)
    ok_row = (nrm2 > 0) & use.unsqueeze(-1)
    sc = torch.where(ok_row, sw.pow(2).unsqueeze(-1) / torch.where(ok_row, nrm2, 1.0), 0.0)
    r3, r1 = rows[..., :3], rows[..., 3]
    Nm = torch.einsum("bcnk,bcnki,bcnkj->bnij", sc, r3, r3)               # (B, N, 3, 3)
    bv = torch.einsum("bcnk,bcnki,bcnk->bni", sc, r3, r1)                 # (B, N, 3)
    nv = use.sum(1)                                                        # (B, N)
    det = det3(Nm)
    tr = Nm.diagonal(dim1=-2, dim2=-1).sum(-1)
    ok = (nv >= 2) & (tr > 0) & (det > rank_eps * tr.pow(3))
    dsafe = torch.where(ok, det, torch.ones_like(det))
    Xn = -(adjugate3(Nm) @ bv.unsqueeze(-1)).squeeze(-1) / dsafe.unsqueeze(-1)
    ok = ok & (Xn.abs().sum(-1) < far)
    X = Xn * s[:, None, None] + c[:, None, :]
    X = torch.where(ok.unsqueeze(-1), X, torch.zeros_like(X))
    # quality: reprojection and depth in the original cameras
    Xh = torch.cat([X, torch.ones_like(X[..., :1])], -1)                   # (B, N, 4)
    proj = torch.einsum("bcij,bnj->bcni", P, Xh)                          # (B, C, N, 3)
    z = proj[..., 2]
    zok = z != 0
    uv = proj[..., :2] / torch.where(zok, z, torch.ones_like(z)).unsqueeze(-1)
    xr = torch.where(use.unsqueeze(-1), xref, torch.zeros_like(xref))
    r2 = torch.where(use, (uv - xr).pow(2).sum(-1), torch.zeros_like(z)).sum(1)
    ok = ok & ~(use & ~zok).any(1) & torch.isfinite(r2)
    valid = ok
    X = torch.where(valid.unsqueeze(-1), X, torch.zeros_like(X))
    err = torch.where(valid, r2, torch.zeros_like(r2))
    err = torch.where(valid, (err / nv.clamp_min(1).to(dt)).clamp_min(1e-300).sqrt(),
                      torch.zeros_like(err))
    depth = z * dscale.unsqueeze(-1)
    pos = valid & torch.where(use, depth > 0, torch.ones_like(use)).all(1)
    return X, valid, err, nv, pos


# own DLT, not Kornia's triangulate_points: that has no world conditioning, masks or weights and
# lands 1.35e-4 (relative) from numpy's points on 10k pairs (ours 2e-15), though 1.9x faster
def triangulate_dlt(P, x, mask=None, weights=None) -> Triangulation:
    """Linear triangulation of ``N`` points seen by ``C`` cameras, differentiable.

    Args:
        P: ``(..., C, 3, 4)`` projection matrices (world → pixels), finite.
        x: ``(..., C, N, 2)`` pixels; NaN marks a missing observation.
        mask: optional ``(..., C, N)`` bool, False drops an observation.
        weights: optional ``(..., C, N)`` non-negative confidences multiplying the squared
            (plane-distance) residuals; 0 drops the observation.
    Returns:
        :class:`Triangulation` in ``x``'s dtype/device, batch ``broadcast(P[...,0,0,0],
        x[...,0,0,0])``. A point needs two usable views and non-parallel rays, else
        ``valid=False``, ``X = 0``.
    """
    x = as_points("x", x, min_ndim=3)
    dt = x.dtype
    x = upcast(x)  # float16/bfloat16: computed in float32 (pixel products overflow float16)
    P = as_matrix("P", P, 3, 4, like=x)
    if P.ndim < 3:
        raise ValueError(f"P: expected shape (..., C, 3, 4), got shape {tuple(P.shape)}")
    C, N = x.shape[-3], x.shape[-2]
    if P.shape[-3] != C:
        raise ValueError(f"P: expected shape (..., {C}, 3, 4) to match x {tuple(x.shape)}, "
                         f"got shape {tuple(P.shape)}")
    batch = broadcast_batch("P/x", P.shape[:-3], x.shape[:-3])
    obs = batch + (C, N)
    m = as_mask("mask", mask, obs, x.device)
    w = as_weights("weights", weights, obs, x)
    lead = len(batch)
    Pb = flat(P.expand(batch + (C, 3, 4)), lead, (C, 3, 4))
    xb = flat(x.expand(batch + (C, N, 2)), lead, (C, N, 2))
    use = flat(m & (w > 0), lead, (C, N)) & torch.isfinite(xb).all(-1)
    sw = flat(w, lead, (C, N)).clamp_min(0).sqrt()
    X, valid, err, nv, pos = _dlt_core(Pb, xb, use, sw, xb)
    return Triangulation(X=X.reshape(batch + (N, 3)).to(dt), valid=valid.reshape(batch + (N,)),
                         reproj_error=err.reshape(batch + (N,)).to(dt),
                         num_views=nv.reshape(batch + (N,)),
                         positive_depth=pos.reshape(batch + (N,)))


def _distinct_centres(Pa: torch.Tensor, Pb: torch.Tensor) -> torch.Tensor:
    """``(B,)``: cameras ``Pa, Pb (B, 3, 4)`` have different centres (a common centre — a pure
    rotation — leaves nothing to triangulate), as ``geometry.triangulation._distinct_centres``:
    true also where a camera has no finite centre. Elementwise (adjugate), no solver."""
    M = torch.stack([Pa[..., :3], Pb[..., :3]], 1)                       # (B, 2, 3, 3)
    p = torch.stack([Pa[..., 3], Pb[..., 3]], 1)                         # (B, 2, 3)
    det = det3(M)
    big = M.abs().flatten(-2).amax(-1).pow(3).clamp_min(1e-300)
    ok = (det.abs() > 1e-12 * big).all(-1)
    dsafe = torch.where(det != 0, det, torch.ones_like(det))
    c = -(adjugate3(M) @ p[..., None]).squeeze(-1) / dsafe[..., None]    # (B, 2, 3)
    d = (c[:, 0] - c[:, 1]).norm(dim=-1)
    scale = c.norm(dim=-1).amax(-1).clamp_min(1.0)
    return ~ok | (d > 1e-9 * scale)


def fundamental_from_projections(P1, P2) -> torch.Tensor:
    """Fundamental matrix of two cameras: ``P1, P2 (..., 3, 4)`` → ``F (..., 3, 3)`` with
    ``x2ᵀ F x1 = 0``, unit Frobenius norm (all zeros when the camera centres coincide); batch
    dims broadcast. Elementwise (signed 4×4 minors, H&Z eq. 17.3), differentiable."""
    from .hartley_sturm import fundamental_from_projections as _ffp
    P1 = as_matrix("P1", P1, 3, 4)
    P2 = as_matrix("P2", P2, 3, 4, like=P1)
    dt = P1.dtype
    P1, P2 = upcast(P1), upcast(P2)  # float16/bfloat16: computed in float32
    batch = broadcast_batch("P1/P2", P1.shape[:-2], P2.shape[:-2])
    a = flat(P1.expand(batch + (3, 4)), len(batch), (3, 4))
    b = flat(P2.expand(batch + (3, 4)), len(batch), (3, 4))
    return _ffp(a, b).reshape(batch + (3, 3)).to(dt)


def triangulate_optimal(x1, x2, P1, P2, *, F=None, mask=None,
                        chunk_size: int = 16384) -> OptimalTriangulation:
    """Optimal (Hartley–Sturm) two-view triangulation: minimal squared pixel error.

    Args:
        x1, x2: ``(..., N, 2)`` pixels in cameras 1 and 2 (NaN marks missing).
        P1, P2: ``(..., 3, 4)`` projection matrices (world → pixels).
        F: optional ``(..., 3, 3)`` fundamental matrix (``x2ᵀ F x1 = 0``) for the correction;
            by default computed from ``P1, P2``.
        mask: optional ``(..., N)`` bool.
        chunk_size: most matrices per batched SVD call (epipoles of a given ``F``; capped at
            16384) and, times 16, points per root-finding pass.
    Returns:
        :class:`OptimalTriangulation`. Cameras with a common centre give ``valid=False`` (as the
        numpy path); invalid points hold ``X = 0`` and the observed pixels with NaN as 0.
        The degree-6 polynomial's roots are found with a fixed
        number of Aberth iterations (no host synchronisation); every root's real part and the
        point at infinity are tried and the cheapest kept, then the corrected pixels are
        triangulated linearly. Computed in float64, returned in ``x1``'s dtype.
    """
    from .hartley_sturm import correct_matches
    from .hartley_sturm import fundamental_from_projections as _ffp
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size: expected a positive integer, got {chunk_size!r}")
    x1 = as_points("x1", x1)
    x2 = as_points("x2", x2, like=x1)
    if x1.shape != x2.shape:
        raise ValueError(f"x2: expected shape {tuple(x1.shape)} (like x1), got shape "
                         f"{tuple(x2.shape)}")
    P1 = as_matrix("P1", P1, 3, 4, like=x1)
    P2 = as_matrix("P2", P2, 3, 4, like=x1)
    N = x1.shape[-2]
    shapes = [x1.shape[:-2], P1.shape[:-2], P2.shape[:-2]]
    if F is not None:
        F = as_matrix("F", F, 3, 3, like=x1)
        shapes.append(F.shape[:-2])
    batch = broadcast_batch("x1/P1/P2/F", *shapes)
    lead = len(batch)
    m = flat(as_mask("mask", mask, batch + (N,), x1.device), lead, (N,))
    dt = x1.dtype
    f64 = torch.float64
    xa = flat(x1.expand(batch + (N, 2)), lead, (N, 2)).to(f64)
    xb = flat(x2.expand(batch + (N, 2)), lead, (N, 2)).to(f64)
    Pa = flat(P1.expand(batch + (3, 4)), lead, (3, 4)).to(f64)
    Pb = flat(P2.expand(batch + (3, 4)), lead, (3, 4)).to(f64)
    if F is None:
        Fb = _ffp(Pa, Pb)
    else:
        Fb = flat(F.expand(batch + (3, 3)), lead, (3, 3)).to(f64)
    Fb = Fb / Fb.flatten(-2).norm(dim=-1).clamp_min(1e-300)[:, None, None]
    use = m & torch.isfinite(xa).all(-1) & torch.isfinite(xb).all(-1)
    use = use & _distinct_centres(Pa, Pb)[:, None]
    e1 = e2 = None
    if F is None:  # exact epipoles from the camera centres: e1 = P1 C2, e2 = P2 C1
        def centre(P):
            M = P[..., :3]
            return torch.cat([-(adjugate3(M) @ P[..., 3:]).squeeze(-1), det3(M)[..., None]], -1)
        e1 = (Pa @ centre(Pb)[..., None]).squeeze(-1)
        e2 = (Pb @ centre(Pa)[..., None]).squeeze(-1)
        e1 = e1 / e1.norm(dim=-1, keepdim=True).clamp_min(1e-300)
        e2 = e2 / e2.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    c1, c2, ok = correct_matches(Fb, xa, xb, use, e1, e2, chunk_size)
    Pab = torch.stack([Pa, Pb], 1)
    xc = torch.stack([c1, c2], 1)
    xobs = torch.stack([torch.where(ok[..., None], xa, 0.0), torch.where(ok[..., None], xb, 0.0)], 1)
    use2 = ok[:, None, :].expand(-1, 2, -1)
    X, valid, err, _, pos = _dlt_core(Pab, xc, use2, torch.ones_like(xc[..., 0]), xobs)
    c1 = torch.where(valid[..., None], c1, torch.nan_to_num(xa, nan=0.0, posinf=0.0, neginf=0.0))
    c2 = torch.where(valid[..., None], c2, torch.nan_to_num(xb, nan=0.0, posinf=0.0, neginf=0.0))
    rs = lambda a, tail: a.reshape(batch + tail)  # noqa: E731
    return OptimalTriangulation(X=rs(X, (N, 3)).to(dt), x1=rs(c1, (N, 2)).to(dt),
                                x2=rs(c2, (N, 2)).to(dt), valid=rs(valid, (N,)),
                                reproj_error=rs(err, (N,)).to(dt), positive_depth=rs(pos, (N,)))
