"""Numba kernels behind ``geometry.fusion`` (private): medians and multi-view triangulation."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .hartley_sturm.poly import hs_correct, hs_scratch
from ._dlt_kernels import dlt_point, dlt_two, reproject_errors


@njit(cache=True)
def _vmedian_one(X, use, b):
    """Index of the member of ``X[b] (M,D)`` (rows with ``use[b]``) with the least summed
    Euclidean distance to the others; -1 when none is usable."""
    M, D = X.shape[1], X.shape[2]
    best = np.inf
    ib = -1
    for i in range(M):
        if not use[b, i]:
            continue
        acc = 0.0
        for j in range(M):
            if j == i or not use[b, j]:
                continue
            d2 = 0.0
            for k in range(D):
                t = X[b, i, k] - X[b, j, k]
                d2 += t * t
            acc += np.sqrt(d2)
        if acc < best:
            best = acc
            ib = i
    return ib


@njit(cache=True, parallel=True)
def vector_median_kernel(X, use, out, idx):
    """``X (B,M,D)``, ``use (B,M)`` → ``out (B,D)`` (0 where none), ``idx (B)`` (-1 where none)."""
    B, D = X.shape[0], X.shape[2]
    for b in prange(B):
        i = _vmedian_one(X, use, b)
        idx[b] = i
        for k in range(D):
            out[b, k] = X[b, i, k] if i >= 0 else 0.0


@njit(cache=True, parallel=True)
def geometric_median_kernel(X, use, w, max_iter, tol, out, iters, converged):
    """Weiszfeld iterations with the Vardi–Zhang step at data points, started at the vector
    median: ``X (B,M,D)``, ``use (B,M)``, ``w (B,M)`` → ``out (B,D)``, ``iters (B)``,
    ``converged (B)``. Stops when a step is below ``tol`` times the spread of the set."""
    B, M, D = X.shape[0], X.shape[1], X.shape[2]
    for b in prange(B):
        y = np.zeros(D)
        num = np.zeros(D)
        r = np.zeros(D)
        i0 = _vmedian_one(X, use, b)
        iters[b] = 0
        converged[b] = False
        if i0 < 0:
            for k in range(D):
                out[b, k] = 0.0
            continue
        for k in range(D):
            y[k] = X[b, i0, k]
        spread = 0.0
        for i in range(M):
            if use[b, i]:
                for k in range(D):
                    spread = max(spread, abs(X[b, i, k] - y[k]))
        if spread == 0.0:
            converged[b] = True
        it = 0
        while it < max_iter and not converged[b]:
            it += 1
            den = 0.0
            eta = 0.0
            for k in range(D):
                num[k] = 0.0
                r[k] = 0.0
            for i in range(M):
                if not use[b, i] or w[b, i] <= 0.0:
                    continue
                d2 = 0.0
                for k in range(D):
                    t = X[b, i, k] - y[k]
                    d2 += t * t
                d = np.sqrt(d2)
                if d <= 1e-15 * spread:
                    eta += w[b, i]
                    continue
                den += w[b, i] / d
                for k in range(D):
                    num[k] += w[b, i] * X[b, i, k] / d
                    r[k] += w[b, i] * (X[b, i, k] - y[k]) / d
            if den == 0.0:
                converged[b] = True
                break
            rn = 0.0
            for k in range(D):
                rn += r[k] * r[k]
            rn = np.sqrt(rn)
            if eta > 0.0 and rn <= eta:
                converged[b] = True  # y is a data point satisfying the optimality condition
                break
            lam = min(1.0, eta / rn) if rn > 0.0 else 0.0
            step = 0.0
            for k in range(D):
                t = num[k] / den
                yn = (1.0 - lam) * t + lam * y[k]
                step = max(step, abs(yn - y[k]))
                y[k] = yn
            if step <= tol * spread:
                converged[b] = True
        iters[b] = it
        for k in range(D):
            out[b, k] = y[k]


@njit(cache=True)
def _max_angle_deg(Xw, centers, has_c, sel):
    """Largest angle (degrees) between rays from the selected finite camera centres to ``Xw``."""
    C = centers.shape[0]
    best = 0.0
    for i in range(C):
        if not (sel[i] and has_c[i]):
            continue
        a0 = Xw[0] - centers[i, 0]
        a1 = Xw[1] - centers[i, 1]
        a2 = Xw[2] - centers[i, 2]
        na = np.sqrt(a0 * a0 + a1 * a1 + a2 * a2)
        for j in range(i + 1, C):
            if not (sel[j] and has_c[j]):
                continue
            b0 = Xw[0] - centers[j, 0]
            b1 = Xw[1] - centers[j, 1]
            b2 = Xw[2] - centers[j, 2]
            nb = np.sqrt(b0 * b0 + b1 * b1 + b2 * b2)
            if na == 0.0 or nb == 0.0:
                continue
            cs = (a0 * b0 + a1 * b1 + a2 * b2) / (na * nb)
            cs = min(1.0, max(-1.0, cs))
            best = max(best, np.degrees(np.arccos(cs)))
    return best


@njit(cache=True)
def _finish(b, n, ok, Xw, e, sel, C, centers, has_c, X, valid, err, angle, nviews, used):
    cnt = 0
    sq = 0.0
    for c in range(C):
        used[b, c, n] = ok and sel[c]
        if ok and sel[c]:
            cnt += 1
            sq += e[c] * e[c]
    if not ok or cnt < 2 or not np.isfinite(sq):
        valid[b, n] = False
        for k in range(3):
            X[b, n, k] = 0.0
        err[b, n] = 0.0
        angle[b, n] = 0.0
        nviews[b, n] = 0
        for c in range(C):
            used[b, c, n] = False
        return
    valid[b, n] = True
    for k in range(3):
        X[b, n, k] = Xw[k]
    err[b, n] = np.sqrt(sq / cnt)
    nviews[b, n] = cnt
    angle[b, n] = _max_angle_deg(Xw, centers[b], has_c[b], sel)


@njit(cache=True, parallel=True)
def multiview_dlt_kernel(P, Pn, H, dscale, centers, has_c, x, use, sw, threshold, X, valid,
                         err, angle, nviews, used, nchunk):
    """DLT over all usable views, then repeatedly drop the view with the largest reprojection
    error (a view behind its camera counts as infinitely wrong) while it exceeds
    ``threshold`` px and more than two views remain."""
    B, C, N = x.shape[0], x.shape[1], x.shape[2]
    total = B * N
    for ch in prange(nchunk):
        Xc = np.empty(3)
        Xw = np.empty(3)
        acc = np.empty(9)
        e = np.empty(C)
        pos = np.empty(C, dtype=np.bool_)
        sel = np.empty(C, dtype=np.bool_)
        lo = ch * total // nchunk
        hi = (ch + 1) * total // nchunk
        for i in range(lo, hi):
            b = i // N
            n = i - b * N
            for c in range(C):
                sel[c] = use[b, c, n]
            ok = False
            while True:
                ok, cnt = dlt_point(Pn[b], x[b], sel, sw[b], n, acc, Xc)
                if not ok:
                    break
                for k in range(3):
                    Xw[k] = H[b, 3] * Xc[k] + H[b, k]
                reproject_errors(P[b], dscale[b], Xw, x[b], sel, n, e, pos)
                worst = -1
                we = -1.0
                for c in range(C):
                    if sel[c]:
                        ec = e[c] if pos[c] else np.inf
                        if ec > we:
                            we = ec
                            worst = c
                if we > threshold and cnt > 2:
                    sel[worst] = False
                    continue
                break
            _finish(b, n, ok, Xw, e, sel, C, centers, has_c, X, valid, err, angle, nviews,
                    used)


@njit(cache=True, parallel=True)
def multiview_pairs_kernel(P, Pn, H, dscale, centers, has_c, F, E1, E2, pi, pj, x, use, sw,
                           threshold, refine, X, valid, err, angle, nviews, used, nchunk):
    """Every pair of usable views is triangulated optimally (Hartley–Sturm); candidates in
    front of both cameras are fused by the vector median. The views used are the winning pair
    plus every usable view that reprojects within ``threshold`` px; with ``refine`` the point
    is then re-triangulated (DLT, weights ``sw²``) from the views used."""
    B, C, N = x.shape[0], x.shape[1], x.shape[2]
    M = pi.shape[0]
    total = B * N
    for ch in prange(nchunk):
        p, D, R, cnt, roots, corr = hs_scratch()
        acc = np.empty(9)
        Xc = np.empty(3)
        Xw = np.empty(3)
        cand = np.empty((1, M, 3))
        cuse = np.empty((1, M), dtype=np.bool_)
        e = np.empty(C)
        pos = np.empty(C, dtype=np.bool_)
        sel = np.empty(C, dtype=np.bool_)
        lo = ch * total // nchunk
        hi = (ch + 1) * total // nchunk
        for i in range(lo, hi):
            b = i // N
            n = i - b * N
            for m in range(M):
                cuse[0, m] = False
                a, c2 = pi[m], pj[m]
                if not (use[b, a, n] and use[b, c2, n]):
                    continue
                if not hs_correct(F[b, m], E1[b, m], E2[b, m], x[b, a, n, 0], x[b, a, n, 1],
                                  x[b, c2, n, 0], x[b, c2, n, 1], p, D, R, cnt, roots, corr):
                    continue
                if not dlt_two(Pn[b, a], Pn[b, c2], corr[0], corr[1], corr[2], corr[3], acc,
                               Xc):
                    continue
                for k in range(3):
                    Xw[k] = H[b, 3] * Xc[k] + H[b, k]
                za = P[b, a, 2, 0] * Xw[0] + P[b, a, 2, 1] * Xw[1] + P[b, a, 2, 2] * Xw[2] \
                    + P[b, a, 2, 3]
                zb = P[b, c2, 2, 0] * Xw[0] + P[b, c2, 2, 1] * Xw[1] + P[b, c2, 2, 2] * Xw[2] \
                    + P[b, c2, 2, 3]
                if not (za * dscale[b, a] > 0.0 and zb * dscale[b, c2] > 0.0):
                    continue
                cuse[0, m] = True
                for k in range(3):
                    cand[0, m, k] = Xw[k]
            im = _vmedian_one(cand, cuse, 0)
            ok = im >= 0
            if ok:
                for k in range(3):
                    Xw[k] = cand[0, im, k]
                for c in range(C):
                    sel[c] = use[b, c, n]
                reproject_errors(P[b], dscale[b], Xw, x[b], sel, n, e, pos)
                for c in range(C):
                    sel[c] = sel[c] and pos[c] and e[c] <= threshold
                sel[pi[im]] = True
                sel[pj[im]] = True
                if refine:
                    okr, _ = dlt_point(Pn[b], x[b], sel, sw[b], n, acc, Xc)
                    if okr:
                        for k in range(3):
                            Xw[k] = H[b, 3] * Xc[k] + H[b, k]
                reproject_errors(P[b], dscale[b], Xw, x[b], sel, n, e, pos)
            _finish(b, n, ok, Xw, e, sel, C, centers, has_c, X, valid, err, angle, nviews,
                    used)
