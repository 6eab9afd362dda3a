"""Numba kernels behind ``geometry.triangulation`` and ``geometry.fusion`` (private).

Linear (DLT) triangulation, conditioned:

- the world is moved so the rig's camera centres have centroid 0 and RMS distance 1 from it
  (``P' = P H``, ``X = s X' + c``);
- every row of the DLT system (``P_k − x_k P_3``, a plane through the camera centre and the image
  line ``x_k = const``) is scaled to unit normal, so the residual of a row is the distance of
  the point from that plane — independent of the scale of ``P``, the focal length and the pixel
  position; weights multiply the squared residuals;
- the point minimising the weighted sum of squared point-to-plane distances solves a 3x3
  system (normal equations, explicit adjugate), which is exact on noise-free data and about
  4x cheaper than a 4x4 eigen-decomposition.

A point is invalid when fewer than two views are usable, when ``det(N) ≤ 1e-14 (tr N)³`` for
the 3x3 normal matrix ``N`` (rays parallel or coincident), or when the solution lies farther
than ``1e8`` rig radii (a point at infinity). Invalid points get ``X = 0`` and zero error.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

RANK_EPS = 1e-14
FAR = 1e8


@njit(cache=True)
def sym4_eig_min(S, V):
    """Cyclic Jacobi on the symmetric 4x4 ``S`` (destroyed); eigenvectors go to ``V``'s columns.

    Returns ``(i_min, lam_min, lam_second, lam_max)``: the column of the smallest eigenvalue and
    the smallest, second smallest and largest eigenvalues.
    """
    for i in range(4):
        for j in range(4):
            V[i, j] = 1.0 if i == j else 0.0
    for _ in range(12):
        rotated = False
        for p in range(3):
            for q in range(p + 1, 4):
                apq = S[p, q]
                if abs(apq) <= 1e-18 * np.sqrt(abs(S[p, p] * S[q, q])) or abs(apq) < 1e-300:
                    continue
                rotated = True
                theta = (S[q, q] - S[p, p]) / (2.0 * apq)
                if abs(theta) > 1e150:
                    t = 0.5 / theta
                else:
                    t = 1.0 / (abs(theta) + np.sqrt(theta * theta + 1.0))
                    if theta < 0.0:
                        t = -t
                c = 1.0 / np.sqrt(t * t + 1.0)
                s = t * c
                for k in range(4):
                    akp = S[k, p]
                    akq = S[k, q]
                    S[k, p] = c * akp - s * akq
                    S[k, q] = s * akp + c * akq
                for k in range(4):
                    apk = S[p, k]
                    aqk = S[q, k]
                    S[p, k] = c * apk - s * aqk
                    S[q, k] = s * apk + c * aqk
                S[p, q] = 0.0
                S[q, p] = 0.0
                for k in range(4):
                    vkp = V[k, p]
                    vkq = V[k, q]
                    V[k, p] = c * vkp - s * vkq
                    V[k, q] = s * vkp + c * vkq
        if not rotated:
            break
    i0 = 0
    for i in range(1, 4):
        if S[i, i] < S[i0, i0]:
            i0 = i
    lam2 = np.inf
    lmax = -np.inf
    for i in range(4):
        if S[i, i] > lmax:
            lmax = S[i, i]
        if i != i0 and S[i, i] < lam2:
            lam2 = S[i, i]
    return i0, S[i0, i0], lam2, lmax


@njit(cache=True)
def _det3(a00, a01, a02, a10, a11, a12, a20, a21, a22):
    return (a00 * (a11 * a22 - a12 * a21) - a01 * (a10 * a22 - a12 * a20)
            + a02 * (a10 * a21 - a11 * a20))


@njit(cache=True)
def camera_center_h(P, out):
    """Homogeneous centre (null vector) of the 3x4 ``P`` from its signed 3x3 minors."""
    for k in range(4):
        cols = [0, 1, 2, 3]
        cols.pop(k)
        i, j, l = cols[0], cols[1], cols[2]
        d = _det3(P[0, i], P[0, j], P[0, l], P[1, i], P[1, j], P[1, l], P[2, i], P[2, j], P[2, l])
        out[k] = d if k % 2 == 0 else -d


@njit(cache=True)
def prepare_cameras(P, Pn, H, dscale, centers, has_center):
    """Per problem: conditioned ``Pn = P H`` (B,C,3,4), ``H`` as ``(cx, cy, cz, s)`` (B,4),
    depth scale ``sign(det M) / |M_3|`` (B,C) and finite camera centres (B,C,3) with flags."""
    B, C = P.shape[0], P.shape[1]
    ch = np.empty(4)
    for b in range(B):
        cx = 0.0
        cy = 0.0
        cz = 0.0
        nc = 0
        for c in range(C):
            camera_center_h(P[b, c], ch)
            nrm = np.sqrt(ch[0] ** 2 + ch[1] ** 2 + ch[2] ** 2 + ch[3] ** 2)
            M = P[b, c]
            detm = _det3(M[0, 0], M[0, 1], M[0, 2], M[1, 0], M[1, 1], M[1, 2],
                         M[2, 0], M[2, 1], M[2, 2])
            n3 = np.sqrt(M[2, 0] ** 2 + M[2, 1] ** 2 + M[2, 2] ** 2)
            dscale[b, c] = 0.0 if (n3 == 0.0 or detm == 0.0) else np.sign(detm) / n3
            if nrm > 0.0 and abs(ch[3]) > 1e-12 * nrm:
                has_center[b, c] = True
                for k in range(3):
                    centers[b, c, k] = ch[k] / ch[3]
                cx += centers[b, c, 0]
                cy += centers[b, c, 1]
                cz += centers[b, c, 2]
                nc += 1
            else:
                has_center[b, c] = False
                for k in range(3):
                    centers[b, c, k] = 0.0
        s = 1.0
        if nc > 0:
            cx /= nc
            cy /= nc
            cz /= nc
            ss = 0.0
            for c in range(C):
                if has_center[b, c]:
                    ss += ((centers[b, c, 0] - cx) ** 2 + (centers[b, c, 1] - cy) ** 2
                           + (centers[b, c, 2] - cz) ** 2)
            ss = np.sqrt(ss / nc)
            if ss > 1e-12 * (1.0 + abs(cx) + abs(cy) + abs(cz)):
                s = ss
        H[b, 0], H[b, 1], H[b, 2], H[b, 3] = cx, cy, cz, s
        for c in range(C):
            for r in range(3):
                Pn[b, c, r, 0] = P[b, c, r, 0] * s
                Pn[b, c, r, 1] = P[b, c, r, 1] * s
                Pn[b, c, r, 2] = P[b, c, r, 2] * s
                Pn[b, c, r, 3] = (P[b, c, r, 0] * cx + P[b, c, r, 1] * cy + P[b, c, r, 2] * cz
                                  + P[b, c, r, 3])


@njit(cache=True, inline="always")
def _add_view(Pc, u, v, wt, acc):
    """Add the two unit-normal rows of one view (``Pc (3,4)``, pixel ``(u, v)``, weight
    ``wt``) to the normal equations ``acc = (n00, n01, n02, n11, n12, n22, b0, b1, b2)``."""
    for k in range(2):
        xv = u if k == 0 else v
        r0 = Pc[k, 0] - xv * Pc[2, 0]
        r1 = Pc[k, 1] - xv * Pc[2, 1]
        r2 = Pc[k, 2] - xv * Pc[2, 2]
        r3 = Pc[k, 3] - xv * Pc[2, 3]
        nrm2 = r0 * r0 + r1 * r1 + r2 * r2
        if nrm2 == 0.0:
            continue
        sc = wt / nrm2
        acc[0] += sc * r0 * r0
        acc[1] += sc * r0 * r1
        acc[2] += sc * r0 * r2
        acc[3] += sc * r1 * r1
        acc[4] += sc * r1 * r2
        acc[5] += sc * r2 * r2
        acc[6] += sc * r0 * r3
        acc[7] += sc * r1 * r3
        acc[8] += sc * r2 * r3


@njit(cache=True)
def solve_normal(acc, Xout):
    """Solve the 3x3 normal equations in ``acc`` for the conditioned point; False when the
    rays do not pin it down or it lies at infinity (see the module notes)."""
    n00, n01, n02, n11, n12, n22 = acc[0], acc[1], acc[2], acc[3], acc[4], acc[5]
    b0, b1, b2 = acc[6], acc[7], acc[8]
    a00 = n11 * n22 - n12 * n12
    a01 = n02 * n12 - n01 * n22
    a02 = n01 * n12 - n02 * n11
    det = n00 * a00 + n01 * a01 + n02 * a02
    tr = n00 + n11 + n22
    if not (tr > 0.0) or not (det > RANK_EPS * tr * tr * tr):
        return False
    a11 = n00 * n22 - n02 * n02
    a12 = n01 * n02 - n00 * n12
    a22 = n00 * n11 - n01 * n01
    Xout[0] = -(a00 * b0 + a01 * b1 + a02 * b2) / det
    Xout[1] = -(a01 * b0 + a11 * b1 + a12 * b2) / det
    Xout[2] = -(a02 * b0 + a12 * b1 + a22 * b2) / det
    r = abs(Xout[0]) + abs(Xout[1]) + abs(Xout[2])
    return r < FAR


@njit(cache=True)
def dlt_point(Pn, x, sel, sw, n, acc, Xout):
    """Solve point ``n`` of one problem from the views with ``sel[c]``: ``Pn (C,3,4)``
    conditioned cameras, ``x (C,N,2)``, ``sw (C,N)`` square-root weights; ``acc (9,)`` scratch.
    Writes the conditioned point to ``Xout``; returns ``(ok, views)``."""
    C = Pn.shape[0]
    for i in range(9):
        acc[i] = 0.0
    cnt = 0
    for c in range(C):
        if not sel[c]:
            continue
        cnt += 1
        _add_view(Pn[c], x[c, n, 0], x[c, n, 1], sw[c, n] * sw[c, n], acc)
    if cnt < 2:
        return False, cnt
    return solve_normal(acc, Xout), cnt


@njit(cache=True)
def dlt_two(Pa, Pb, ua, va, ub, vb, acc, Xout):
    """Two-view version of :func:`dlt_point` (unit weights)."""
    for i in range(9):
        acc[i] = 0.0
    _add_view(Pa, ua, va, 1.0, acc)
    _add_view(Pb, ub, vb, 1.0, acc)
    return solve_normal(acc, Xout)


@njit(cache=True)
def reproject_errors(P, dscale, X, x, sel, n, err_out, pos_out):
    """Per-view reprojection error (px) of world point ``X (3,)`` at point ``n`` into ``err_out
    (C,)`` (``inf`` where it projects to infinity, ``nan`` where ``sel`` is False) and depth
    positivity into ``pos_out (C,)``. Returns the number of selected views with positive
    depth."""
    C = P.shape[0]
    npos = 0
    for c in range(C):
        if not sel[c]:
            err_out[c] = np.nan
            pos_out[c] = False
            continue
        u = P[c, 0, 0] * X[0] + P[c, 0, 1] * X[1] + P[c, 0, 2] * X[2] + P[c, 0, 3]
        v = P[c, 1, 0] * X[0] + P[c, 1, 1] * X[1] + P[c, 1, 2] * X[2] + P[c, 1, 3]
        z = P[c, 2, 0] * X[0] + P[c, 2, 1] * X[1] + P[c, 2, 2] * X[2] + P[c, 2, 3]
        pos_out[c] = z * dscale[c] > 0.0
        if pos_out[c]:
            npos += 1
        if z == 0.0:
            err_out[c] = np.inf
            continue
        du = u / z - x[c, n, 0]
        dv = v / z - x[c, n, 1]
        err_out[c] = np.sqrt(du * du + dv * dv)
    return npos


@njit(cache=True, parallel=True)
def dlt_kernel(P, Pn, H, dscale, x, use, sw, xref, X, valid, err, nviews, posdepth, nchunk):
    """Batched DLT: ``P, Pn (B,C,3,4)``, ``x, xref (B,C,N,2)`` (``xref`` for the error),
    ``use (B,C,N)``, ``sw (B,C,N)`` → ``X (B,N,3)``, ``valid``, RMS ``err``, ``nviews``,
    ``posdepth`` (B,N); the points are split into ``nchunk`` parallel chunks."""
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
            ok, cnt = dlt_point(Pn[b], x[b], sel, sw[b], n, acc, Xc)
            nviews[b, n] = cnt
            if ok:
                for k in range(3):
                    Xw[k] = H[b, 3] * Xc[k] + H[b, k]
                npos = reproject_errors(P[b], dscale[b], Xw, xref[b], sel, n, e, pos)
                sq = 0.0
                for c in range(C):
                    if sel[c]:
                        sq += e[c] * e[c]
                ok = np.isfinite(sq)
            if not ok:
                valid[b, n] = False
                X[b, n, 0] = 0.0
                X[b, n, 1] = 0.0
                X[b, n, 2] = 0.0
                err[b, n] = 0.0
                posdepth[b, n] = False
                continue
            for k in range(3):
                X[b, n, k] = Xw[k]
            err[b, n] = np.sqrt(sq / cnt)
            posdepth[b, n] = npos == cnt
            valid[b, n] = True


def num_chunks(total: int) -> int:
    """How many parallel chunks to split ``total`` points into (≥ 1)."""
    import numba
    return int(max(1, min(total, 8 * numba.get_num_threads())))
