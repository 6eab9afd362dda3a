"""Fundamental-matrix solvers for torch tensors: Hartley normalisation, 7-point (batched null
space by a batched LU and a closed-form cubic), weighted 8-point, Sampson distance.

Conventions: pixels ``(..., N, 2)``; ``x2ᵀ F x1 = 0``; F has unit Frobenius norm with its
largest-magnitude entry positive. Everything is elementwise or a batched small-matrix
decomposition (chunked): no per-problem Python loop, no host synchronisation.
"""
from __future__ import annotations

import math

import torch
from kornia.geometry.epipolar import find_fundamental as _k_find_fundamental
from kornia.geometry.epipolar import sampson_epipolar_distance as _k_sampson
from kornia.geometry.epipolar import symmetrical_epipolar_distance as _k_symmetric

from ..common import (_shape_str, as_mask, as_matrix, as_points, as_weights, det3, flat,
                      linalg_chunked, upcast)

__all__ = ["hartley_normalize", "fundamental_7point", "fundamental_8point", "sampson_distance",
           "symmetric_epipolar_distance", "normalize_pairs", "denormalize", "design_rows",
           "canonical_sign"]


# own Hartley normalisation, not Kornia's normalize_points: that adds eps=1e-8 to the mean radius
# (8.5e-10 px from numpy's result on 10k problems; the parity test asks 1e-12), and has no NaN
# handling or overflow guard — though it is 6x faster (3 ms vs 19 ms for 10k problems, float64)
def pow2_exponent(x: torch.Tensor, use: torch.Tensor) -> torch.Tensor:
    """Per problem the exponent ``e`` with ``max|x| < 2^e`` over the used points of ``x (B, N, k)``
    (0 where none): ``ldexp(x, −e)`` rescales exactly (a power of two), so the normalisation
    below never squares an astronomically large coordinate (numpy's path copes with 1e160 too)."""
    if x.shape[-2] == 0:
        return torch.zeros(x.shape[:-2], dtype=torch.int32, device=x.device)
    m = torch.where(use[..., None], x.abs(), torch.zeros_like(x)).amax((-1, -2))
    e = torch.frexp(m).exponent
    return torch.where((m > 0) & torch.isfinite(m), e, torch.zeros_like(e))


def normalize_pairs(x1, x2, use):
    """Hartley normalisation with one scale for both images (as the numpy path).

    ``x1, x2 (B, N, 2)``, ``use (B, N)`` → ``q (B, N, 4)`` (``u = s (x − c)``, zeros where not
    used), ``s (B,)`` (0 when the points coincide or ``s`` underflows), ``c1, c2 (B, 2)``.
    """
    e = torch.maximum(pow2_exponent(x1, use), pow2_exponent(x2, use))[:, None, None]
    w = use.to(x1.dtype)
    n = w.sum(-1).clamp_min(1)
    z1 = torch.where(use[..., None], torch.ldexp(x1, -e), torch.zeros_like(x1))
    z2 = torch.where(use[..., None], torch.ldexp(x2, -e), torch.zeros_like(x2))
    c1 = z1.sum(-2) / n[:, None]
    c2 = z2.sum(-2) / n[:, None]
    d = (((z1 - c1[:, None]).pow(2).sum(-1).sqrt() + (z2 - c2[:, None]).pow(2).sum(-1).sqrt())
         * w).sum(-1) / (2 * n)
    # d is in units of 2^e; the no-spread test stays relative to the coordinates' size (as
    # before, where 1e-12 px was absolute for pixel-sized input)
    ok = (torch.ldexp(d, e[:, 0, 0]) > 1e-12) & torch.isfinite(d)
    k = torch.where(ok, math.sqrt(2.0) / torch.where(ok, d, torch.ones_like(d)), torch.zeros_like(d))
    q = torch.cat([(z1 - c1[:, None]), (z2 - c2[:, None])], -1) * k[:, None, None]
    q = torch.where(use[..., None] & ok[:, None, None], q, torch.zeros_like(q))
    s = torch.ldexp(k, -e[:, 0, 0])
    ok = ok & (s > 0)
    c1, c2 = torch.ldexp(c1, e[:, 0]), torch.ldexp(c2, e[:, 0])
    return q, torch.where(ok, s, torch.zeros_like(s)), c1, c2


def _T(s, c):
    B = s.shape[0]
    T = torch.zeros(B, 3, 3, dtype=s.dtype, device=s.device)
    T[:, 0, 0] = s
    T[:, 1, 1] = s
    T[:, 0, 2] = -s * c[:, 0]
    T[:, 1, 2] = -s * c[:, 1]
    T[:, 2, 2] = 1.0
    return T


def canonical_sign(F: torch.Tensor) -> torch.Tensor:
    """Scale ``F (..., 3, 3)`` to unit Frobenius norm, largest-magnitude entry positive (0 → 0)."""
    f = F.flatten(-2)
    n = f.norm(dim=-1, keepdim=True)
    idx = f.abs().argmax(-1, keepdim=True)
    sg = torch.sign(torch.gather(f, -1, idx))
    sg = torch.where(sg == 0, torch.ones_like(sg), sg)
    ok = (n > 0) & torch.isfinite(n)
    f = torch.where(ok, f * sg / torch.where(ok, n, torch.ones_like(n)), torch.zeros_like(f))
    return f.unflatten(-1, (3, 3))


def denormalize(Fn, s, c1, c2):
    """``F = T2ᵀ Fn T1`` for normalised ``Fn (B, ..., 3, 3)``; canonical scale and sign."""
    T1, T2 = _T(s, c1), _T(s, c2)
    extra = Fn.ndim - 3
    T1 = T1.reshape(T1.shape[:1] + (1,) * extra + (3, 3))
    T2 = T2.reshape(T2.shape[:1] + (1,) * extra + (3, 3))
    return canonical_sign(T2.transpose(-1, -2) @ Fn @ T1)


def design_rows(q: torch.Tensor) -> torch.Tensor:
    """Epipolar design rows ``(..., 9)`` of normalised pairs ``q (..., 4)`` = (x1, y1, x2, y2),
    so that ``row · vec(F) = x2ᵀ F x1`` (row-major ``vec``)."""
    x, y, u, v = q.unbind(-1)
    one = torch.ones_like(x)
    return torch.stack([u * x, u * y, u, v * x, v * y, v, x, y, one], -1)


# --------------------------------------------------------------------------- 7-point
def _null2_lu(A: torch.Tensor):
    """Two null vectors of ``A (M, 7, 9)``: LU with partial pivoting of the first seven columns
    (``A₇ C = A₂``, null space ``[-C; I₂]``) — the same elimination as Gauss–Jordan, in one
    batched LAPACK call (12× faster on CPU than our elementwise Gauss–Jordan, measured on 16k
    samples). Returns ``f1, f2 (M, 9)`` and ``ok`` (every pivot above ``1e3 ε max|A|``)."""
    M = A.shape[0]
    scale = A.abs().amax((-1, -2)).clamp_min(torch.finfo(A.dtype).tiny)
    LU, piv, _ = torch.linalg.lu_factor_ex(A[..., :7])
    d = LU.diagonal(dim1=-2, dim2=-1).abs().amin(-1)
    ok = d > 1e3 * torch.finfo(A.dtype).eps * scale
    LU = torch.where(ok[:, None, None], LU, torch.eye(7, dtype=A.dtype, device=A.device))
    C = torch.linalg.lu_solve(LU, piv, A[..., 7:])                            # (M, 7, 2)
    eye = torch.eye(2, dtype=A.dtype, device=A.device).expand(M, 2, 2)
    N = torch.cat([-C, eye], 1)                                                # (M, 9, 2)
    return N[..., 0], N[..., 1], ok


def _cubic_roots(c3, c2, c1, c0):
    """Real roots of ``c3 α³ + c2 α² + c1 α + c0`` → ``(..., 3)`` and a validity mask."""
    big = torch.stack([c3.abs(), c2.abs(), c1.abs(), c0.abs()], -1).amax(-1)
    cubic = c3.abs() > 1e-10 * big
    s3 = torch.where(cubic, c3, torch.ones_like(c3))
    a, b, c = c2 / s3, c1 / s3, c0 / s3
    p = b - a * a / 3
    q = 2 * a ** 3 / 27 - a * b / 3 + c
    disc = (q / 2) ** 2 + (p / 3) ** 3
    one = disc > 0
    sq = torch.sqrt(torch.where(one, disc, torch.zeros_like(disc)))
    u = -q / 2 + sq
    v = -q / 2 - sq
    cbrt = lambda z: torch.sign(z) * z.abs().pow(1.0 / 3.0)  # noqa: E731
    r_one = cbrt(u) + cbrt(v) - a / 3
    r = torch.sqrt(torch.where(one, torch.zeros_like(p), -p / 3))
    rr = torch.where(r > 0, r, torch.ones_like(r))
    phi = torch.acos(torch.clamp(-q / (2 * rr ** 3), -1.0, 1.0))
    k = torch.arange(3, dtype=c3.dtype, device=c3.device)
    r_three = 2 * r[..., None] * torch.cos((phi[..., None] + 2 * math.pi * k) / 3) - a[..., None] / 3
    roots = torch.where(one[..., None], r_one[..., None].expand_as(r_three), r_three)
    valid = torch.stack([torch.ones_like(one), ~one, ~one], -1) & cubic[..., None]
    # quadratic fallback (c3 ≈ 0)
    qa = torch.where(c2.abs() > 0, c2, torch.ones_like(c2))
    qd = c1 * c1 - 4 * c2 * c0
    qs = torch.sqrt(qd.clamp_min(0))
    quad = torch.stack([(-c1 + qs) / (2 * qa), (-c1 - qs) / (2 * qa), torch.zeros_like(c1)], -1)
    qvalid = torch.stack([qd >= 0, qd > 0, torch.zeros_like(one)], -1) & (c2.abs() > 0)[..., None]
    roots = torch.where(cubic[..., None], roots, quad)
    valid = torch.where(cubic[..., None], valid, qvalid & ~cubic[..., None])
    # one Newton step on the original polynomial
    for _ in range(2):
        f = ((c3[..., None] * roots + c2[..., None]) * roots + c1[..., None]) * roots + c0[..., None]
        d = (3 * c3[..., None] * roots + 2 * c2[..., None]) * roots + c1[..., None]
        step = f / torch.where(d == 0, torch.ones_like(d), d)
        roots = torch.where((d != 0) & torch.isfinite(step), roots - step, roots)
    valid = valid & torch.isfinite(roots)
    return torch.where(valid, roots, torch.zeros_like(roots)), valid


def seven_point_normalized(q7: torch.Tensor):
    """Minimal solver on normalised samples ``q7 (M, 7, 4)`` → ``F (M, 3, 3, 3)`` (up to three
    candidates, unit norm) and ``valid (M, 3)``."""
    A = design_rows(q7)
    f1, f2, ok = _null2_lu(A)
    F1 = f1.unflatten(-1, (3, 3))
    F2 = f2.unflatten(-1, (3, 3))
    D = F1 - F2
    d0, d1 = det3(F2), det3(F2 + D)
    dm1, d2 = det3(F2 - D), det3(F2 + 2 * D)
    c0 = d0
    c2 = (d1 + dm1) / 2 - d0
    c13 = (d1 - dm1) / 2
    c3 = (d2 - d0 - 4 * c2 - 2 * c13) / 6
    c1 = c13 - c3
    alpha, valid = _cubic_roots(c3, c2, c1, c0)
    F = alpha[..., None, None] * D[:, None] + F2[:, None]
    n = F.flatten(-2).norm(dim=-1)
    valid = valid & ok[:, None] & (n > 0) & torch.isfinite(n)
    F = torch.where(valid[..., None, None], F / torch.where(valid, n, torch.ones_like(n))[..., None, None],
                    torch.zeros_like(F))
    return F, valid


# --------------------------------------------------------------------------- public API
def _pairs(x1, x2, n_exact=None):
    x1 = as_points("x1", x1)
    x2 = as_points("x2", x2, like=x1)
    if x2.shape != x1.shape:
        raise ValueError(f"x2: expected the shape of x1 {_shape_str(x1.shape)}, got shape "
                         f"{_shape_str(x2.shape)}")
    if n_exact is not None and x1.shape[-2] != n_exact:
        raise ValueError(f"x1: expected shape (..., {n_exact}, 2), got shape "
                         f"{_shape_str(x1.shape)}")
    return upcast(x1), upcast(x2), x1.dtype  # float16/bfloat16: computed in float32


def _hartley(x, use):
    """:func:`hartley_normalize` on validated ``x (..., N, 2)`` and ``use (..., N)``; also
    returns ``ok (...)`` (spread found). Computed on ``x`` rescaled by a power of two (exact), so
    coordinates up to the dtype's limit normalise without overflow."""
    lead = x.shape[:-2]
    e = pow2_exponent(flat(x, len(lead), x.shape[-2:]), flat(use, len(lead), use.shape[-1:]))
    e = e.reshape(lead)
    inv = torch.ldexp(torch.ones(lead, dtype=x.dtype, device=x.device), -e)  # 2^-e, exact
    xs = x * inv[..., None, None]  # (ldexp itself passes no gradient to x)
    w = use.to(x.dtype)
    cnt = w.sum(-1).clamp_min(1)
    xu = torch.where(use[..., None], xs, torch.zeros_like(xs))
    c = xu.sum(-2) / cnt[..., None]
    mean = ((xu - c[..., None, :]).pow(2).sum(-1).sqrt() * w).sum(-1) / cnt
    ok = (torch.ldexp(mean, e) > 1e-12) & torch.isfinite(mean) & torch.isfinite(c).all(-1)
    k = torch.where(ok, 2.0 ** 0.5 / torch.where(ok, mean, torch.ones_like(mean)),
                    torch.ones_like(mean))
    s = torch.where(ok, k * inv, torch.ones_like(k))
    c = torch.where(ok[..., None], c, torch.zeros_like(c))
    z, one = torch.zeros_like(s), torch.ones_like(s)
    T = torch.stack([torch.stack([s, z, -k * c[..., 0]], -1),
                     torch.stack([z, s, -k * c[..., 1]], -1),
                     torch.stack([z, z, one], -1)], -2)
    xn = torch.where(ok[..., None, None], (xs - c[..., None, :]) * k[..., None, None], x)
    return xn, T, ok


def hartley_normalize(x, mask=None):
    """Hartley's isotropic normalisation of ``x (..., N, 2)`` (pixels).

    Translates the centroid of the valid points (mask True and finite) to the origin and scales
    their mean distance to √2. Returns ``xn (..., N, 2)`` and ``T (..., 3, 3)`` with
    ``[xn, 1]ᵀ = T [x, 1]ᵀ``; problems with no spread, or whose spread overflows the dtype,
    get ``T = I``. float16/bfloat16 are computed in float32. Differentiable.
    """
    x = as_points("x", x)
    dt = x.dtype
    use = as_mask("mask", mask, x.shape[:-1], x.device) & torch.isfinite(x).all(-1)
    xn, T, _ = _hartley(upcast(x), use)
    return xn.to(dt), T.to(dt)


def fundamental_7point(x1, x2):
    """The 7-point solver: ``x1, x2 (..., 7, 2)`` pixels → ``F (..., 3, 3, 3)``, ``count (...)``.

    ``F[..., k, :, :]`` for ``k < count`` are the (1 or 3) real rank-2 solutions (unit Frobenius
    norm, largest-magnitude entry positive, ``x2ᵀ F x1 = 0``), the rest zero; count 0 marks a
    degenerate sample (coincident points, rank < 7) or NaN input — as
    :func:`geometry.fundamental.fundamental_7point`. Kornia's ``find_fundamental(method="7POINT")``
    on our Hartley-normalised pairs: numpy's roots to 6e-9 on 2,000 noisy problems (our LU solver:
    3e-7), same counts; 1.5× slower than our solver (0.076 s vs 0.043–0.055 s for 10k problems),
    which F-RANSAC keeps for that reason (Kornia normalises again and uses an SVD).
    """
    x1, x2, dt = _pairs(x1, x2, 7)
    batch = x1.shape[:-2]
    a, b = flat(x1, x1.ndim - 2, (7, 2)), flat(x2, x2.ndim - 2, (7, 2))
    use = torch.isfinite(a).all(-1) & torch.isfinite(b).all(-1)
    q, s, c1, c2 = normalize_pairs(a, b, use)   # finite (zeros where it fails), any scale
    Fn = _k_find_fundamental(q[..., :2].contiguous(), q[..., 2:].contiguous(), method="7POINT")
    n = Fn.flatten(-2).norm(dim=-1)
    valid = (n > 0) & torch.isfinite(n) & use.all(-1)[:, None] & (s > 0)[:, None]
    Fn = torch.where(valid[..., None, None], Fn, torch.eye(3, dtype=Fn.dtype, device=Fn.device))
    F = torch.where(valid[..., None, None], denormalize(Fn, s, c1, c2), torch.zeros_like(Fn))
    order = torch.argsort((~valid).to(torch.int8), dim=-1, stable=True)  # valid ones first
    F = torch.gather(F, 1, order[..., None, None].expand(-1, 3, 3, 3))
    count = valid.sum(-1)
    return F.reshape(batch + (3, 3, 3)).to(dt), count.reshape(batch)


# own 8-point, not Kornia's find_fundamental: that raises LinAlgError on NaN-padded points, weights
# the Hartley statistics too (F up to 0.6 from numpy's with weights) and returns no validity; it is
# 1.5x faster unweighted (0.11 s vs 0.16 s for 10k problems, float64; 2e-10 apart there)
def fundamental_8point(x1, x2, mask=None, weights=None, *, chunk_size: int = 16384):
    """Normalised (weighted) 8-point algorithm with rank-2 projection.

    Args:
        x1, x2: ``(..., N, 2)`` pixels; NaN points are ignored. mask: ``(..., N)`` bool.
        weights: ``(..., N)`` non-negative weights of the squared algebraic residuals.
        chunk_size: most matrices per batched ``eigh``/``svd`` call (capped at 16384).
    Returns:
        ``F (..., 3, 3)`` minimising ``Σ wᵢ (x2ᵢᵀ F x1ᵢ)²`` in Hartley-normalised coordinates
        (each image normalised separately, as :func:`geometry.fundamental.fundamental_8point`),
        unit norm with its largest entry positive, and ``valid (...)``: at least 8 points with
        positive weight and a unique solution (design matrix of rank 8; float32 uses looser
        rank tolerances). Invalid problems get ``F = 0``. Differentiable where valid.
    """
    x1, x2, dt = _pairs(x1, x2)
    batch, N = x1.shape[:-2], x1.shape[-2]
    m = as_mask("mask", mask, batch + (N,), x1.device)
    w = as_weights("weights", weights, batch + (N,), x1)
    use = m & (w > 0) & torch.isfinite(x1).all(-1) & torch.isfinite(x2).all(-1)
    a, b = flat(x1, x1.ndim - 2, (N, 2)), flat(x2, x2.ndim - 2, (N, 2))
    use, w = flat(use, use.ndim - 1, (N,)), flat(w, w.ndim - 1, (N,))
    x1n, T1, ok1 = _hartley(a, use)
    x2n, T2, ok2 = _hartley(b, use)
    norm_ok = ok1 & ok2
    q = torch.where(use[..., None] & norm_ok[:, None, None], torch.cat([x1n, x2n], -1), 0.0)
    A = design_rows(q) * torch.where(use, w, torch.zeros_like(w)).sqrt()[..., None]
    M = A.transpose(-1, -2) @ A
    # no eigensolver call on a non-finite matrix (LAPACK may fail or not return): identity there
    M_ok = torch.isfinite(M).flatten(1).all(-1)
    M = torch.where(M_ok[:, None, None], M, torch.eye(9, dtype=M.dtype, device=M.device))
    evals, evecs = linalg_chunked(torch.linalg.eigh, chunk_size, M)
    Fn = evecs[..., 0].unflatten(-1, (3, 3))

    def rank2(f):
        U, S, Vh = torch.linalg.svd(f)
        return U @ (torch.cat([S[:, :2], torch.zeros_like(S[:, 2:])], -1)[..., None] * Vh), S
    Fn, S = linalg_chunked(rank2, chunk_size, Fn)
    F = canonical_sign(T2.transpose(-1, -2) @ Fn @ T1)
    t_eig, t_sv = (1e-12, 1e-9) if x1.dtype == torch.float64 else (1e-5, 1e-5)
    valid = ((use.sum(-1) >= 8) & (evals[:, 1] > t_eig * evals[:, -1].clamp_min(1e-300))
             & (S[:, 1] > t_sv * S[:, 0]) & norm_ok & M_ok & torch.isfinite(F).flatten(1).all(-1))
    F = torch.where(valid[:, None, None], F, torch.zeros_like(F))
    return F.reshape(batch + (3, 3)).to(dt), valid.reshape(batch)


def _distance_args(F, x1, x2):
    x1, x2, dt = _pairs(x1, x2)
    F = as_matrix("F", F, 3, 3, like=x1)
    return F, x1, x2, dt


def sampson_distance(F, x1, x2, *, squared: bool = False) -> torch.Tensor:
    """Sampson (first-order geometric) distance in pixels, ``(..., N)``.

    ``|e| / sqrt((F x1)₀² + (F x1)₁² + (Fᵀ x2)₀² + (Fᵀ x2)₁²)`` with ``e = x2ᵀ F x1``
    (squared with ``squared=True``). ``F (..., 3, 3)``, ``x1, x2 (..., N, 2)``; leading dims
    broadcast. ``inf`` where the denominator vanishes, NaN where a point is NaN.
    Differentiable in ``F``, ``x1``, ``x2`` (the unsquared distance not at zero residual).
    Kornia's ``sampson_epipolar_distance`` (equal to the numpy path to 0 ulp on 10k problems,
    4–8× faster than our former matmul form).
    """
    F, x1, x2, dt = _distance_args(F, x1, x2)
    return _k_sampson(x1, x2, F, squared=squared).to(dt)


def symmetric_epipolar_distance(F, x1, x2, *, squared: bool = False) -> torch.Tensor:
    """Symmetric epipolar distance in pixels, ``(..., N)``: ``sqrt(d(x2, F x1)² + d(x1, Fᵀ x2)²)``
    (point-to-epipolar-line distances in each image; the sum of squares with ``squared=True``).
    ``inf`` where a line is undefined. Kornia's ``symmetrical_epipolar_distance`` (0 ulp from
    ours on 10k problems, 3.5× faster)."""
    F, x1, x2, dt = _distance_args(F, x1, x2)
    return _k_symmetric(x1, x2, F, squared=squared).to(dt)
