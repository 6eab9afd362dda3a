"""Hartley–Sturm optimal correction for torch tensors (private; float64, batched, sync-free).

Same parameterisation as ``geometry.triangulation.hartley_sturm.poly`` (Hartley & Zisserman §12.5): each image is
translated so the point sits at the origin and rotated so the epipole is ``(1, 0, f)``; the
stationary points of the cost ``s(t)`` are the roots of a degree-6 polynomial ``g(t)``. Its
roots are found with a fixed number of Aberth–Ehrlich iterations (complex, elementwise — no
eigensolver, no data-dependent control flow), polished with Newton steps on their real parts;
the cost is evaluated at every root's real part and at ``t = ∞`` and the cheapest is kept (a
superset of the real roots, so the global minimum is among them).
"""
from __future__ import annotations

import torch

from ..common import chunked, linalg_chunked

__all__ = ["fundamental_from_projections", "correct_matches", "epipoles_from_fundamental"]


def _minors(A, r0, r1):
    """The six 2×2 minors of rows ``r0, r1`` of ``A (B, 3, 4)`` → ``(B, 6)`` (Laplace order)."""
    a, b = A[:, r0], A[:, r1]
    pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    return torch.stack([a[:, i] * b[:, j] - b[:, i] * a[:, j] for i, j in pairs], -1)


def fundamental_from_projections(P1: torch.Tensor, P2: torch.Tensor) -> torch.Tensor:
    """``F (B, 3, 3)`` with ``x2ᵀ F x1 = 0`` from ``P1, P2 (B, 3, 4)`` (H&Z eq. 17.3), unit
    Frobenius norm; zeros when the centres coincide."""
    rows = [(1, 2), (0, 2), (0, 1)]
    s = [_minors(P1, *rows[i]) for i in range(3)]
    c = [_minors(P2, *rows[j]) for j in range(3)]
    F = []
    for j in range(3):
        row = []
        for i in range(3):
            a, b = s[i], c[j]
            det = (a[:, 0] * b[:, 5] - a[:, 1] * b[:, 4] + a[:, 2] * b[:, 3] + a[:, 3] * b[:, 2]
                   - a[:, 4] * b[:, 1] + a[:, 5] * b[:, 0])
            row.append(det if (i + j) % 2 == 0 else -det)
        F.append(torch.stack(row, -1))
    F = torch.stack(F, -2)
    n = F.flatten(-2).norm(dim=-1)
    return torch.where((n > 0)[:, None, None], F / n.clamp_min(1e-300)[:, None, None], F)


def _svd_null(F):
    U, _, Vh = torch.linalg.svd(F)
    return Vh[:, 2, :], U[:, :, 2]


def epipoles_from_fundamental(F: torch.Tensor, chunk_size: int = 16384):
    """Unit epipoles ``e1 (B,3)`` (``F e1 = 0``) and ``e2`` (``Fᵀ e2 = 0``)."""
    return linalg_chunked(_svd_null, chunk_size, F)


def _aberth(p: torch.Tensor, iters: int = 60) -> torch.Tensor:
    """Roots of ``p (M, 7)`` (ascending coefficients, ``p[:, 6] ≠ 0``) → ``(M, 6)`` complex."""
    M = p.shape[0]
    pc = p.to(torch.complex128)
    # Cauchy-like radius and rotated start points on a circle
    lead = p[:, 6].abs()
    rad = 1.0 + (p[:, :6].abs() / lead[:, None]).amax(-1)
    rad = rad.clamp(max=1e6)
    k = torch.arange(6, dtype=torch.float64, device=p.device)
    ang = 2 * torch.pi * k / 6 + 0.4
    z = (0.5 * rad[:, None]) * torch.exp(1j * ang.to(torch.complex128))[None]
    z = z.expand(M, 6).clone()
    dp = pc[:, 1:] * torch.arange(1, 7, dtype=torch.float64, device=p.device)
    eye = torch.eye(6, dtype=torch.bool, device=p.device)
    for _ in range(iters):
        f = pc[:, 6:7].expand(M, 6)
        for i in range(5, -1, -1):
            f = f * z + pc[:, i:i + 1]
        d = dp[:, 5:6].expand(M, 6)
        for i in range(4, -1, -1):
            d = d * z + dp[:, i:i + 1]
        ratio = f / torch.where(d == 0, torch.ones_like(d), d)
        diff = z[:, :, None] - z[:, None, :]
        diff = torch.where(eye, torch.ones_like(diff), diff)
        inv = torch.where(eye, torch.zeros_like(diff), 1.0 / diff).sum(-1)
        w = ratio / (1.0 - ratio * inv)
        w = torch.where(torch.isfinite(w.real) & torch.isfinite(w.imag), w, torch.zeros_like(w))
        z = z - w
    return z


def _horner(p, t):
    f = p[..., 6:7].expand_as(t)
    d = torch.zeros_like(t)
    for i in range(5, -1, -1):
        d = d * t + f
        f = f * t + p[..., i:i + 1]
    return f, d


def _cost(t, f1, f2, a, b, c, d):
    qt = c * t + d
    pt = a * t + b
    return t * t / (1.0 + f1 * f1 * t * t) + qt * qt / (pt * pt + f2 * f2 * qt * qt)


def correct_matches(F, x1, x2, use, e1=None, e2=None, chunk_size: int = 16384):
    """Optimal corrections: ``F (B,3,3)`` unit norm, ``x1, x2 (B,N,2)``, ``use (B,N)`` →
    ``c1, c2 (B,N,2)`` and ``ok (B,N)``. float64 throughout."""
    B, N = x1.shape[:2]
    if e1 is None:
        e1, e2 = epipoles_from_fundamental(F, chunk_size)
    e1, e2 = e1[:, None, :], e2[:, None, :]
    X1, Y1 = x1[..., 0], x1[..., 1]
    X2, Y2 = x2[..., 0], x2[..., 1]
    X1 = torch.where(use, X1, 0.0)
    Y1 = torch.where(use, Y1, 0.0)
    X2 = torch.where(use, X2, 0.0)
    Y2 = torch.where(use, Y2, 0.0)
    a1x, a1y = e1[..., 0] - X1 * e1[..., 2], e1[..., 1] - Y1 * e1[..., 2]
    a2x, a2y = e2[..., 0] - X2 * e2[..., 2], e2[..., 1] - Y2 * e2[..., 2]
    n1 = torch.sqrt(a1x * a1x + a1y * a1y)
    n2 = torch.sqrt(a2x * a2x + a2y * a2y)
    en1, en2 = e1.abs().sum(-1), e2.abs().sum(-1)
    ok = use & (n1 > 1e-300) & (n2 > 1e-300) & (n1 >= 1e-13 * en1) & (n2 >= 1e-13 * en2)
    n1 = torch.where(ok, n1, 1.0)
    n2 = torch.where(ok, n2, 1.0)
    e1x, e1y, f1 = a1x / n1, a1y / n1, e1[..., 2] / n1
    e2x, e2y, f2 = a2x / n2, a2y / n2, e2[..., 2] / n2
    Fe = F[:, None]
    g02 = X1 * Fe[..., 0, 0] + Y1 * Fe[..., 0, 1] + Fe[..., 0, 2]
    g12 = X1 * Fe[..., 1, 0] + Y1 * Fe[..., 1, 1] + Fe[..., 1, 2]
    g22 = X1 * Fe[..., 2, 0] + Y1 * Fe[..., 2, 1] + Fe[..., 2, 2]
    h20 = X2 * Fe[..., 0, 0] + Y2 * Fe[..., 1, 0] + Fe[..., 2, 0]
    h21 = X2 * Fe[..., 0, 1] + Y2 * Fe[..., 1, 1] + Fe[..., 2, 1]
    h22 = X2 * g02 + Y2 * g12 + g22
    c1x, c1y = -e1y, e1x
    a = (-e2y * (Fe[..., 0, 0] * c1x + Fe[..., 0, 1] * c1y)
         + e2x * (Fe[..., 1, 0] * c1x + Fe[..., 1, 1] * c1y))
    b = -e2y * g02 + e2x * g12
    c = h20 * c1x + h21 * c1y
    d = h22
    A0 = b * b + f2 * f2 * d * d
    A1 = 2.0 * (a * b + f2 * f2 * c * d)
    A2 = a * a + f2 * f2 * c * c
    K = a * d - b * c
    f12 = f1 * f1
    q0, q1, q2 = b * d, a * d + b * c, a * c
    p = torch.stack([-K * q0, A0 * A0 - K * q1, 2.0 * A0 * A1 - K * (q2 + 2.0 * f12 * q0),
                     A1 * A1 + 2.0 * A0 * A2 - K * 2.0 * f12 * q1,
                     2.0 * A1 * A2 - K * (2.0 * f12 * q2 + f12 * f12 * q0),
                     A2 * A2 - K * f12 * f12 * q1, -K * f12 * f12 * q2], -1)     # (B, N, 7)
    pm = p.abs().amax(-1, keepdim=True)
    good_p = (pm > 0) & torch.isfinite(pm)
    p = torch.where(good_p, p / torch.where(good_p, pm, 1.0), torch.zeros_like(p))
    # a vanishing leading coefficient only adds a huge spurious root (a valid, costly candidate)
    lead = p[..., 6]
    lead = torch.where(lead.abs() < 1e-12, torch.where(lead < 0, -1e-12, 1e-12), lead)
    p = torch.cat([p[..., :6], lead[..., None]], -1)
    flat = p.reshape(-1, 7)
    roots = chunked(_aberth, max(chunk_size * 16, 1), flat).reshape(B, N, 6)
    t = roots.real
    for _ in range(3):  # Newton polish of the real parts (guarded)
        f, dv = _horner(p, t)
        step = f / torch.where(dv == 0, 1.0, dv)
        t = torch.where(torch.isfinite(step) & (step.abs() < 1e3 * (1 + t.abs())), t - step, t)
    cost = _cost(t, f1[..., None], f2[..., None], a[..., None], b[..., None], c[..., None],
                 d[..., None])
    cost = torch.where(torch.isfinite(cost) & good_p, cost, torch.full_like(cost, float("inf")))
    best, idx = cost.min(-1)
    tb = torch.gather(t, -1, idx[..., None]).squeeze(-1)
    den = a * a + f2 * f2 * c * c
    inf_ok = (f1 != 0) & (den > 0)
    cinf = torch.where(inf_ok, 1.0 / torch.where(f1 != 0, f12, 1.0) + c * c /
                       torch.where(den > 0, den, 1.0), torch.full_like(f1, float("inf")))
    use_inf = cinf <= best
    ok = ok & torch.isfinite(torch.minimum(best, cinf))
    pt, qt = a * tb + b, c * tb + d
    Xa = torch.where(use_inf, f1, tb * tb * f1)
    Ya = torch.where(use_inf, torch.zeros_like(tb), tb)
    Za = torch.where(use_inf, f12, tb * tb * f12 + 1.0)
    Xb = torch.where(use_inf, f2 * c * c, f2 * qt * qt)
    Yb = torch.where(use_inf, -a * c, -pt * qt)
    Zb = torch.where(use_inf, f2 * f2 * c * c + a * a, f2 * f2 * qt * qt + pt * pt)
    ok = ok & (Za != 0) & (Zb != 0)
    Za = torch.where(Za != 0, Za, 1.0)
    Zb = torch.where(Zb != 0, Zb, 1.0)
    c1 = torch.stack([(e1x * Xa - e1y * Ya) / Za + X1, (e1y * Xa + e1x * Ya) / Za + Y1], -1)
    c2 = torch.stack([(e2x * Xb - e2y * Yb) / Zb + X2, (e2y * Xb + e2x * Yb) / Zb + Y2], -1)
    ok = ok & torch.isfinite(c1).all(-1) & torch.isfinite(c2).all(-1)
    c1 = torch.where(ok[..., None], c1, torch.zeros_like(c1))
    c2 = torch.where(ok[..., None], c2, torch.zeros_like(c2))
    return c1, c2, ok
