"""Fused optimal two-view triangulation kernel behind ``geometry.triangulate_optimal`` (private).

Per point: Hartley–Sturm correction (``geometry.triangulation.hartley_sturm.poly``), the world point where the corrected
rays meet, its reprojection error and depth signs, written straight into the outputs.

Points are processed in blocks of ``LANES``. A first, branch-free pass over a block (so the
compiler can run several points per vector instruction) takes the certified path of
:func:`geometry.triangulation.hartley_sturm.poly.hs_correct_impl` for every point: two Newton steps on ``g`` from
``t = 0`` give a feasible cost ``U``; every ``t`` cheaper than ``U`` lies in ``|t| <= L`` with
``L = sqrt(U / (1 − f1² U))``; when ``|g'(0)| L > Σ_k k |p_k| L^k`` (``k ≥ 2``), ``g`` is strictly
increasing on ``[-L, L]`` and its only root there — the only possible finite minimum — is
polished by bracketed Newton steps and checked for convergence. The candidates are that root,
``t = 0`` and ``t = ∞`` (the global optimum is provably among them). Any point where a
precondition or the certificate fails, or Newton did not converge, is redone by the scalar
:func:`geometry.triangulation.hartley_sturm.poly.hs_correct` (fast path, else every real root of the degree-6 polynomial).

The corrected pair satisfies the epipolar constraint, so the rays meet: the point is ray 1 (the
planes ``P1_0 − u1 P1_2``, ``P1_1 − v1 P1_2``) cut by the plane ``P2ᵀ l'`` of the image-2 line
``l'`` through ``x̂2`` perpendicular to its epipolar line (Hartley & Zisserman §12.5), in the
conditioned world frame of ``geometry.triangulation._dlt_kernels``; a point farther than ``FAR`` rig radii (or
at infinity) is invalid.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .poly import hs_correct, hs_scratch
from .._dlt_kernels import FAR, RANK_EPS

LANES = 64
# per-pair constants, one flat row each (see pair_constants)
_F, _E1, _E2, _EN, _PN, _H, _P, _DS, NCONST = 0, 9, 12, 15, 17, 41, 45, 69, 71
_NJ = dict(cache=True, error_model="numpy")


@njit(forceinline=True, **_NJ)
def _g7(p0, p1, p2, p3, p4, p5, p6, t):
    """Value and derivative of ``p0 + p1 t + … + p6 t⁶``."""
    f = p6
    d = 0.0
    d = d * t + f
    f = f * t + p5
    d = d * t + f
    f = f * t + p4
    d = d * t + f
    f = f * t + p3
    d = d * t + f
    f = f * t + p2
    d = d * t + f
    f = f * t + p1
    d = d * t + f
    f = f * t + p0
    return f, d


@njit(forceinline=True, **_NJ)
def _cost(t, f12, f22, a, b, c, d):
    p = a * t + b
    q = c * t + d
    den = p * p + f22 * q * q
    v = t * t / (1.0 + f12 * t * t) + q * q / den
    return v if den > 0.0 else np.inf


@njit(forceinline=True, **_NJ)
def _lane_correct(C, x1, y1, x2, y2):
    """Branch-free certified correction of one point: ``(ok, u1, v1, u2, v2)``; ``ok`` False
    means "not certified here" (the scalar path decides), not "invalid". ``C``: the pair's
    constants (:func:`pair_constants`)."""
    F00, F01, F02 = C[_F + 0], C[_F + 1], C[_F + 2]
    F10, F11, F12 = C[_F + 3], C[_F + 4], C[_F + 5]
    F20, F21, F22 = C[_F + 6], C[_F + 7], C[_F + 8]
    a1x = C[_E1] - x1 * C[_E1 + 2]
    a1y = C[_E1 + 1] - y1 * C[_E1 + 2]
    a2x = C[_E2] - x2 * C[_E2 + 2]
    a2y = C[_E2 + 1] - y2 * C[_E2 + 2]
    n1 = np.sqrt(a1x * a1x + a1y * a1y)
    n2 = np.sqrt(a2x * a2x + a2y * a2y)
    ok = (n1 > 1e-300) & (n2 > 1e-300) & (n1 >= 1e-13 * C[_EN]) & (n2 >= 1e-13 * C[_EN + 1])
    r1 = 1.0 / n1
    r2 = 1.0 / n2
    e1x, e1y, f1 = a1x * r1, a1y * r1, C[_E1 + 2] * r1
    e2x, e2y, f2 = a2x * r2, a2y * r2, C[_E2 + 2] * r2
    g02 = x1 * F00 + y1 * F01 + F02
    g12 = x1 * F10 + y1 * F11 + F12
    g22 = x1 * F20 + y1 * F21 + F22
    h20 = x2 * F00 + y2 * F10 + F20
    h21 = x2 * F01 + y2 * F11 + F21
    c1x, c1y = -e1y, e1x
    a = (-e2y * (F00 * c1x + F01 * c1y) + e2x * (F10 * c1x + F11 * c1y))
    b = -e2y * g02 + e2x * g12
    c = h20 * c1x + h21 * c1y
    d = x2 * g02 + y2 * g12 + g22
    f12 = f1 * f1
    f22 = f2 * f2
    A0 = b * b + f22 * d * d
    A1 = 2.0 * (a * b + f22 * c * d)
    A2 = a * a + f22 * c * c
    K = a * d - b * c
    q0, q1, q2 = b * d, a * d + b * c, a * c
    f14 = f12 * f12
    p0 = -K * q0
    p1 = A0 * A0 - K * q1
    p2 = 2.0 * A0 * A1 - K * (q2 + 2.0 * f12 * q0)
    p3 = A1 * A1 + 2.0 * A0 * A2 - K * 2.0 * f12 * q1
    p4 = 2.0 * A1 * A2 - K * (2.0 * f12 * q2 + f14 * q0)
    p5 = A2 * A2 - K * f14 * q1
    p6 = -K * f14 * q2
    # candidates t = ∞ and t = 0 (as in hs_correct_impl)
    sinf = 1.0 / f12 + c * c / A2
    sinf = sinf if (f1 != 0.0) & (A2 > 0.0) else np.inf
    s0 = d * d / A0
    s0 = s0 if A0 > 0.0 else np.inf
    best = min(s0, sinf)
    ok = ok & (best > 0.0)
    # two Newton steps from 0: a feasible cost U bounds the search interval
    tn = -p0 / p1
    tn = tn if p1 > 0.0 else 0.0
    gv, dv = _g7(p0, p1, p2, p3, p4, p5, p6, tn)
    tn2 = tn - gv / dv
    tn = tn2 if dv > 0.0 else tn
    U = min(best, _cost(tn, f12, f22, a, b, c, d))
    ok = ok & (f12 * U < 1.0) & (p1 > 0.0)
    L = np.sqrt(U / (1.0 - f12 * U)) * (1.0 + 1e-9) + 1e-300
    rest = L * L * (2.0 * abs(p2) + L * (3.0 * abs(p3) + L * (4.0 * abs(p4) + L * (
        5.0 * abs(p5) + L * 6.0 * abs(p6)))))
    q1a = p1 * L
    ok = ok & (q1a > rest * (1.0 + 1e-9)) & (q1a < np.inf)
    glo, _ = _g7(p0, p1, p2, p3, p4, p5, p6, -L)
    ghi, _ = _g7(p0, p1, p2, p3, p4, p5, p6, L)
    ok = ok & (glo < 0.0) & (ghi > 0.0)
    # bracketed Newton on the strictly increasing g in (-L, L)
    lo = -L
    hi = L
    x = tn if (-L < tn) & (tn < L) else 0.0
    for _ in range(3):
        f, dd = _g7(p0, p1, p2, p3, p4, p5, p6, x)
        lo = x if f < 0.0 else lo
        hi = x if f > 0.0 else hi
        xn = x - f / dd
        x = xn if (lo < xn) & (xn < hi) else 0.5 * (lo + hi)
    f, dd = _g7(p0, p1, p2, p3, p4, p5, p6, x)
    step = f / dd
    ok = ok & (abs(step) <= 1e-14 * L)
    x = x - step
    sr = _cost(x, f12, f22, a, b, c, d)
    root = sr < best
    use_inf = (sinf < s0) & ~root
    t = x if root else 0.0
    pt = a * t + b
    qt = c * t + d
    X1 = f1 if use_inf else t * t * f1
    Y1 = 0.0 if use_inf else t
    Z1 = f12 if use_inf else t * t * f12 + 1.0
    X2 = f2 * c * c if use_inf else f2 * qt * qt
    Y2 = -a * c if use_inf else -pt * qt
    Z2 = f22 * c * c + a * a if use_inf else f22 * qt * qt + pt * pt
    iz1 = 1.0 / Z1
    iz2 = 1.0 / Z2
    u1 = (e1x * X1 - e1y * Y1) * iz1 + x1
    v1 = (e1y * X1 + e1x * Y1) * iz1 + y1
    u2 = (e2x * X2 - e2y * Y2) * iz2 + x2
    v2 = (e2y * X2 + e2x * Y2) * iz2 + y2
    ok = ok & (abs(u1) + abs(v1) + abs(u2) + abs(v2) < np.inf)
    return ok, u1, v1, u2, v2


@njit(forceinline=True, **_NJ)
def _plane(C, o, r, x):
    """Row ``r`` minus ``x`` times row 2 of the 3x4 camera at ``C[o:o + 12]``."""
    return (C[o + 4 * r] - x * C[o + 8], C[o + 4 * r + 1] - x * C[o + 9],
            C[o + 4 * r + 2] - x * C[o + 10], C[o + 4 * r + 3] - x * C[o + 11])


@njit(forceinline=True, **_NJ)
def _meet(C, u1, v1, u2, v2, o1, w1, o2, w2):
    """World point where the rays of the corrected pair ``(u1, v1), (u2, v2)`` meet, its RMS
    reprojection error against the observations ``(o1, w1), (o2, w2)`` and depth signs:
    ``(ok, X, Y, Z, err, positive)``. Not ok when the rays are (nearly) parallel by the
    criterion of the DLT (``_tri_kernels.solve_normal``) or the point is at infinity."""
    l0 = C[_F + 0] * u1 + C[_F + 1] * v1 + C[_F + 2]
    l1 = C[_F + 3] * u1 + C[_F + 4] * v1 + C[_F + 5]
    m0, m1, m2 = -l1, l0, l1 * u2 - l0 * v2
    q = _PN + 12
    pi0 = m0 * C[q + 0] + m1 * C[q + 4] + m2 * C[q + 8]
    pi1 = m0 * C[q + 1] + m1 * C[q + 5] + m2 * C[q + 9]
    pi2 = m0 * C[q + 2] + m1 * C[q + 6] + m2 * C[q + 10]
    pi3 = m0 * C[q + 3] + m1 * C[q + 7] + m2 * C[q + 11]
    A0, A1, A2, A3 = _plane(C, _PN, 0, u1)
    B0, B1, B2, B3 = _plane(C, _PN, 1, v1)
    m01 = A0 * B1 - A1 * B0
    m02 = A0 * B2 - A2 * B0
    m03 = A0 * B3 - A3 * B0
    m12 = A1 * B2 - A2 * B1
    m13 = A1 * B3 - A3 * B1
    m23 = A2 * B3 - A3 * B2
    h0 = pi1 * m23 - pi2 * m13 + pi3 * m12
    h1 = -(pi0 * m23 - pi2 * m03 + pi3 * m02)
    h2 = pi0 * m13 - pi1 * m03 + pi3 * m01
    h3 = -(pi0 * m12 - pi1 * m02 + pi2 * m01)
    ih = 1.0 / h3
    Xc = h0 * ih
    Yc = h1 * ih
    Zc = h2 * ih
    ok = (h3 != 0.0) & (abs(Xc) + abs(Yc) + abs(Zc) < FAR)
    # the DLT's conditioning test on the four unit-normal planes
    C0, C1, C2, _ = _plane(C, q, 0, u2)
    D0, D1, D2, _ = _plane(C, q, 1, v2)
    wa = A0 * A0 + A1 * A1 + A2 * A2
    wb = B0 * B0 + B1 * B1 + B2 * B2
    wc = C0 * C0 + C1 * C1 + C2 * C2
    wd = D0 * D0 + D1 * D1 + D2 * D2
    wa = 1.0 / wa if wa > 0.0 else 0.0
    wb = 1.0 / wb if wb > 0.0 else 0.0
    wc = 1.0 / wc if wc > 0.0 else 0.0
    wd = 1.0 / wd if wd > 0.0 else 0.0
    n00 = wa * A0 * A0 + wb * B0 * B0 + wc * C0 * C0 + wd * D0 * D0
    n01 = wa * A0 * A1 + wb * B0 * B1 + wc * C0 * C1 + wd * D0 * D1
    n02 = wa * A0 * A2 + wb * B0 * B2 + wc * C0 * C2 + wd * D0 * D2
    n11 = wa * A1 * A1 + wb * B1 * B1 + wc * C1 * C1 + wd * D1 * D1
    n12 = wa * A1 * A2 + wb * B1 * B2 + wc * C1 * C2 + wd * D1 * D2
    n22 = wa * A2 * A2 + wb * B2 * B2 + wc * C2 * C2 + wd * D2 * D2
    det = (n00 * (n11 * n22 - n12 * n12) + n01 * (n02 * n12 - n01 * n22)
           + n02 * (n01 * n12 - n02 * n11))
    tr = n00 + n11 + n22
    ok = ok & (tr > 0.0) & (det > RANK_EPS * tr * tr * tr)
    X = C[_H + 3] * Xc + C[_H]
    Y = C[_H + 3] * Yc + C[_H + 1]
    Z = C[_H + 3] * Zc + C[_H + 2]
    sq = 0.0
    pos = True
    for k in range(2):
        o = _P + 12 * k
        u = C[o + 0] * X + C[o + 1] * Y + C[o + 2] * Z + C[o + 3]
        v = C[o + 4] * X + C[o + 5] * Y + C[o + 6] * Z + C[o + 7]
        z = C[o + 8] * X + C[o + 9] * Y + C[o + 10] * Z + C[o + 11]
        pos = pos & (z * C[_DS + k] > 0.0)
        iz = 1.0 / z
        du = u * iz - (o1 if k == 0 else o2)
        dv = v * iz - (w1 if k == 0 else w2)
        sq += du * du + dv * dv
    ok = ok & (sq < np.inf)
    return ok, X, Y, Z, np.sqrt(0.5 * sq), pos


@njit(cache=True)
def pair_constants(F, E1, E2, Pn, H, P, ds, C):
    """Flat per-pair constants ``C (B, NCONST)`` for the kernel."""
    for b in range(F.shape[0]):
        for i in range(3):
            for j in range(3):
                C[b, _F + 3 * i + j] = F[b, i, j]
            C[b, _E1 + i] = E1[b, i]
            C[b, _E2 + i] = E2[b, i]
        C[b, _EN] = abs(E1[b, 0]) + abs(E1[b, 1]) + abs(E1[b, 2])
        C[b, _EN + 1] = abs(E2[b, 0]) + abs(E2[b, 1]) + abs(E2[b, 2])
        for k in range(2):
            for i in range(3):
                for j in range(4):
                    C[b, _PN + 12 * k + 4 * i + j] = Pn[b, k, i, j]
                    C[b, _P + 12 * k + 4 * i + j] = P[b, k, i, j]
            C[b, _DS + k] = ds[b, k]
        for i in range(4):
            C[b, _H + i] = H[b, i]


@njit(forceinline=True, **_NJ)
def _finite0(v):
    return v if abs(v) < np.inf else 0.0


@njit(forceinline=True, **_NJ)
def _lanes(Cb, W):
    """The branch-free pass over one block: inputs in rows 0-3 of ``W`` (``W[k * LANES + j]``),
    results in rows 4-13 (u1, v1, u2, v2, X, Y, Z, err, ok, positive)."""
    for j in range(LANES):
        xa, ya, xb, yb = W[j], W[LANES + j], W[2 * LANES + j], W[3 * LANES + j]
        ok, u1, v1, u2, v2 = _lane_correct(Cb, xa, ya, xb, yb)
        good, X, Y, Z, e, ps = _meet(Cb, u1, v1, u2, v2, xa, ya, xb, yb)
        W[4 * LANES + j] = u1
        W[5 * LANES + j] = v1
        W[6 * LANES + j] = u2
        W[7 * LANES + j] = v2
        W[8 * LANES + j] = X
        W[9 * LANES + j] = Y
        W[10 * LANES + j] = Z
        W[11 * LANES + j] = e
        W[12 * LANES + j] = 1.0 if ok & good else 0.0
        W[13 * LANES + j] = 1.0 if ps else 0.0


@njit(parallel=True, **_NJ)
def optimal_kernel(C, F, E1, E2, x1, x2, use, Xo, c1, c2, valid, err, pos, nchunk):
    """``C (B, NCONST)`` pair constants, ``F (B,3,3)`` and epipoles ``E1, E2 (B,3)`` (for the
    scalar path), ``x1, x2 (B,N,2)``, ``use (B,N)`` → ``Xo (B,N,3)``, corrected ``c1, c2
    (B,N,2)`` (the inputs, NaN as 0, where invalid), ``valid``, RMS ``err``, ``pos`` (B,N)."""
    B, N = x1.shape[0], x1.shape[1]
    nbpb = (N + LANES - 1) // LANES
    nblk = B * nbpb
    for ch in prange(nchunk):
        W = np.zeros(14 * LANES)
        p, D, R, cnt, roots, out = hs_scratch()
        for blk in range(ch * nblk // nchunk, (ch + 1) * nblk // nchunk):
            b = blk // nbpb
            n0 = (blk - b * nbpb) * LANES
            nl = min(LANES, N - n0)
            Cb = C[b]
            for j in range(LANES):
                n = n0 + min(j, nl - 1)
                W[j] = x1[b, n, 0]
                W[LANES + j] = x1[b, n, 1]
                W[2 * LANES + j] = x2[b, n, 0]
                W[3 * LANES + j] = x2[b, n, 1]
            _lanes(Cb, W)
            for j in range(nl):
                n = n0 + j
                xa, ya, xb, yb = W[j], W[LANES + j], W[2 * LANES + j], W[3 * LANES + j]
                fin = use[b, n] and abs(xa) + abs(ya) + abs(xb) + abs(yb) < np.inf
                good = fin and W[12 * LANES + j] != 0.0
                if good:
                    Xo[b, n, 0] = W[8 * LANES + j]
                    Xo[b, n, 1] = W[9 * LANES + j]
                    Xo[b, n, 2] = W[10 * LANES + j]
                    c1[b, n, 0] = W[4 * LANES + j]
                    c1[b, n, 1] = W[5 * LANES + j]
                    c2[b, n, 0] = W[6 * LANES + j]
                    c2[b, n, 1] = W[7 * LANES + j]
                    err[b, n] = W[11 * LANES + j]
                    pos[b, n] = W[13 * LANES + j] != 0.0
                    valid[b, n] = True
                    continue
                X, Y, Z, e, ps = 0.0, 0.0, 0.0, 0.0, False
                if fin and hs_correct(F[b], E1[b], E2[b], xa, ya, xb, yb, p, D, R, cnt,
                                            roots, out):
                    good, X, Y, Z, e, ps = _meet(Cb, out[0], out[1], out[2], out[3], xa, ya,
                                                 xb, yb)
                if good:
                    Xo[b, n, 0], Xo[b, n, 1], Xo[b, n, 2] = X, Y, Z
                    c1[b, n, 0], c1[b, n, 1] = out[0], out[1]
                    c2[b, n, 0], c2[b, n, 1] = out[2], out[3]
                    err[b, n] = e
                    pos[b, n] = ps
                else:
                    Xo[b, n, 0], Xo[b, n, 1], Xo[b, n, 2] = 0.0, 0.0, 0.0
                    c1[b, n, 0], c1[b, n, 1] = _finite0(xa), _finite0(ya)
                    c2[b, n, 0], c2[b, n, 1] = _finite0(xb), _finite0(yb)
                    err[b, n] = 0.0
                    pos[b, n] = False
                valid[b, n] = good
