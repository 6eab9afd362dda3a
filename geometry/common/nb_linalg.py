"""Small fixed-size linear algebra and a counter-free random stream for Numba kernels.

Everything here works on caller-provided buffers, so the RANSAC inner loops never allocate:
Cholesky solves of small SPD systems, inverse iteration for the smallest eigenvector of a
symmetric PSD matrix, the right null vector of a 3×3 matrix, rank-2 projection, a cubic's real
roots, a cyclic Jacobi eigen-solver (for the few places that need a full decomposition) and a
splitmix64 stream.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_U30 = np.uint64(30)
_U27 = np.uint64(27)
_U31 = np.uint64(31)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True)
def splitmix_next(state):
    """Advance ``state`` (a ``(1,)`` uint64 array) and return a 64-bit random uint64."""
    state[0] += _GOLDEN
    z = state[0]
    z = (z ^ (z >> _U30)) * _M1
    z = (z ^ (z >> _U27)) * _M2
    return z ^ (z >> _U31)


@njit(cache=True)
def mix64(h, v):
    """Fold the uint64 ``v`` into the hash ``h`` (splitmix finaliser)."""
    z = (h ^ v) + _GOLDEN
    z = (z ^ (z >> _U30)) * _M1
    z = (z ^ (z >> _U27)) * _M2
    return z ^ (z >> _U31)


@njit(cache=True)
def random_below(state, n):
    """A random integer in ``[0, n)`` (``n`` ≥ 1; modulo bias < 2⁻³⁰ for n < 2³⁴)."""
    return np.int64(splitmix_next(state) % np.uint64(n))


@njit(cache=True)
def cholesky_factor(A, n, L):
    """Lower Cholesky factor of SPD ``A[:n, :n]`` into ``L``; False if not positive definite."""
    for j in range(n):
        s = A[j, j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if not s > 0.0:
            return False
        d = np.sqrt(s)
        L[j, j] = d
        for i in range(j + 1, n):
            s = A[i, j]
            for k in range(j):
                s -= L[i, k] * L[j, k]
            L[i, j] = s / d
    return True


@njit(cache=True)
def cholesky_subst(L, b, n, x):
    """Solve ``L Lᵀ x = b`` given the factor from :func:`cholesky_factor`."""
    for i in range(n):
        s = b[i]
        for k in range(i):
            s -= L[i, k] * x[k]
        x[i] = s / L[i, i]
    for i in range(n - 1, -1, -1):
        s = x[i]
        for k in range(i + 1, n):
            s -= L[k, i] * x[k]
        x[i] = s / L[i, i]


@njit(cache=True)
def smallest_eigvec_inverse(M, n, v, iters, A, L, y):
    """Smallest eigenvector of symmetric PSD ``M[:n,:n]`` by inverse iteration from ``v``.

    ``v (n,)`` holds the start vector and receives the unit result; ``A, L (n, n)`` and ``y (n,)``
    are scratch. A tiny ridge keeps the factorisation defined for exactly singular ``M``. Returns
    False when the factorisation fails.
    """
    tr = 0.0
    for i in range(n):
        tr += M[i, i]
    if not tr > 0.0 or not np.isfinite(tr):
        return False
    ridge = 1e-13 * tr
    for i in range(n):
        for j in range(n):
            A[i, j] = M[i, j]
        A[i, i] += ridge
    if not cholesky_factor(A, n, L):
        return False
    for _ in range(iters):
        cholesky_subst(L, v, n, y)
        nrm = 0.0
        for i in range(n):
            nrm += y[i] * y[i]
        nrm = np.sqrt(nrm)
        if not nrm > 0.0 or not np.isfinite(nrm):
            return False
        for i in range(n):
            v[i] = y[i] / nrm
    return True


@njit(cache=True)
def jacobi_eigh(A, n, w, V, sweeps=30):
    """Eigen-decomposition of symmetric ``A[:n,:n]`` (destroyed) by cyclic Jacobi.

    Writes eigenvalues to ``w (n,)`` and eigenvectors to the columns of ``V (n, n)``, sorted
    ascending. Used where no start vector is available; ~1e-15 relative accuracy.
    """
    for i in range(n):
        for j in range(n):
            V[i, j] = 1.0 if i == j else 0.0
    for _ in range(sweeps):
        off = 0.0
        diag = 0.0
        for i in range(n):
            diag += A[i, i] * A[i, i]
            for j in range(i + 1, n):
                off += A[i, j] * A[i, j]
        if off <= 1e-30 * diag or off == 0.0:
            break
        for p in range(n - 1):
            for q in range(p + 1, n):
                apq = A[p, q]
                if apq == 0.0:
                    continue
                theta = (A[q, q] - A[p, p]) / (2.0 * apq)
                t = (1.0 if theta >= 0 else -1.0) / (abs(theta) + np.sqrt(theta * theta + 1.0))
                c = 1.0 / np.sqrt(t * t + 1.0)
                s = t * c
                for k in range(n):
                    akp = A[k, p]
                    akq = A[k, q]
                    A[k, p] = c * akp - s * akq
                    A[k, q] = s * akp + c * akq
                for k in range(n):
                    apk = A[p, k]
                    aqk = A[q, k]
                    A[p, k] = c * apk - s * aqk
                    A[q, k] = s * apk + c * aqk
                for k in range(n):
                    vkp = V[k, p]
                    vkq = V[k, q]
                    V[k, p] = c * vkp - s * vkq
                    V[k, q] = s * vkp + c * vkq
    for i in range(n):
        w[i] = A[i, i]
    # selection sort ascending (n is tiny)
    for i in range(n):
        m = i
        for j in range(i + 1, n):
            if w[j] < w[m]:
                m = j
        if m != i:
            tmp = w[i]
            w[i] = w[m]
            w[m] = tmp
            for k in range(n):
                tmp = V[k, i]
                V[k, i] = V[k, m]
                V[k, m] = tmp


@njit(cache=True)
def det3(M):
    """Determinant of a 3×3 array."""
    return (M[0, 0] * (M[1, 1] * M[2, 2] - M[1, 2] * M[2, 1])
            - M[0, 1] * (M[1, 0] * M[2, 2] - M[1, 2] * M[2, 0])
            + M[0, 2] * (M[1, 0] * M[2, 1] - M[1, 1] * M[2, 0]))


@njit(cache=True)
def null_vector3(M, v):
    """Unit vector ``v`` minimising ``|M v|`` for a 3×3 ``M`` (smallest right singular vector).

    Power iteration on ``adj(MᵀM)``, whose dominant eigenvector is that singular vector with
    ratio σ₃²/σ₂² per step. Returns False if ``M`` has rank < 2 (ambiguous null space).
    """
    S00 = M[0, 0] * M[0, 0] + M[1, 0] * M[1, 0] + M[2, 0] * M[2, 0]
    S01 = M[0, 0] * M[0, 1] + M[1, 0] * M[1, 1] + M[2, 0] * M[2, 1]
    S02 = M[0, 0] * M[0, 2] + M[1, 0] * M[1, 2] + M[2, 0] * M[2, 2]
    S11 = M[0, 1] * M[0, 1] + M[1, 1] * M[1, 1] + M[2, 1] * M[2, 1]
    S12 = M[0, 1] * M[0, 2] + M[1, 1] * M[1, 2] + M[2, 1] * M[2, 2]
    S22 = M[0, 2] * M[0, 2] + M[1, 2] * M[1, 2] + M[2, 2] * M[2, 2]
    a00 = S11 * S22 - S12 * S12
    a01 = S02 * S12 - S01 * S22
    a02 = S01 * S12 - S02 * S11
    a11 = S00 * S22 - S02 * S02
    a12 = S01 * S02 - S00 * S12
    a22 = S00 * S11 - S01 * S01
    n0 = a00 * a00 + a01 * a01 + a02 * a02
    n1 = a01 * a01 + a11 * a11 + a12 * a12
    n2 = a02 * a02 + a12 * a12 + a22 * a22
    scale = S00 + S11 + S22
    if not scale > 0.0 or not np.isfinite(scale):
        return False
    if n0 >= n1 and n0 >= n2:
        x, y, z, nn = a00, a01, a02, n0
    elif n1 >= n2:
        x, y, z, nn = a01, a11, a12, n1
    else:
        x, y, z, nn = a02, a12, a22, n2
    if not nn > 1e-28 * scale ** 4:
        return False
    for _ in range(2):
        x2 = a00 * x + a01 * y + a02 * z
        y2 = a01 * x + a11 * y + a12 * z
        z2 = a02 * x + a12 * y + a22 * z
        nrm = np.sqrt(x2 * x2 + y2 * y2 + z2 * z2)
        if not nrm > 0.0:
            break
        x, y, z = x2 / nrm, y2 / nrm, z2 / nrm
    nrm = np.sqrt(x * x + y * y + z * z)
    v[0] = x / nrm
    v[1] = y / nrm
    v[2] = z / nrm
    return True


@njit(cache=True)
def enforce_rank2(f, v):
    """Project the row-major 3×3 ``f (9,)`` onto rank 2 in place (``F ← F (I − v vᵀ)``, with
    ``v`` its smallest right singular vector, written to ``v (3,)``), then to unit norm.
    Returns False when ``F`` has rank < 2."""
    M = f.reshape(3, 3)
    if not null_vector3(M, v):
        return False
    for i in range(3):
        d = M[i, 0] * v[0] + M[i, 1] * v[1] + M[i, 2] * v[2]
        for j in range(3):
            M[i, j] -= d * v[j]
    nrm = 0.0
    for k in range(9):
        nrm += f[k] * f[k]
    nrm = np.sqrt(nrm)
    if not nrm > 0.0:
        return False
    for k in range(9):
        f[k] /= nrm
    return True


@njit(cache=True, inline="always")
def cubic_roots(c3, c2, c1, c0):
    """Real roots of ``c3 λ³ + c2 λ² + c1 λ + c0``: ``(count, r0, r1, r2)`` (unused roots 0).

    Degree drops when leading coefficients are below ``1e-12`` of the largest; three real roots
    by the trigonometric formula (one arccos, one cos), one by Cardano; each polished by two
    Newton steps."""
    r0 = r1 = r2 = 0.0
    scale = max(abs(c3), abs(c2), abs(c1), abs(c0))
    if not scale > 0.0 or not np.isfinite(scale):
        return 0, r0, r1, r2
    if abs(c3) < 1e-12 * scale:
        if abs(c2) < 1e-12 * scale:
            if abs(c1) < 1e-12 * scale:
                return 0, r0, r1, r2
            return 1, -c0 / c1, r1, r2
        disc = c1 * c1 - 4.0 * c2 * c0
        if disc < 0:
            return 0, r0, r1, r2
        sq = np.sqrt(disc)
        qq = -0.5 * (c1 + (sq if c1 >= 0 else -sq))
        if qq != 0.0:
            return 2, qq / c2, c0 / qq, r2
        return 1, qq / c2, r1, r2
    a = c2 / c3
    b = c1 / c3
    c = c0 / c3
    Q = (a * a - 3.0 * b) / 9.0
    R = (2.0 * a * a * a - 9.0 * a * b + 27.0 * c) / 54.0
    if R * R < Q * Q * Q:
        # cos(φ ± 2π/3) = −cos φ / 2 ∓ (√3/2) sin φ with φ = θ/3 ∈ [0, π/3]: one arccos, one cos
        sQ = -2.0 * np.sqrt(Q)
        cp = np.cos(np.arccos(R / np.sqrt(Q * Q * Q)) / 3.0)
        sp = np.sqrt(max(0.0, 1.0 - cp * cp)) * 0.8660254037844386
        r0 = sQ * cp - a / 3.0
        r1 = sQ * (-0.5 * cp - sp) - a / 3.0
        r2 = sQ * (-0.5 * cp + sp) - a / 3.0
        nr = 3
    else:
        A = -np.cbrt(abs(R) + np.sqrt(R * R - Q * Q * Q))
        if R < 0:
            A = -A
        B = Q / A if A != 0.0 else 0.0
        r0 = A + B - a / 3.0
        nr = 1
    for _ in range(2):  # Newton polishing
        p = ((r0 + a) * r0 + b) * r0 + c
        dp = (3.0 * r0 + 2.0 * a) * r0 + b
        r0 = r0 - p / dp if dp != 0.0 else r0
        if nr == 3:
            p = ((r1 + a) * r1 + b) * r1 + c
            dp = (3.0 * r1 + 2.0 * a) * r1 + b
            r1 = r1 - p / dp if dp != 0.0 else r1
            p = ((r2 + a) * r2 + b) * r2 + c
            dp = (3.0 * r2 + 2.0 * a) * r2 + b
            r2 = r2 - p / dp if dp != 0.0 else r2
    return nr, r0, r1, r2
