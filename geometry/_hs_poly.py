"""Hartley–Sturm optimal correction of two-view correspondences (private Numba kernels).

For one correspondence ``(x1, x2)`` and fundamental matrix ``F`` (``x2ᵀ F x1 = 0``), both images
are translated so the points sit at the origin and rotated so the epipoles lie on the x axis at
``(1, 0, f1)`` and ``(1, 0, f2)`` (Hartley & Zisserman, Multiple View Geometry, 2nd ed., §12.5).
The pencil of epipolar lines is parameterised by ``t``; the squared distance of the two points
from a corresponding pair of lines is

    s(t) = t² / (1 + f1² t²) + (c t + d)² / ((a t + b)² + f2² (c t + d)²)

and its stationary points are the real roots of the degree-6 polynomial

    g(t) = t ((a t + b)² + f2² (c t + d)²)² − (a d − b c) (1 + f1² t²)² (a t + b)(c t + d).

Real roots are found without eigenvalues: ``t`` is scaled by Fujiwara's root bound so every
root lies in ``[-1, 1]``, where roots are isolated between the roots of the next derivative
(found the same way, recursively down to a linear one) and polished with bracketed Newton steps
started at the secant point. Only sign changes of ``g`` can be minima of ``s``; they, and ``t = ∞``,
are the candidates. The corrected points are the feet of the perpendiculars from the origin to
the winning pair of lines, mapped back to pixels.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._tri_kernels import camera_center_h, sym4_eig_min


@njit(cache=True, inline="always")
def _horner(c, r, m, x):
    """Value and derivative at ``x`` of row ``r`` of ``c`` (ascending coefficients, degree
    ``m``); rows are indexed in place because slicing costs more than the evaluation."""
    f = c[r, m]
    d = 0.0
    for i in range(m - 1, -1, -1):
        d = d * x + f
        f = f * x + c[r, i]
    return f, d


@njit(cache=True)
def _split(c, r, m, lo, hi):
    """A bisection point of ``(lo, hi)`` that is scale-aware: 0 when the bracket straddles it,
    the geometric mean when the ends differ by orders of magnitude (an end at 0 is replaced by
    the lower root bound ``|c0| / (|c0| + max |ci|)``)."""
    if lo < 0.0 < hi:
        return 0.0
    if lo == 0.0 or hi == 0.0:
        cm = 0.0
        for i in range(1, m + 1):
            cm = max(cm, abs(c[r, i]))
        low = abs(c[r, 0]) / (abs(c[r, 0]) + cm) if cm > 0.0 else 0.0
        if hi == 0.0:
            if low > 0.0 and -low > lo:
                hi = -low
            else:
                return 0.5 * (lo + hi)
        else:
            if low > 0.0 and low < hi:
                lo = low
            else:
                return 0.5 * (lo + hi)
    a, b = abs(lo), abs(hi)
    if max(a, b) > 8.0 * min(a, b):
        g = np.sqrt(a) * np.sqrt(b)
        return g if lo > 0.0 else -g
    return 0.5 * (lo + hi)


@njit(cache=True, inline="always")
def _horner2(c, r, m, x):
    """Value, first and second derivative of row ``r`` of ``c`` (ascending, degree ``m``)."""
    f = c[r, m]
    d = 0.0
    dd = 0.0
    for i in range(m - 1, -1, -1):
        dd = dd * x + d
        d = d * x + f
        f = f * x + c[r, i]
    return f, d, 2.0 * dd


@njit(cache=True)
def _bracket_root(c, r, m, lo, hi, flo, fhi, tol):
    """Root of the degree-``m`` polynomial in row ``r`` of ``c`` (ascending) in ``(lo, hi)`` where it is
    monotone and changes sign (values ``flo``, ``fhi`` at the ends): from the secant point a
    Laguerre step (it lands near a cluster of roots, where Newton crawls), then Newton steps,
    falling back to a scale-aware bisection when a step leaves the bracket or
    ``|f|`` does not halve; stops when a step is below ``tol`` relative to the root."""
    x = lo - flo * (hi - lo) / (fhi - flo)
    if not (lo < x < hi):
        x = 0.5 * (lo + hi)
    neg_lo = flo < 0.0
    fprev = np.inf
    n = float(m)
    laguerre = True
    for _ in range(300):
        f, d, dd = _horner2(c, r, m, x)
        if f == 0.0:
            return x
        if (f < 0.0) == neg_lo:
            lo = x
        else:
            hi = x
        af = abs(f)
        if laguerre:
            G = d / f
            Hh = G * G - dd / f
            disc = (n - 1.0) * (n * Hh - G * G)
            sq = np.sqrt(disc) if disc > 0.0 else 0.0
            den = G + sq if G >= 0.0 else G - sq
            step = n / den if den != 0.0 else np.inf
        else:
            step = f / d if d != 0.0 else np.inf
        if abs(step) <= tol * abs(x):
            return x - step
        xn = x - step
        laguerre = False
        if not (lo < xn < hi) or af > 0.5 * fprev:
            xn = _split(c, r, m, lo, hi)
            laguerre = True
        fprev = af
        if hi - lo <= tol * max(abs(lo), abs(hi)):
            return xn
        x = xn
    return x


@njit(cache=True)
def unit_sign_roots(p, deg, want, D, R, cnt):
    """Real roots in ``[-1, 1]`` of the degree-``deg`` (2..6) polynomial ``p`` (ascending) where
    it changes sign, ascending, written to ``R[0]``; returns their number. ``want`` > 0 keeps
    only crossings from negative to positive, < 0 only the opposite, 0 both (exact zeros at
    critical points are always kept). Roots of each derivative bracket the roots of the one
    above; the quadratic derivative is solved in closed form. ``D (7, 7)``, ``R (7, 7)`` and
    ``cnt (7,)`` are scratch."""
    for i in range(deg + 1):
        D[0, i] = p[i]
    for k in range(1, deg):
        m = deg - k + 1
        for i in range(m):
            D[k, i] = (i + 1) * D[k - 1, i + 1]
    lvl = deg - 1
    cnt[lvl] = 0
    if D[lvl, 1] != 0.0:
        r = -D[lvl, 0] / D[lvl, 1]
        if -1.0 < r < 1.0:
            R[lvl, 0] = r
            cnt[lvl] = 1
    top = deg - 2
    if deg >= 3:
        # closed-form roots of the quadratic derivative D[deg-2] (stable formula)
        qa, qb, qc = D[top, 2], D[top, 1], D[top, 0]
        nq = 0
        if qa != 0.0:
            disc = qb * qb - 4.0 * qa * qc
            if disc >= 0.0:
                sq = np.sqrt(disc)
                qq = -0.5 * (qb + sq) if qb >= 0.0 else -0.5 * (qb - sq)
                r1 = qq / qa
                r2 = qc / qq if qq != 0.0 else r1
                if r2 < r1:
                    r1, r2 = r2, r1
                if -1.0 < r1 < 1.0:
                    R[top, nq] = r1
                    nq += 1
                if -1.0 < r2 < 1.0 and r2 != r1:
                    R[top, nq] = r2
                    nq += 1
        elif qb != 0.0:
            r1 = -qc / qb
            if -1.0 < r1 < 1.0:
                R[top, 0] = r1
                nq = 1
        cnt[top] = nq
        top -= 1
    for lvl in range(top, -1, -1):
        m = deg - lvl
        tol = 4e-16 if lvl == 0 else 1e-9
        w = want if lvl == 0 else 0
        nr = 0
        lo = -1.0
        flo, _ = _horner(D, lvl, m, lo)
        if flo == 0.0:
            R[lvl, nr] = lo
            nr += 1
        nc = cnt[lvl + 1]
        for j in range(nc + 1):
            hi = R[lvl + 1, j] if j < nc else 1.0
            if hi <= lo:
                continue
            fhi, _ = _horner(D, lvl, m, hi)
            if (flo < 0.0 and fhi > 0.0 and w >= 0) or (flo > 0.0 and fhi < 0.0 and w <= 0):
                R[lvl, nr] = _bracket_root(D, lvl, m, lo, hi, flo, fhi, tol)
                nr += 1
            if fhi == 0.0:
                R[lvl, nr] = hi
                nr += 1
            lo = hi
            flo = fhi
        cnt[lvl] = nr
    return cnt[0]


@njit(cache=True)
def real_sign_roots(p, want, limit, D, R, cnt, roots):
    """The real roots in ``[-limit, limit]`` (``np.inf``: all) where ``p[0..6]`` changes sign
    (``want`` > 0: only from negative to positive, < 0: only the opposite, 0: both) (ascending; leading coefficients
    below ``1e-250`` of the largest count as zero). The variable is scaled by Fujiwara's bound
    so every root lies in ``[-1, 1]`` and the polynomial is made monic.
    Writes them to ``roots`` and returns their number; ``p`` is modified."""
    pm = 0.0
    for i in range(7):
        pm = max(pm, abs(p[i]))
    if not (pm > 0.0) or not np.isfinite(pm):
        return 0
    deg = 6
    while deg > 0 and abs(p[deg]) <= 1e-250 * pm:
        deg -= 1
    if deg == 0:
        return 0
    lead = p[deg]
    if limit < np.inf:
        sigma = limit
    else:
        # Fujiwara: |root| <= 2 max_i |p[deg-i] / lead|^(1/i); each i-th root is bounded
        # above by a power of two from the exponent alone (no pow calls)
        bound = 0.0
        for i in range(1, deg + 1):
            v = abs(p[deg - i] / lead)
            if i == deg:
                v *= 0.5
            if v > 0.0:
                _, e = math.frexp(v)
                v = math.ldexp(1.0, -((-e) // i))
            bound = max(bound, v)
        sigma = 2.0 * bound
    if not (sigma > 0.0) or not np.isfinite(sigma):
        roots[0] = 0.0
        return 1
    # monic in tau = t / sigma: coefficients (p_i / lead) / sigma^(deg - i) (all <= 1 when
    # sigma is the root bound; with a finite limit, roots beyond it are left out)
    sp = 1.0
    for i in range(deg, -1, -1):
        p[i] = p[i] / lead / sp
        sp *= sigma
    if deg == 1:
        if want * p[1] * lead < 0.0:
            return 0
        roots[0] = -p[0] / p[1] * sigma
        return 1
    # making the polynomial monic flips crossings when the leading coefficient is negative
    nr = unit_sign_roots(p, deg, want if lead > 0.0 else -want, D, R, cnt)
    for j in range(nr):
        roots[j] = R[0, j] * sigma
    return nr


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


@njit(cache=True)
def hs_correct(F, e1, e2, x1, y1, x2, y2, p, D, R, cnt, roots, out):
    """Optimally correct one correspondence; corrected ``(u1, v1, u2, v2)`` go to ``out``.
    Returns False when the pair is degenerate (a point on its epipole, no finite candidate)."""
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
    U = best
    limit = np.inf
    if f12 * U < 1.0:
        limit = np.sqrt(U / (1.0 - f12 * U)) * (1.0 + 1e-9) + 1e-300
    # s'(t) = 2 g(t) / ((1 + f1² t²)² A(t)²): minima of s are where g rises through zero
    nr = 0
    if U > 0.0:
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
def hs_kernel(F, E1, E2, x1, x2, use, xc, ok, nchunk):
    """Batched correction: ``F (B,3,3)``, epipoles ``E1, E2 (B,3)``, ``x1, x2 (B,N,2)``,
    ``use (B,N)`` → corrected ``xc (B,2,N,2)`` (0 where not ok) and ``ok (B,N)``; the points are
    split into ``nchunk`` parallel chunks."""
    B, N = x1.shape[0], x1.shape[1]
    total = B * N
    for chunk in prange(nchunk):
        p = np.empty(7)
        D = np.empty((7, 7))
        R = np.empty((7, 7))
        cnt = np.empty(7, dtype=np.int64)
        roots = np.empty(7)
        out = np.empty(4)
        lo = chunk * total // nchunk
        hi = (chunk + 1) * total // nchunk
        for i in range(lo, hi):
            b = i // N
            n = i - b * N
            good = False
            if use[b, n]:
                good = hs_correct(F[b], E1[b], E2[b], x1[b, n, 0], x1[b, n, 1], x2[b, n, 0],
                                  x2[b, n, 1], p, D, R, cnt, roots, out)
            ok[b, n] = good
            if good:
                xc[b, 0, n, 0], xc[b, 0, n, 1] = out[0], out[1]
                xc[b, 1, n, 0], xc[b, 1, n, 1] = out[2], out[3]
            else:
                xc[b, 0, n, 0], xc[b, 0, n, 1] = 0.0, 0.0
                xc[b, 1, n, 0], xc[b, 1, n, 1] = 0.0, 0.0
