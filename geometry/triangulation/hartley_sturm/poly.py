"""Hartley–Sturm optimal correction of two-view correspondences (private Numba kernels).

For one correspondence ``(x1, x2)`` and fundamental matrix ``F`` (``x2ᵀ F x1 = 0``), both images
are translated so the points sit at the origin and rotated so the epipoles lie on the x axis at
``(1, 0, f1)`` and ``(1, 0, f2)`` (Hartley & Zisserman, Multiple View Geometry, 2nd ed., §12.5).
The pencil of epipolar lines is parameterised by ``t``; the squared distance of the two points
from a corresponding pair of lines is

    s(t) = t² / (1 + f1² t²) + (c t + d)² / ((a t + b)² + f2² (c t + d)²)

and its stationary points are the real roots of the degree-6 polynomial

    g(t) = t ((a t + b)² + f2² (c t + d)²)² − (a d − b c) (1 + f1² t²)² (a t + b)(c t + d).

Every ``t`` cheaper than a feasible cost ``U`` has ``t² / (1 + f1² t²) <= U``, so only
``|t| <= L = sqrt(U / (1 − f1² U))`` needs searching. Certified fast path: ``U`` comes from two
Newton steps on ``g`` from ``t = 0``; when ``|g'(0)| L > Σ_{k≥2} k |p_k| L^k``, ``g`` is strictly
monotone on ``[-L, L]``, so its one root there (bracketed Newton) is the only finite candidate.
Otherwise every real root in the interval is found (``geometry.triangulation.hartley_sturm.roots``: Fujiwara-scaled,
recursive derivative root isolation, bracketed Laguerre/Newton). Only sign changes of ``g``
from − to + can be minima of ``s``; they, ``t = 0`` and ``t = ∞`` are the candidates, so the
result is the global optimum either way. The corrected points are the feet of the
perpendiculars from the origin to the winning pair of lines, mapped back to pixels.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .roots import real_sign_roots
from .._dlt_kernels import camera_center_h, sym4_eig_min


@njit(cache=True)
def _cost(t, f1, f2, a, b, c, d):
    p = a * t + b
    q = c * t + d
    den = p * p + f2 * f2 * q * q
    if den <= 0.0:
        return np.inf
    return t * t / (1.0 + f1 * f1 * t * t) + q * q / den


@njit(cache=True)
def epipoles(F, e1, e2, S, V):
    """Unit right (``F e1 = 0``) and left (``e2ᵀ F = 0``) null vectors of ``F (3,3)`` (smallest
    singular vectors, so a rank-3 ``F`` works too)."""
    tr = 0.0
    for i in range(3):
        for j in range(3):
            tr += F[i, j] * F[i, j]
    for side in range(2):
        for i in range(4):
            for j in range(4):
                S[i, j] = 0.0
        for i in range(3):
            for j in range(3):
                acc = 0.0
                for k in range(3):
                    acc += F[k, i] * F[k, j] if side == 0 else F[i, k] * F[j, k]
                S[i, j] = acc
        S[3, 3] = 2.0 * tr + 1.0
        i0, _, _, _ = sym4_eig_min(S, V)
        out = e1 if side == 0 else e2
        for k in range(3):
            out[k] = V[k, i0]


@njit(cache=True, inline="always")
def _g(p, t):
    """Value and derivative of the degree-6 ``p`` (ascending) at ``t``."""
    f = p[6]
    d = 0.0
    for i in range(5, -1, -1):
        d = d * t + f
        f = f * t + p[i]
    return f, d


@njit(cache=True)
def _monotone_root(p, lo, hi, glo, x):
    """The root of ``p`` in ``(lo, hi)`` where it is strictly monotone and changes sign (``glo``
    the value at ``lo``): Newton from ``x``, bisection whenever a step leaves the bracket."""
    neg_lo = glo < 0.0
    if not (lo < x < hi):
        x = 0.5 * (lo + hi)
    scale = max(abs(lo), abs(hi))
    for _ in range(200):
        f, d = _g(p, x)
        if f == 0.0:
            return x
        if (f < 0.0) == neg_lo:
            lo = x
        else:
            hi = x
        step = f / d if d != 0.0 else np.inf
        xn = x - step
        if abs(step) <= 4e-16 * abs(x) or abs(step) <= 1e-20 * scale:
            return xn if lo <= xn <= hi else x
        if not (lo < xn < hi):
            xn = 0.5 * (lo + hi)
            if not (lo < xn < hi):
                return x
        x = xn
    return x


@njit(cache=True)
def hs_scratch():
    """The scratch arrays :func:`hs_correct` takes: ``(p (7,), D (7, 7), R (7, 7), cnt (7,) int,
    roots (7,), out (4,))`` — allocate once per parallel chunk, reuse for every point."""
    return (np.empty(7), np.empty((7, 7)), np.empty((7, 7)), np.empty(7, dtype=np.int64),
            np.empty(7), np.empty(4))


@njit(cache=True)
def hs_correct(F, e1, e2, x1, y1, x2, y2, p, D, R, cnt, roots, out):
    """Optimally correct one correspondence; corrected ``(u1, v1, u2, v2)`` go to ``out``.
    Returns False when the pair is degenerate (a point on its epipole, no finite candidate)."""
    return hs_correct_impl(F, e1, e2, x1, y1, x2, y2, p, D, R, cnt, roots, out, True)


@njit(cache=True)
def hs_correct_impl(F, e1, e2, x1, y1, x2, y2, p, D, R, cnt, roots, out, fast):
    """:func:`hs_correct`; ``fast=False`` skips the certified interval (always the full root
    search, kept for tests)."""
    # epipoles in the translated frames, normalised so that ex² + ey² = 1
    a1x = e1[0] - x1 * e1[2]
    a1y = e1[1] - y1 * e1[2]
    n1 = np.sqrt(a1x * a1x + a1y * a1y)
    a2x = e2[0] - x2 * e2[2]
    a2y = e2[1] - y2 * e2[2]
    n2 = np.sqrt(a2x * a2x + a2y * a2y)
    en1 = abs(e1[0]) + abs(e1[1]) + abs(e1[2])
    en2 = abs(e2[0]) + abs(e2[1]) + abs(e2[2])
    if not (n1 > 1e-300) or not (n2 > 1e-300) or n1 < 1e-13 * en1 or n2 < 1e-13 * en2:
        return False
    e1x, e1y, f1 = a1x / n1, a1y / n1, e1[2] / n1
    e2x, e2y, f2 = a2x / n2, a2y / n2, e2[2] / n2
    # F' = T2^-T F T1^-1: column 2 and row 2 absorb the translations
    g02 = x1 * F[0, 0] + y1 * F[0, 1] + F[0, 2]
    g12 = x1 * F[1, 0] + y1 * F[1, 1] + F[1, 2]
    g22 = x1 * F[2, 0] + y1 * F[2, 1] + F[2, 2]
    h20 = x2 * F[0, 0] + y2 * F[1, 0] + F[2, 0]
    h21 = x2 * F[0, 1] + y2 * F[1, 1] + F[2, 1]
    h22 = x2 * g02 + y2 * g12 + g22
    # F'' = R2 F' R1ᵀ entries a = F''[1,1], b = F''[1,2], c = F''[2,1], d = F''[2,2]
    c1x, c1y = -e1y, e1x
    a = (-e2y * (F[0, 0] * c1x + F[0, 1] * c1y) + e2x * (F[1, 0] * c1x + F[1, 1] * c1y))
    b = -e2y * g02 + e2x * g12
    c = h20 * c1x + h21 * c1y
    d = h22
    # g(t) coefficients
    A0 = b * b + f2 * f2 * d * d
    A1 = 2.0 * (a * b + f2 * f2 * c * d)
    A2 = a * a + f2 * f2 * c * c
    K = a * d - b * c
    f12 = f1 * f1
    q0, q1, q2 = b * d, a * d + b * c, a * c
    p[0] = -K * q0
    p[1] = A0 * A0 - K * q1
    p[2] = 2.0 * A0 * A1 - K * (q2 + 2.0 * f12 * q0)
    p[3] = A1 * A1 + 2.0 * A0 * A2 - K * 2.0 * f12 * q1
    p[4] = 2.0 * A1 * A2 - K * (2.0 * f12 * q2 + f12 * f12 * q0)
    p[5] = A2 * A2 - K * f12 * f12 * q1
    p[6] = -K * f12 * f12 * q2
    best = np.inf
    tbest = 0.0
    inf_best = False
    if f1 != 0.0:
        den = a * a + f2 * f2 * c * c
        if den > 0.0:
            best = 1.0 / f12 + c * c / den
            inf_best = True
    # Any t cheaper than U = min(s(0), s(∞)) has t² / (1 + f1² t²) <= U, so when f1² U < 1
    # only |t| <= sqrt(U / (1 − f1² U)) needs searching (usually a tiny interval: few roots).
    s0 = _cost(0.0, f1, f2, a, b, c, d)
    if s0 < best:
        best, tbest, inf_best = s0, 0.0, False
    # s'(t) = 2 g(t) / ((1 + f1² t²)² A(t)²): minima of s are where g rises through zero
    done = not (best > 0.0)
    U = best
    if fast and not done:
        # Certified fast path. Two Newton steps on g from t = 0 usually land next to the
        # nearest minimum: its cost lowers the bound U, hence the interval |t| <= L that must
        # hold the global minimum. If |g'(t) - g'(0)| <= sum_k k |p_k| L^(k-1) < |g'(0)| there,
        # g is strictly monotone on [-L, L]: at most one stationary point, found by bracketed
        # Newton. Otherwise the full search below runs (same bound, every root).
        tn = 0.0
        for _ in range(2):
            gv, dv = _g(p, tn)
            if not (dv > 0.0):
                break
            tn -= gv / dv
        # tn only bounds the search: the candidates stay exact roots, 0 and infinity
        U = min(best, _cost(tn, f1, f2, a, b, c, d))
        if f12 * U < 1.0:
            L = np.sqrt(U / (1.0 - f12 * U)) * (1.0 + 1e-9) + 1e-300
            q1 = abs(p[1]) * L
            lk = L
            rest = 0.0
            for k in range(2, 7):
                lk *= L
                rest += k * abs(p[k]) * lk
            if q1 > rest * (1.0 + 1e-9) and q1 < np.inf:
                done = True
                if p[1] > 0.0:
                    glo, _ = _g(p, -L)
                    ghi, _ = _g(p, L)
                    t = np.nan
                    if glo < 0.0 < ghi:
                        t = _monotone_root(p, -L, L, glo, tn)
                    elif glo == 0.0:
                        t = -L
                    elif ghi == 0.0:
                        t = L
                    if t == t:
                        s = _cost(t, f1, f2, a, b, c, d)
                        if s < best:
                            best, tbest, inf_best = s, t, False
    nr = 0
    if not done:
        U = min(U, best)
        limit = np.inf
        if f12 * U < 1.0:
            limit = np.sqrt(U / (1.0 - f12 * U)) * (1.0 + 1e-9) + 1e-300
        nr = real_sign_roots(p, 1, limit, D, R, cnt, roots)
    for j in range(nr):
        t = roots[j]
        s = _cost(t, f1, f2, a, b, c, d)
        if s < best:
            best, tbest, inf_best = s, t, False
    if not np.isfinite(best):
        return False
    if inf_best:
        X1, Y1, Z1 = f1, 0.0, f12
        X2, Y2, Z2 = f2 * c * c, -a * c, f2 * f2 * c * c + a * a
    else:
        t = tbest
        pt = a * t + b
        qt = c * t + d
        X1, Y1, Z1 = t * t * f1, t, t * t * f12 + 1.0
        X2, Y2, Z2 = f2 * qt * qt, -pt * qt, f2 * f2 * qt * qt + pt * pt
    if Z1 == 0.0 or Z2 == 0.0:
        return False
    out[0] = (e1x * X1 - e1y * Y1) / Z1 + x1
    out[1] = (e1y * X1 + e1x * Y1) / Z1 + y1
    out[2] = (e2x * X2 - e2y * Y2) / Z2 + x2
    out[3] = (e2y * X2 + e2x * Y2) / Z2 + y2
    for k in range(4):
        if not np.isfinite(out[k]):
            return False
    return True


@njit(cache=True)
def _pair_minors(A, r0, r1, out):
    """The six 2x2 minors of rows ``r0, r1`` of the 3x4 ``A`` (Laplace order)."""
    out[0] = A[r0, 0] * A[r1, 1] - A[r1, 0] * A[r0, 1]
    out[1] = A[r0, 0] * A[r1, 2] - A[r1, 0] * A[r0, 2]
    out[2] = A[r0, 0] * A[r1, 3] - A[r1, 0] * A[r0, 3]
    out[3] = A[r0, 1] * A[r1, 2] - A[r1, 1] * A[r0, 2]
    out[4] = A[r0, 1] * A[r1, 3] - A[r1, 1] * A[r0, 3]
    out[5] = A[r0, 2] * A[r1, 3] - A[r1, 2] * A[r0, 3]


@njit(cache=True)
def fundamental_from_projections(P1, P2, F):
    """``F (3,3)`` with ``x2ᵀ F x1 = 0`` from two 3x4 cameras: ``F[j, i] = (−1)^(i+j)
    det[P1 without row i; P2 without row j]`` (Hartley & Zisserman eq. 17.3), unit Frobenius
    norm; all zeros when the centres coincide."""
    s = np.empty((3, 6))
    c = np.empty((3, 6))
    for i in range(3):
        r0 = 1 if i == 0 else 0
        r1 = 1 if i == 2 else 2
        _pair_minors(P1, r0, r1, s[i])
        _pair_minors(P2, r0, r1, c[i])
    nrm = 0.0
    for i in range(3):
        for j in range(3):
            a = s[i]
            b = c[j]
            det = (a[0] * b[5] - a[1] * b[4] + a[2] * b[3] + a[3] * b[2] - a[4] * b[1]
                   + a[5] * b[0])
            F[j, i] = det if (i + j) % 2 == 0 else -det
            nrm += det * det
    nrm = np.sqrt(nrm)
    if nrm > 0.0:
        for i in range(3):
            for j in range(3):
                F[i, j] /= nrm


@njit(cache=True, parallel=True)
def fundamentals_kernel(P1, P2, F):
    """Batched :func:`fundamental_from_projections`: ``P1, P2 (B,3,4)`` → ``F (B,3,3)``."""
    for b in prange(P1.shape[0]):
        fundamental_from_projections(P1[b], P2[b], F[b])


@njit(cache=True, parallel=True)
def epipoles_kernel(F, P1, P2, from_cameras, E1, E2):
    """Per problem: epipoles ``E1 = P1 C2``, ``E2 = P2 C1`` (exact, from the camera centres)
    when ``from_cameras``, else the smallest singular vectors of ``F``; unit norm."""
    for b in prange(F.shape[0]):
        if from_cameras:
            c = np.empty(4)
            camera_center_h(P2[b], c)
            for side in range(2):
                if side == 1:
                    camera_center_h(P1[b], c)
                A = P1[b] if side == 0 else P2[b]
                out = E1[b] if side == 0 else E2[b]
                nrm = 0.0
                for i in range(3):
                    out[i] = A[i, 0] * c[0] + A[i, 1] * c[1] + A[i, 2] * c[2] + A[i, 3] * c[3]
                    nrm += out[i] * out[i]
                nrm = np.sqrt(nrm)
                for i in range(3):
                    out[i] = out[i] / nrm if nrm > 0.0 else 0.0
        else:
            S = np.empty((4, 4))
            V = np.empty((4, 4))
            epipoles(F[b], E1[b], E2[b], S, V)


@njit(cache=True, parallel=True)
def hs_kernel(F, E1, E2, x1, x2, use, xc, ok, nchunk, fast=True):
    """Batched correction: ``F (B,3,3)``, epipoles ``E1, E2 (B,3)``, ``x1, x2 (B,N,2)``,
    ``use (B,N)`` → corrected ``xc (B,2,N,2)`` (0 where not ok) and ``ok (B,N)``; the points are
    split into ``nchunk`` parallel chunks; ``fast=False``: always the full root search."""
    B, N = x1.shape[0], x1.shape[1]
    total = B * N
    for chunk in prange(nchunk):
        p, D, R, cnt, roots, out = hs_scratch()
        lo = chunk * total // nchunk
        hi = (chunk + 1) * total // nchunk
        for i in range(lo, hi):
            b = i // N
            n = i - b * N
            good = False
            if use[b, n]:
                good = hs_correct_impl(F[b], E1[b], E2[b], x1[b, n, 0], x1[b, n, 1],
                                       x2[b, n, 0], x2[b, n, 1], p, D, R, cnt, roots, out, fast)
            ok[b, n] = good
            if good:
                xc[b, 0, n, 0], xc[b, 0, n, 1] = out[0], out[1]
                xc[b, 1, n, 0], xc[b, 1, n, 1] = out[2], out[3]
            else:
                xc[b, 0, n, 0], xc[b, 0, n, 1] = 0.0, 0.0
                xc[b, 1, n, 0], xc[b, 1, n, 1] = 0.0, 0.0
