"""Batched F-RANSAC over problems for torch tensors (any device, float32/float64).

All problems of a chunk are processed at once: ``B × H`` minimal samples are drawn with a
counter-based hash (no per-problem loop, no host synchronisation), each solved by the batched
7-point solver (up to 3 models), every model scored on every point by truncated Sampson error
(MSAC), the best kept per problem; then local optimisation like the numpy path — weighted
8-point on the points within 3 × threshold, then IRLS Sampson refits (each a batched 9×9
``eigh``, chunked), a refit kept only where it does not raise the MSAC cost — and a homography
degeneracy test.

Differences from :func:`geometry.ransac.estimate_fundamental` (documented, by design): exactly
``max_iterations`` hypotheses are drawn per problem (no adaptive stop — a data-dependent stop
would need a host sync); the sampler is a different random stream, so outcomes agree with the
numpy path on the problem level (same inliers / F within noise), not sample by sample.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common import (as_mask, as_points, check_positive, check_probability, chunked, hash32,
                      linalg_chunked, uniform_keys)
from .fundamental import (denormalize, normalize_pairs, sampson_sq, seven_point_normalized,
                          weighted_eight_point)

__all__ = ["FundamentalResult", "estimate_fundamental", "check_ransac_options", "check_pairs",
           "fundamental_core"]

MIN_INLIERS = 8
MIN_PARALLAX = 3
FINAL_REFIT_SCALE = 3.0
ELEMENT_BUDGET = 1 << 22  # models × points scored per round (memory bound)


@dataclass(frozen=True)
class FundamentalResult:
    """Result of :func:`estimate_fundamental` (tensors): ``F (..., 3, 3)`` unit norm, largest
    entry positive (zeros where invalid); ``inliers (..., N)``; ``num_inliers (...)`` int64;
    ``valid (...)``."""

    F: torch.Tensor
    inliers: torch.Tensor
    num_inliers: torch.Tensor
    valid: torch.Tensor


def check_ransac_options(threshold, confidence, max_iterations, seed):
    threshold = check_positive("threshold", threshold)
    confidence = check_probability("confidence", confidence)
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, int) or max_iterations < 1:
        raise ValueError(f"max_iterations: expected a positive integer, got {max_iterations!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed: expected an integer, got {seed!r}")
    return threshold, confidence, int(max_iterations), int(seed)


def check_pairs(x1, x2, mask):
    """``x1, x2 (..., N, 2)``, ``mask (..., N)`` → flat ``(B, N, ·)`` tensors and batch shape."""
    x1 = as_points("x1", x1)
    x2 = as_points("x2", x2, like=x1)
    if x1.shape != x2.shape:
        raise ValueError(f"x2: expected the shape of x1 {tuple(x1.shape)}, got shape "
                         f"{tuple(x2.shape)}")
    batch, N = x1.shape[:-2], x1.shape[-2]
    m = as_mask("mask", mask, batch + (N,), x1.device)
    return x1.reshape(-1, N, 2), x2.reshape(-1, N, 2), m.reshape(-1, N), batch


def _problem_keys(q, use, seed):
    """Per-problem 32-bit key from the quantised normalised coordinates (batch-split invariant)."""
    N = q.shape[1]
    qi = torch.round(q.double() * 1048576.0).to(torch.int64) & 0xFFFFFFFF       # (B, N, 4)
    k = torch.arange(N, device=q.device, dtype=torch.int64)
    h = hash32(hash32(qi[..., 0] ^ (k * 4)) ^ hash32(qi[..., 1] + 0x9E3779B9))
    h = hash32(h ^ hash32(qi[..., 2] + 0x7F4A7C15) ^ hash32(qi[..., 3] ^ (k + 0x165667B1)))
    h = torch.where(use, h, torch.zeros_like(h)).sum(-1) & 0xFFFFFFFF
    return hash32(h ^ (int(seed) & 0xFFFFFFFF)) ^ use.sum(-1)


def _msac(models, mvalid, q, use, thr2):
    """models ``(B, M, 3, 3)`` → MSAC cost ``(B, M)`` (inf for invalid models)."""
    d2 = sampson_sq(models, q[:, None])                                         # (B, M, N)
    c = torch.minimum(d2, thr2[:, None, None])
    c = torch.where(use[:, None], c, torch.zeros_like(c)).sum(-1)
    return torch.where(mvalid & torch.isfinite(c), c, torch.full_like(c, float("inf")))


def _band(F, q, use, thr2):
    d2 = sampson_sq(F, q)
    return use & (d2 < thr2[:, None])


def _homography_explained(q, inl, thr2, chunk_size):
    """How many inliers a DLT homography ``x2 ~ H x1`` fitted to all of them transfers within
    ``sqrt(thr2)`` (normalised units) → ``(B,)``."""
    x, y, u, v = q.unbind(-1)
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    r1 = torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y, -u], -1)
    r2 = torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y, -v], -1)
    w = inl.to(q.dtype)
    M = torch.einsum("bn,bni,bnj->bij", w, r1, r1) + torch.einsum("bn,bni,bnj->bij", w, r2, r2)
    h = linalg_chunked(lambda m: torch.linalg.eigh(m)[1][..., 0], chunk_size, M)
    h = h.unflatten(-1, (3, 3))
    p = torch.einsum("bij,bnj->bni", h, torch.stack([x, y, one], -1))
    z = p[..., 2]
    zok = z.abs() > 1e-12
    tu = p[..., 0] / torch.where(zok, z, one)
    tv = p[..., 1] / torch.where(zok, z, one)
    e2 = (tu - u) ** 2 + (tv - v) ** 2
    return (inl & zok & (e2 < thr2[:, None])).sum(-1)


def fundamental_core(x1, x2, use, threshold, max_iterations, seed, check_degeneracy,
                     refine_iterations, chunk_size):
    """One chunk of problems: ``x1, x2 (B, N, 2)``, ``use (B, N)`` → F (B,3,3), inliers (B,N),
    num (B,), valid (B,), plus the normalised pairs and thresholds for callers."""
    B, N = x1.shape[:2]
    dt = x1.dtype
    dev = x1.device
    q, s, c1, c2 = normalize_pairs(x1, x2, use)
    thr2 = (s * threshold) ** 2
    nvalid = use.sum(-1)
    key = _problem_keys(q, use, seed)                                           # (B,)
    H = max_iterations
    per_round = max(1, min(H, ELEMENT_BUDGET // max(1, B * 3 * N)))
    best_cost = torch.full((B,), float("inf"), dtype=dt, device=dev)
    best_F = torch.zeros(B, 3, 3, dtype=dt, device=dev)
    ar_n = torch.arange(N, device=dev, dtype=torch.int64)
    for h0 in range(0, H, per_round):
        hc = min(per_round, H - h0)
        hid = torch.arange(h0, h0 + hc, device=dev, dtype=torch.int64)
        u = uniform_keys(0, key[:, None, None], hid[None, :, None] * N + ar_n[None, None])
        u = torch.where(use[:, None, :], u, torch.full_like(u, 2.0))
        idx = u.topk(7, dim=-1, largest=False).indices                          # (B, hc, 7)
        q7 = torch.gather(q[:, None].expand(B, hc, N, 4), 2, idx[..., None].expand(B, hc, 7, 4))
        F7, v7 = seven_point_normalized(q7.reshape(-1, 7, 4))
        F7 = F7.reshape(B, hc * 3, 3, 3)
        cost = _msac(F7, v7.reshape(B, hc * 3), q, use, thr2)
        c, i = cost.min(-1)
        Fi = torch.gather(F7, 1, i[:, None, None, None].expand(B, 1, 3, 3)).squeeze(1)
        better = c < best_cost
        best_cost = torch.where(better, c, best_cost)
        best_F = torch.where(better[:, None, None], Fi, best_F)
    ok = torch.isfinite(best_cost) & (nvalid >= MIN_INLIERS) & (s > 0)
    ok = ok & (_band(best_F, q, use, thr2).sum(-1) >= MIN_INLIERS)
    wide2 = thr2 * FINAL_REFIT_SCALE ** 2
    F = best_F
    cur = best_cost

    def accept(F, cur, Fn, okn):
        # a refit replaces the model only where it does not raise the MSAC cost
        c = _msac(Fn[:, None], okn[:, None], q, use, thr2)[:, 0]
        take = okn & (c <= cur * (1 + 1e-9))
        return torch.where(take[:, None, None], Fn, F), torch.where(take, c, cur)
    x1h = torch.cat([q[..., :2], torch.ones_like(q[..., :1])], -1)
    x2h = torch.cat([q[..., 2:], torch.ones_like(q[..., :1])], -1)
    for _ in range(2):
        band = _band(F, q, use, wide2)
        Fa, oka = weighted_eight_point(q, band.to(dt), chunk_size)
        F, cur = accept(F, cur, Fa, oka & (band.sum(-1) >= MIN_INLIERS))
        for _ in range(refine_iterations):
            band = _band(F, q, use, wide2)
            Fx1 = torch.einsum("bij,bnj->bni", F, x1h)
            Ftx2 = torch.einsum("bji,bnj->bni", F, x2h)
            den = Fx1[..., 0] ** 2 + Fx1[..., 1] ** 2 + Ftx2[..., 0] ** 2 + Ftx2[..., 1] ** 2
            w = torch.where(band & (den > 0), 1.0 / torch.where(den > 0, den, 1.0),
                            torch.zeros_like(den))
            w = w / w.amax(-1, keepdim=True).clamp_min(torch.finfo(dt).tiny)
            Fb, okb = weighted_eight_point(q, w, chunk_size)
            F, cur = accept(F, cur, Fb, okb & (band.sum(-1) >= MIN_INLIERS))
    inl = _band(F, q, use, thr2)
    num = inl.sum(-1)
    ok = ok & (num >= MIN_INLIERS) & torch.isfinite(F).all(-1).all(-1)
    if check_degeneracy:
        ok = ok & (num - _homography_explained(q, inl, thr2, chunk_size) >= MIN_PARALLAX)
    Fp = denormalize(F, s, c1, c2)
    Fp = torch.where(ok[:, None, None], Fp, torch.zeros_like(Fp))
    inl = inl & ok[:, None]
    return Fp, inl, torch.where(ok, num, torch.zeros_like(num)), ok


def estimate_fundamental(x1, x2, mask=None, *, threshold: float = 3.0, confidence: float = 0.999,
                         max_iterations: int = 128, seed: int = 0, check_degeneracy: bool = True,
                         refine_iterations: int = 3, chunk_size: int = 16384) -> FundamentalResult:
    """Robust fundamental matrices for a batch of independent two-view problems (torch).

    Args:
        x1, x2: ``(..., N, 2)`` pixel correspondences (``x2ᵀ F x1 = 0``), float32 or float64,
            any device; NaN marks a missing point.
        mask: optional ``(..., N)`` bool, False to ignore a point.
        threshold: inlier threshold in pixels on the Sampson distance (not squared).
        confidence: validated for signature compatibility with the numpy path; the batched
            sampler draws exactly ``max_iterations`` hypotheses for every problem.
        max_iterations: minimal samples per problem (each gives up to three 7-point models).
        seed: random seed; each problem's stream derives from ``seed`` and its own coordinates,
            so any batch split gives identical results (for one dtype).
        check_degeneracy: ``valid=False`` when one homography explains all but < 3 inliers.
        refine_iterations: IRLS Sampson refits after each of the two 8-point refits.
        chunk_size: problems per chunk (bounds memory and keeps batched ``eigh``/``svd`` calls
            below cuSOLVER's ~32k-matrix limit).
    Returns:
        :class:`FundamentalResult` on the input's device; fewer than 8 valid points or inliers,
        or a degenerate configuration, gives ``valid=False``, ``F = 0``, no inliers.
    """
    x1f, x2f, mf, batch = check_pairs(x1, x2, mask)
    threshold, _, max_iterations, seed = check_ransac_options(threshold, confidence,
                                                              max_iterations, seed)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size: expected a positive integer, got {chunk_size!r}")
    N = x1f.shape[1]
    use = mf & torch.isfinite(x1f).all(-1) & torch.isfinite(x2f).all(-1)

    def run(a, b, u):
        return fundamental_core(a, b, u, threshold, max_iterations, seed, check_degeneracy,
                                refine_iterations, chunk_size)
    if x1f.shape[0] == 0:
        z = x1f.new_zeros
        F, inl = z((0, 3, 3)), torch.zeros((0, N), dtype=torch.bool, device=x1f.device)
        num, ok = torch.zeros(0, dtype=torch.int64, device=x1f.device), inl[:, 0]
    else:
        F, inl, num, ok = chunked(run, chunk_size, x1f, x2f, use)
    return FundamentalResult(F=F.reshape(batch + (3, 3)), inliers=inl.reshape(batch + (N,)),
                             num_inliers=num.reshape(batch), valid=ok.reshape(batch))
