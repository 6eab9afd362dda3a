"""The skeleton/time least-squares problem and its solver: iteratively reweighted Gauss–Newton on
the banded normal equations.

Unknowns: the 3D joints ``X (T, J, 3)``, flattened frame-major (point ``p = t·J + j``). Residual
groups, each already divided by its standard deviation (so the cost is a negative log-likelihood):

- reprojection of every inlier observation, ``(π_c(X_p) − x) / σ`` (2 rows, one group),
- bone length, ``(|X_a − X_b| − L) / σ_bone`` (1 row per bone and frame),
- acceleration ``(X_{t+1} − 2 X_t + X_{t−1}) / σ_acc`` and velocity ``(X_{t+1} − X_t) / σ_vel``
  (3 rows per joint and frame, one group).

Every group has the soft-L1 loss ``ρ(s) = 2 f² (√(1 + s/f²) − 1)`` of its squared norm ``s``
(``f`` the group kind's ``loss_scale``), minimised by IRLS: each Gauss–Newton step weighs a group
by ``ρ'(s) = 1/√(1 + s/f²)``.

Why our own solver rather than ``scipy.optimize.least_squares``: the normal matrix is very
sparse (each point couples with its bone neighbours and its joint at frames t±2) and nearly
block diagonal (the 3×3 reprojection block of each point dominates), so conjugate gradients
preconditioned by the inverse 3×3 diagonal blocks solve a step in tens of sparse products,
where a direct factorisation (banded Cholesky, SuperLU) of a 1000-frame trial takes seconds and
``least_squares``' LSMR, unpreconditioned, struggles with the depth-along-the-ray conditioning.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class Problem:
    """Terms of one solve. ``obs_cam/obs_pt (n,)`` camera and point of each observation,
    ``obs_xy (n, 2)`` px, ``obs_inv_sigma (n,)`` 1/px; ``KR (C, 3, 3)`` = K R, ``Kt (C, 3)`` = K t;
    ``bone_a/bone_b/bone_len/bone_w (m,)`` point indices, target length and 1/σ_bone;
    ``acc (k, 3)`` point triples with ``acc_w (k,)`` = 1/σ_acc; ``vel (q, 2)`` pairs, ``vel_w``;
    ``loss_scale`` per group kind (σ units)."""

    num_points: int
    J: int
    KR: np.ndarray
    Kt: np.ndarray
    obs_cam: np.ndarray
    obs_pt: np.ndarray
    obs_xy: np.ndarray
    obs_inv_sigma: np.ndarray
    bone_a: np.ndarray
    bone_b: np.ndarray
    bone_len: np.ndarray
    bone_w: np.ndarray
    acc: np.ndarray
    acc_w: np.ndarray
    vel: np.ndarray
    vel_w: np.ndarray
    reproj_scale: float = 2.0
    prior_scale: float = 2.0


def _soft_l1(s, f):
    """Cost and IRLS weight of the soft-L1 loss of squared norms ``s``."""
    z = s / (f * f)
    root = np.sqrt(1.0 + z)
    return 2.0 * f * f * (root - 1.0), 1.0 / root


def _reprojection(pb: Problem, X):
    """Scaled residuals ``(n, 2)`` and their Jacobians ``(n, 2, 3)`` w.r.t. the point."""
    KR = pb.KR[pb.obs_cam]
    h = np.einsum("nab,nb->na", KR, X[pb.obs_pt]) + pb.Kt[pb.obs_cam]
    z = h[:, 2]
    z = np.where(np.abs(z) < 1e-12, 1e-12, z)
    uv = h[:, :2] / z[:, None]
    jac = (KR[:, :2, :] - uv[:, :, None] * KR[:, 2:3, :]) / z[:, None, None]
    s = pb.obs_inv_sigma[:, None]
    return (uv - pb.obs_xy) * s, jac * s[:, :, None]


def _bones(pb: Problem, X):
    d = X[pb.bone_a] - X[pb.bone_b]
    ln = np.linalg.norm(d, axis=-1)
    u = d / np.maximum(ln, 1e-12)[:, None]
    return (ln - pb.bone_len) * pb.bone_w, u * pb.bone_w[:, None]


def evaluate(pb: Problem, X) -> float:
    """Total robust cost at ``X (P, 3)``."""
    cost = 0.0
    if len(pb.obs_pt):
        r, _ = _reprojection(pb, X)
        cost += _soft_l1((r * r).sum(-1), pb.reproj_scale)[0].sum()
    if len(pb.bone_a):
        r, _ = _bones(pb, X)
        cost += _soft_l1(r * r, pb.prior_scale)[0].sum()
    if len(pb.acc):
        r = (X[pb.acc[:, 0]] - 2 * X[pb.acc[:, 1]] + X[pb.acc[:, 2]]) * pb.acc_w[:, None]
        cost += _soft_l1((r * r).sum(-1), pb.prior_scale)[0].sum()
    if len(pb.vel):
        r = (X[pb.vel[:, 1]] - X[pb.vel[:, 0]]) * pb.vel_w[:, None]
        cost += _soft_l1((r * r).sum(-1), pb.prior_scale)[0].sum()
    return float(cost)


class _Normal:
    """The symmetric ``3P × 3P`` normal matrix collected as 3×3 blocks (COO), its 3×3 diagonal
    blocks (for the block-Jacobi preconditioner) and the gradient."""

    def __init__(self, P):
        self.P = P
        self.rows, self.cols, self.vals = [], [], []
        self.diag = np.zeros((P, 3, 3))
        self.g = np.zeros(3 * P)
        self.ii, self.kk = np.meshgrid(np.arange(3), np.arange(3), indexing="ij")

    def block(self, p, q, B):
        """Add blocks ``B (n, 3, 3)`` at (point p, point q) and, where ``p != q``, ``Bᵀ`` at
        (q, p)."""
        self.rows.append((3 * p[:, None, None] + self.ii).ravel())
        self.cols.append((3 * q[:, None, None] + self.kk).ravel())
        self.vals.append(B.ravel())
        same = p == q
        if same.any():
            idx = (9 * p[same, None] + np.arange(9)).ravel()
            self.diag += np.bincount(idx, B[same].ravel(),
                                     minlength=9 * self.P).reshape(self.P, 3, 3)
        off = ~same
        if off.any():
            self.rows.append((3 * q[off, None, None] + self.ii).ravel())
            self.cols.append((3 * p[off, None, None] + self.kk).ravel())
            self.vals.append(np.swapaxes(B[off], 1, 2).ravel())

    def grad(self, p, v):
        idx = (3 * p[:, None] + np.arange(3)).ravel()
        self.g += np.bincount(idx, v.ravel(), minlength=self.g.size)

    def matrix(self):
        n = 3 * self.P
        if not self.rows:
            return sp.csr_matrix((n, n))
        return sp.coo_matrix((np.concatenate(self.vals), (np.concatenate(self.rows),
                              np.concatenate(self.cols))), shape=(n, n)).tocsr()


def _normal_equations(pb: Problem, X):
    """IRLS-weighted ``JᵀWJ`` and ``JᵀWr`` at ``X``."""
    nb = _Normal(pb.num_points)
    if len(pb.obs_pt):
        r, Jr = _reprojection(pb, X)
        _, w = _soft_l1((r * r).sum(-1), pb.reproj_scale)
        nb.block(pb.obs_pt, pb.obs_pt, w[:, None, None] * np.einsum("nra,nrb->nab", Jr, Jr))
        nb.grad(pb.obs_pt, w[:, None] * np.einsum("nra,nr->na", Jr, r))
    if len(pb.bone_a):
        r, Jb = _bones(pb, X)
        _, w = _soft_l1(r * r, pb.prior_scale)
        outer = w[:, None, None] * Jb[:, :, None] * Jb[:, None, :]
        a, b = pb.bone_a, pb.bone_b
        nb.block(a, a, outer)
        nb.block(b, b, outer)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        nb.block(lo, hi, -outer)
        g = (w * r)[:, None] * Jb
        nb.grad(a, g)
        nb.grad(b, -g)
    eye = np.eye(3)
    for pts, coef, wts in ((pb.acc, (1.0, -2.0, 1.0), pb.acc_w),
                           (pb.vel, (-1.0, 1.0), pb.vel_w)):
        if not len(pts):
            continue
        r = sum(c * X[pts[:, k]] for k, c in enumerate(coef)) * wts[:, None]
        _, w = _soft_l1((r * r).sum(-1), pb.prior_scale)
        ww = w * wts * wts
        for k, ck in enumerate(coef):
            nb.grad(pts[:, k], (w * wts * ck)[:, None] * r)
            for m in range(k, len(coef)):
                B = (ww * ck * coef[m])[:, None, None] * eye
                nb.block(pts[:, k], pts[:, m], B)
    return nb


def _pcg(A, extra, Dinv, b, x, maxiter, rtol=1e-10):
    """Conjugate gradients on ``(A + diag(extra)) x = b`` preconditioned by the 3×3 blocks
    ``Dinv (P, 3, 3)``. Written out (no BLAS calls) so that a busy machine's BLAS threads do
    not slow the tens of short vector products."""
    def prec(v):
        return np.einsum("pab,pb->pa", Dinv, v.reshape(-1, 3)).ravel()

    r = b - (A @ x + extra * x)
    z = prec(r)
    p = z.copy()
    rz = float((r * z).sum())
    stop = rtol * rtol * float((b * prec(b)).sum())
    for _ in range(maxiter):
        if rz <= stop:
            break
        Ap = A @ p + extra * p
        pAp = float((p * Ap).sum())
        if not pAp > 0:
            break
        alpha = rz / pAp
        x = x + alpha * p
        r = r - alpha * Ap
        z = prec(r)
        rz_new = float((r * z).sum())
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x


def _damped_step(A, diag, g, lam, floor, maxiter):
    """Solve ``(A + λ·diag(A) + floor·I) δ = −g`` by conjugate gradients, preconditioned by the
    inverse 3×3 diagonal blocks."""
    extra = lam * A.diagonal() + floor
    D = diag + extra.reshape(-1, 3)[:, :, None] * np.eye(3)
    try:
        Dinv = np.linalg.inv(D)
    except np.linalg.LinAlgError:
        Dinv = np.linalg.pinv(D)
    x0 = -np.einsum("pab,pb->pa", Dinv, g.reshape(-1, 3)).ravel()
    return _pcg(A, extra, Dinv, -g, x0, maxiter)


def solve(pb: Problem, X0, *, max_iter: int = 20, tol: float = 1e-10, cg_iter: int = 300):
    """Minimise the robust cost from ``X0 (P, 3)`` by damped IRLS Gauss–Newton.

    Returns ``(X, iterations, cost)``. Each step solves the damped normal equations by
    block-Jacobi preconditioned conjugate gradients; it is accepted when the robust cost falls,
    otherwise the damping grows tenfold (Levenberg). Stops when the step is below ``tol`` times
    the scene's size or the relative cost change is below 1e-12.
    """
    X = np.array(X0, dtype=np.float64)
    cost = evaluate(pb, X)
    lam = 1e-6
    size = max(1.0, float(np.ptp(X, axis=0).max()) if len(X) else 1.0)
    it = 0
    for it in range(1, max_iter + 1):
        nb = _normal_equations(pb, X)
        A = nb.matrix()
        floor = 1e-12 * max(1.0, float(A.diagonal().max()) if A.shape[0] else 1.0)
        improved = False
        while lam < 1e8:
            step = _damped_step(A, nb.diag, nb.g, lam, floor, cg_iter)
            Xn = X + step.reshape(-1, 3)
            cn = evaluate(pb, Xn)
            if np.isfinite(cn) and cn <= cost:
                improved = True
                break
            lam *= 10.0
        if not improved:
            break
        done = (np.abs(step).max() < tol * size) or (cost - cn <= 1e-12 * max(cost, 1e-300))
        X, cost = Xn, cn
        lam = max(lam / 10.0, 1e-9)
        if done:
            break
    return X, it, cost
