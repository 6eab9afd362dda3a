"""Numba kernels of the fundamental-matrix estimator (one problem each; no allocation).

Data layout: one problem's valid correspondences, Hartley-normalised with a *common* scale ``s``
for both images and per-image centroids, as ``q (n, 4) = [u1, v1, u2, v2]``. With a common scale
the Sampson distance in normalised units is exactly ``s`` times the pixel distance, so RANSAC
scores in normalised units with the threshold ``s · threshold``. Models are row-major 3×3
matrices stored as ``(9,)`` vectors with ``x2ᵀ F x1 = 0``.

Scratch: ``ws`` is a float64 vector of at least :data:`WS_SIZE`, ``S`` a ``(3, 9, 9)`` array.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..common.nb_linalg import cholesky_factor, cholesky_subst, enforce_rank2, smallest_eigvec_inverse
from ._seven_point import fit_seven_point, solve_cubic  # noqa: F401  (part of this estimator)

WS_SIZE = 256


@njit(cache=True)
def normalize_common(x1, x2, idx, n, q):
    """Fill ``q[:n]`` with the normalised points ``idx[:n]`` of ``x1, x2 (N, 2)``.

    Returns ``(s, c1x, c1y, c2x, c2y)``: ``u = s (x − c)``; ``s`` makes the mean distance to the
    centroid √2 (averaged over both images); ``s = 0`` marks coincident points.
    """
    c1x = c1y = c2x = c2y = 0.0
    for k in range(n):
        i = idx[k]
        c1x += x1[i, 0]
        c1y += x1[i, 1]
        c2x += x2[i, 0]
        c2y += x2[i, 1]
    c1x /= n
    c1y /= n
    c2x /= n
    c2y /= n
    d = 0.0
    for k in range(n):
        i = idx[k]
        d += np.sqrt((x1[i, 0] - c1x) ** 2 + (x1[i, 1] - c1y) ** 2)
        d += np.sqrt((x2[i, 0] - c2x) ** 2 + (x2[i, 1] - c2y) ** 2)
    d /= 2 * n
    if not d > 1e-12 or not np.isfinite(d):
        return 0.0, c1x, c1y, c2x, c2y
    s = np.sqrt(2.0) / d
    for k in range(n):
        i = idx[k]
        q[k, 0] = s * (x1[i, 0] - c1x)
        q[k, 1] = s * (x1[i, 1] - c1y)
        q[k, 2] = s * (x2[i, 0] - c2x)
        q[k, 3] = s * (x2[i, 1] - c2y)
    return s, c1x, c1y, c2x, c2y


@njit(cache=True)
def denormalize(fn, s, c1x, c1y, c2x, c2y, F):
    """``F = T2ᵀ Fn T1`` with ``T = [[s,0,−s cx],[0,s,−s cy],[0,0,1]]``; unit norm, the entry of
    largest magnitude positive. ``fn (9,)`` → ``F (3, 3)``."""
    # Fn T1
    G = np.empty((3, 3))
    for r in range(3):
        a, b, c = fn[3 * r], fn[3 * r + 1], fn[3 * r + 2]
        G[r, 0] = a * s
        G[r, 1] = b * s
        G[r, 2] = c - a * s * c1x - b * s * c1y
    for j in range(3):
        F[0, j] = s * G[0, j]
        F[1, j] = s * G[1, j]
        F[2, j] = G[2, j] - s * c2x * G[0, j] - s * c2y * G[1, j]
    nrm = 0.0
    big = 0.0
    for i in range(3):
        for j in range(3):
            nrm += F[i, j] * F[i, j]
            if abs(F[i, j]) > abs(big):
                big = F[i, j]
    nrm = np.sqrt(nrm)
    if big < 0:
        nrm = -nrm
    for i in range(3):
        for j in range(3):
            F[i, j] /= nrm


@njit(cache=True)
def sampson_sq(f, q, i):
    """Squared Sampson distance of point ``i`` of ``q`` to the model ``f (9,)``."""
    x1 = q[i, 0]
    y1 = q[i, 1]
    x2 = q[i, 2]
    y2 = q[i, 3]
    a0 = f[0] * x1 + f[1] * y1 + f[2]
    a1 = f[3] * x1 + f[4] * y1 + f[5]
    a2 = f[6] * x1 + f[7] * y1 + f[8]
    b0 = f[0] * x2 + f[3] * y2 + f[6]
    b1 = f[1] * x2 + f[4] * y2 + f[7]
    e = x2 * a0 + y2 * a1 + a2
    d = a0 * a0 + a1 * a1 + b0 * b0 + b1 * b1
    if d > 0.0:
        return e * e / d
    return np.inf


@njit(cache=True)
def _row(q, i, r):
    x1 = q[i, 0]
    y1 = q[i, 1]
    x2 = q[i, 2]
    y2 = q[i, 3]
    r[0] = x2 * x1
    r[1] = x2 * y1
    r[2] = x2
    r[3] = y2 * x1
    r[4] = y2 * y1
    r[5] = y2
    r[6] = x1
    r[7] = y1
    r[8] = 1.0


@njit(cache=True)
def fit_eight_point(q, idx, m, f, ws, S):
    """Least-squares (8-point) F on ``q[idx[:m]]`` (``m`` ≥ 8), warm-started from ``f (9,)``.

    The smallest eigenvector of ``AᵀA`` is found by inverse iteration from ``f`` (cheap and exact
    when the spectrum is separated), then projected to rank 2. Writes ``f``; False on failure.
    """
    M = S[0]
    for a in range(9):
        for b in range(9):
            M[a, b] = 0.0
    r = ws[100:109]
    for k in range(m):
        _row(q, idx[k], r)
        for a in range(9):
            ra = r[a]
            for b in range(a, 9):
                M[a, b] += ra * r[b]
    for a in range(9):
        for b in range(a):
            M[a, b] = M[b, a]
    v = ws[110:119]
    for a in range(9):
        v[a] = f[a]
    if not smallest_eigvec_inverse(M, 9, v, 3, S[1], S[2], ws[120:129]):
        return False
    for a in range(9):
        f[a] = v[a]
    return enforce_rank2(f, ws[130:133])


@njit(cache=True)
def _sampson_cost(f, q, idx, m):
    c = 0.0
    for k in range(m):
        c += sampson_sq(f, q, idx[k])
    return c


@njit(cache=True)
def refine_sampson(q, idx, m, f, ws, S, iterations=4):
    """Levenberg–Marquardt on the summed squared Sampson distance over ``q[idx[:m]]``.

    9-parameter update with the scale gauge fixed by ``f fᵀ`` and rank 2 re-imposed after each
    step (accepted only if the cost drops). Writes ``f``; returns True if it stayed valid.
    """
    JJ = S[0]
    A = S[1]
    L = S[2]
    g = ws[140:149]
    d = ws[150:159]
    fo = ws[160:169]
    J = ws[170:179]
    v3 = ws[180:183]
    cost = _sampson_cost(f, q, idx, m)
    if not np.isfinite(cost):
        return False
    lam = 1e-4
    for _ in range(iterations):
        for a in range(9):
            g[a] = 0.0
            for b in range(9):
                JJ[a, b] = 0.0
        for k in range(m):
            i = idx[k]
            x1 = q[i, 0]
            y1 = q[i, 1]
            x2 = q[i, 2]
            y2 = q[i, 3]
            a0 = f[0] * x1 + f[1] * y1 + f[2]
            a1 = f[3] * x1 + f[4] * y1 + f[5]
            a2 = f[6] * x1 + f[7] * y1 + f[8]
            b0 = f[0] * x2 + f[3] * y2 + f[6]
            b1 = f[1] * x2 + f[4] * y2 + f[7]
            e = x2 * a0 + y2 * a1 + a2
            den = a0 * a0 + a1 * a1 + b0 * b0 + b1 * b1
            if not den > 0.0:
                continue
            sd = np.sqrt(den)
            res = e / sd
            h = e / (den * sd)
            # d r / d F_ij = x2_i x1_j / sd − h (a_i x1_j [i<2] + b_j x2_i [j<2])
            J[0] = x2 * x1 / sd - h * (a0 * x1 + b0 * x2)
            J[1] = x2 * y1 / sd - h * (a0 * y1 + b1 * x2)
            J[2] = x2 / sd - h * a0
            J[3] = y2 * x1 / sd - h * (a1 * x1 + b0 * y2)
            J[4] = y2 * y1 / sd - h * (a1 * y1 + b1 * y2)
            J[5] = y2 / sd - h * a1
            J[6] = x1 / sd - h * b0
            J[7] = y1 / sd - h * b1
            J[8] = 1.0 / sd
            for a in range(9):
                ja = J[a]
                g[a] += ja * res
                for b in range(a, 9):
                    JJ[a, b] += ja * J[b]
        tr = 0.0
        for a in range(9):
            tr += JJ[a, a]
        if not tr > 0.0 or not np.isfinite(tr):
            return True
        gauge = tr / 9.0
        improved = False
        for _try in range(3):
            for a in range(9):
                for b in range(a, 9):
                    val = JJ[a, b] + gauge * f[a] * f[b]
                    A[a, b] = val
                    A[b, a] = val
                A[a, a] += lam * (JJ[a, a] + 1e-12 * tr)
            for a in range(9):
                g[a] = -g[a]
            ok = cholesky_factor(A, 9, L)
            if ok:
                cholesky_subst(L, g, 9, d)
            for a in range(9):
                g[a] = -g[a]
            if not ok:
                lam *= 10.0
                continue
            for a in range(9):
                fo[a] = f[a]
                f[a] += d[a]
            if enforce_rank2(f, v3):
                c_new = _sampson_cost(f, q, idx, m)
                if c_new < cost:
                    cost = c_new
                    lam = max(lam * 0.1, 1e-8)
                    improved = True
                    break
            for a in range(9):
                f[a] = fo[a]
            lam *= 10.0
        if not improved:
            break
    return True


@njit(cache=True)
def _homography_explains_dir(q, idx, m, thr2, ws, S, a1, a2):
    """How many of ``q[idx[:m]]`` a DLT homography from columns ``a1, a1+1`` to ``a2, a2+1``
    (fitted to all of them) transfers within ``sqrt(thr2)``."""
    M = S[0]
    for a in range(9):
        for b in range(9):
            M[a, b] = 0.0
    r = ws[200:209]
    for k in range(m):
        i = idx[k]
        x = q[i, a1]
        y = q[i, a1 + 1]
        u = q[i, a2]
        v = q[i, a2 + 1]
        for half in range(2):
            for a in range(9):
                r[a] = 0.0
            if half == 0:
                r[0] = x
                r[1] = y
                r[2] = 1.0
                r[6] = -u * x
                r[7] = -u * y
                r[8] = -u
            else:
                r[3] = x
                r[4] = y
                r[5] = 1.0
                r[6] = -v * x
                r[7] = -v * y
                r[8] = -v
            for a in range(9):
                ra = r[a]
                if ra != 0.0:
                    for b in range(a, 9):
                        M[a, b] += ra * r[b]
    for a in range(9):
        for b in range(a):
            M[a, b] = M[b, a]
    h = ws[210:219]
    for a in range(9):
        h[a] = 0.0
    h[0] = h[4] = h[8] = 1.0
    if not smallest_eigvec_inverse(M, 9, h, 6, S[1], S[2], ws[220:229]):
        return 0
    cnt = 0
    for k in range(m):
        i = idx[k]
        x = q[i, a1]
        y = q[i, a1 + 1]
        w = h[6] * x + h[7] * y + h[8]
        if w == 0.0:
            continue
        du = (h[0] * x + h[1] * y + h[2]) / w - q[i, a2]
        dv = (h[3] * x + h[4] * y + h[5]) / w - q[i, a2 + 1]
        if du * du + dv * dv < thr2:
            cnt += 1
    return cnt


@njit(cache=True)
def homography_explains(q, idx, m, thr2, ws, S):
    """Degeneracy test: how many of ``q[idx[:m]]`` a DLT homography (fitted to all of them)
    transfers within ``sqrt(thr2)``, the better of ``x2 ~ H x1`` and ``x1 ~ H x2``. Planar scenes
    and zero baselines explain all; the reverse direction catches a plane seen at a grazing angle
    in camera 1 (near-collinear ``x1``), where the forward DLT is ill-conditioned."""
    c = _homography_explains_dir(q, idx, m, thr2, ws, S, 0, 2)
    if m - c < 3:
        return c
    return max(c, _homography_explains_dir(q, idx, m, thr2, ws, S, 2, 0))
