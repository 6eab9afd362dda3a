"""Real roots of the Hartley–Sturm polynomial (private Numba kernels of ``geometry.triangulation.hartley_sturm.poly``).

The variable is scaled by Fujiwara's root bound (or a caller's bound) so every root lies in
``[-1, 1]``, where roots are isolated between the roots of the next derivative (found the same
way, recursively down to the closed-form quadratic) and polished with bracketed Laguerre/Newton
steps started at the secant point. Only sign changes are reported (optionally only rising or
only falling ones).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

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
