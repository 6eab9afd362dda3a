"""The 7-point fundamental-matrix solver (private Numba kernels; one sample each, no allocation).

:func:`fit_seven_point` takes 7 Hartley-normalised correspondences ``q[sample]`` (``q (n, 4) =
[u1, v1, u2, v2]``, see :mod:`geometry.epipolar._fundamental_kernels`) to the 1 or 3 real rank-2 models
``F1 + λ F2`` with ``det = 0``. The null space comes from the unrolled, branch-free elimination of
:mod:`geometry.epipolar._seven_point_null` (generated); when its pivots fail (columns 0–6 of the design
matrix rank-deficient) the general Gauss–Jordan elimination below picks other free columns.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..common.nb_linalg import cubic_roots
from ._seven_point_null import EPS_PIVOT as _EPS_PIVOT, seven_point_models


@njit(cache=True)
def _det_comb(f1, f2, lam):
    a0 = f1[0] + lam * f2[0]
    a1 = f1[1] + lam * f2[1]
    a2 = f1[2] + lam * f2[2]
    a3 = f1[3] + lam * f2[3]
    a4 = f1[4] + lam * f2[4]
    a5 = f1[5] + lam * f2[5]
    a6 = f1[6] + lam * f2[6]
    a7 = f1[7] + lam * f2[7]
    a8 = f1[8] + lam * f2[8]
    return a0 * (a4 * a8 - a5 * a7) - a1 * (a3 * a8 - a5 * a6) + a2 * (a3 * a7 - a4 * a6)


@njit(cache=True)
def _det9(a):
    return (a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6])
            + a[2] * (a[3] * a[7] - a[4] * a[6]))


@njit(cache=True)
def solve_cubic(c3, c2, c1, c0, roots):
    """Real roots of ``c3 λ³ + c2 λ² + c1 λ + c0`` into ``roots (3,)``; returns their count."""
    nr, r0, r1, r2 = cubic_roots(c3, c2, c1, c0)
    roots[0] = r0
    roots[1] = r1
    roots[2] = r2
    return nr


@njit(cache=True)
def _general_null(q, sample, ws):
    """Null space by Gauss–Jordan elimination with partial pivoting over all 9 columns (any two
    columns may end up free) into ``ws[63:72]`` (f1) and ``ws[72:81]`` (f2); False when the
    design matrix has rank < 7."""
    A = ws  # 7×9 at ws[0:63]; f1 at 63, f2 at 72, pivot columns at 88
    scale = 0.0
    for r in range(7):
        i = sample[r]
        x1 = q[i, 0]
        y1 = q[i, 1]
        x2 = q[i, 2]
        y2 = q[i, 3]
        o = 9 * r
        A[o] = x2 * x1
        A[o + 1] = x2 * y1
        A[o + 2] = x2
        A[o + 3] = y2 * x1
        A[o + 4] = y2 * y1
        A[o + 5] = y2
        A[o + 6] = x1
        A[o + 7] = y1
        A[o + 8] = 1.0
        for k in range(9):
            scale = max(scale, abs(A[o + k]))
    pivcol = ws[88:95]  # pivot columns, stored as floats
    free0 = -1
    free1 = -1
    r = 0
    for c in range(9):
        if r == 7:
            if free0 < 0:
                free0 = c
            elif free1 < 0:
                free1 = c
            continue
        p = r
        best = abs(A[9 * r + c])
        for i in range(r + 1, 7):
            v = abs(A[9 * i + c])
            if v > best:
                best = v
                p = i
        if best < _EPS_PIVOT * scale:
            if free0 < 0:
                free0 = c
            elif free1 < 0:
                free1 = c
            else:
                return False
            continue
        if p != r:
            for k in range(9):
                tmp = A[9 * r + k]
                A[9 * r + k] = A[9 * p + k]
                A[9 * p + k] = tmp
        inv = 1.0 / A[9 * r + c]
        for k in range(c, 9):
            A[9 * r + k] *= inv
        for i in range(7):
            if i != r:
                fct = A[9 * i + c]
                if fct != 0.0:
                    for k in range(c, 9):
                        A[9 * i + k] -= fct * A[9 * r + k]
        pivcol[r] = float(c)
        r += 1
    if r < 7 or free1 < 0:
        return False
    f1 = ws[63:72]
    f2 = ws[72:81]
    for k in range(9):
        f1[k] = 0.0
        f2[k] = 0.0
    f1[free0] = 1.0
    f2[free1] = 1.0
    for i in range(7):
        pc = int(pivcol[i])
        f1[pc] = -A[9 * i + free0]
        f2[pc] = -A[9 * i + free1]
    return True


@njit(cache=True)
def fit_seven_point(q, sample, models, ws, S):
    """7-point solver on ``q[sample[:7]]`` → up to 3 rank-2 models in ``models (3, 9)``.

    The 2-D null space ``F1, F2`` of the 7×9 design matrix comes from the unrolled elimination
    (:func:`geometry.epipolar._seven_point_null.seven_point_models`) or, when its pivots fail, the
    general one; ``det(F1 + λ F2) = 0`` is solved in closed form. Models have unit norm. Returns the
    count (0 for a rank-deficient sample: coincident or collinear-degenerate points). Uses
    ``ws[0:95]`` on the general path only; ``S`` is unused.
    """
    cnt = seven_point_models(q, sample, models)
    if cnt >= 0:
        return cnt
    if not _general_null(q, sample, ws):
        return 0
    f1 = ws[63:72]
    f2 = ws[72:81]
    c0 = _det9(f1)
    c3 = _det9(f2)
    p1 = _det_comb(f1, f2, 1.0)
    m1 = _det_comb(f1, f2, -1.0)
    nr, r0, r1, r2 = cubic_roots(c3, 0.5 * (p1 + m1) - c0, 0.5 * (p1 - m1) - c3, c0)
    cnt = 0
    for k in range(nr):
        lam = r0 if k == 0 else (r1 if k == 1 else r2)
        nrm = 0.0
        for j in range(9):
            v = f1[j] + lam * f2[j]
            models[cnt, j] = v
            nrm += v * v
        if nrm > 0.0 and np.isfinite(nrm):
            s = 1.0 / np.sqrt(nrm)
            for j in range(9):
                models[cnt, j] *= s
            cnt += 1
    return cnt
