"""The skeleton/time least-squares problem and its solver: iteratively reweighted Gauss–Newton
with matrix-free, block-Jacobi preconditioned conjugate gradients.

Unknowns: the 3D joints ``X (T, J, 3)``. Residual groups, each divided by its standard deviation
(so the cost is a negative log-likelihood):

- reprojection of every inlier observation, ``(π_c(X_tj) − x) / σ`` (2 rows, one group),
- bone length, ``(|X_ta − X_tb| − L) / σ_bone`` (1 row per bone and frame),
- acceleration ``(X_{t+1} − 2 X_t + X_{t−1}) / σ_acc`` and velocity ``(X_{t+1} − X_t) / σ_vel``
  (3 rows per joint and frame, one group).

Every group has the soft-L1 loss ``ρ(s) = 2 f² (√(1 + s/f²) − 1)`` of its squared norm ``s``
(``f`` = ``loss_scale``), minimised by IRLS: each Gauss–Newton step weighs a group by
``ρ'(s) = 1/√(1 + s/f²)``.

Why our own solver rather than ``scipy.optimize.least_squares`` with a ``jac_sparsity``: the
normal matrix is nearly block diagonal (each joint's 3×3 reprojection block dominates; bones
couple joints of a frame, the time terms frames t±2), so conjugate gradients preconditioned by
the inverse 3×3 diagonal blocks converge in tens of products, and each product is a few array
operations on the ``(T, J, 3)`` grid — no sparse matrix is ever built. A 1000-frame trial's step
costs tens of milliseconds; a direct sparse factorisation (banded Cholesky, SuperLU) of the same
system took seconds, and ``least_squares``' unpreconditioned LSMR struggles with the
depth-along-the-ray conditioning.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Problem:
    """Terms of one solve on a ``(T, J)`` grid of points (point ``p = t·J + j``).

    ``obs_cam/obs_pt (n,)`` camera and point of each observation, ``obs_xy (n, 2)`` px,
    ``obs_inv_sigma (n,)`` 1/px; ``KR (C, 3, 3)`` = K R, ``Kt (C, 3)`` = K t; ``bones (B, 2)``,
    ``bone_len (T, B)`` target lengths, ``bone_w (T, B)`` 1/σ_bone (0 = no term);
    ``acc_w (T−2, J)`` 1/σ of the acceleration at frames (t, t+1, t+2) (0 = no term);
    ``vel_w (T−1, J)`` of the velocity at (t, t+1); ``loss_scale`` in σ units."""

    T: int
    J: int
    KR: np.ndarray
    Kt: np.ndarray
    obs_cam: np.ndarray
    obs_pt: np.ndarray
    obs_xy: np.ndarray
    obs_inv_sigma: np.ndarray
    bones: np.ndarray
    bone_len: np.ndarray
    bone_w: np.ndarray
    acc_w: np.ndarray
    vel_w: np.ndarray
    loss_scale: float = 2.0


def _soft_l1(s, f):
    """Cost and IRLS weight of the soft-L1 loss of squared norms ``s``."""
    z = s / (f * f)
    root = np.sqrt(1.0 + z)
    return 2.0 * f * f * (root - 1.0), 1.0 / root


def _reprojection(pb: Problem, X):
    """Scaled residuals ``(n, 2)`` and Jacobians ``(n, 2, 3)``; ``X (P, 3)``."""
    KR = pb.KR[pb.obs_cam]
    h = (KR * X[pb.obs_pt][:, None, :]).sum(-1) + pb.Kt[pb.obs_cam]
    z = h[:, 2]
    z = np.where(np.abs(z) < 1e-12, 1e-12, z)
    uv = h[:, :2] / z[:, None]
    s = pb.obs_inv_sigma / z
    jac = (KR[:, :2, :] - uv[:, :, None] * KR[:, 2:3, :]) * s[:, None, None]
    return (uv - pb.obs_xy) * pb.obs_inv_sigma[:, None], jac


def _bones(pb: Problem, G):
    """Scaled residuals ``(T, B)`` and unit directions ``(T, B, 3)``; ``G (T, J, 3)``."""
    d = G[:, pb.bones[:, 0]] - G[:, pb.bones[:, 1]]
    ln = np.sqrt((d * d).sum(-1))
    u = d / np.maximum(ln, 1e-12)[..., None]
    return (ln - pb.bone_len) * pb.bone_w, u


def _acc(G):
    return G[2:] - 2.0 * G[1:-1] + G[:-2]


def _vel(G):
    return G[1:] - G[:-1]


def evaluate(pb: Problem, X) -> float:
    """Total robust cost at ``X (P, 3)``."""
    G = X.reshape(pb.T, pb.J, 3)
    f = pb.loss_scale
    cost = 0.0
    if len(pb.obs_pt):
        r, _ = _reprojection(pb, X)
        cost += _soft_l1((r * r).sum(-1), f)[0].sum()
    if len(pb.bones):
        r, _ = _bones(pb, G)
        cost += _soft_l1(r * r, f)[0].sum()
    for w, op in ((pb.acc_w, _acc), (pb.vel_w, _vel)):
        if w.size and w.any():
            r = op(G) * w[..., None]
            cost += _soft_l1((r * r).sum(-1), f)[0].sum()
    return float(cost)


class _Normal:
    """The IRLS-weighted normal operator ``JᵀWJ`` at a point, its 3×3 diagonal blocks and the
    gradient ``JᵀWr``, all on the ``(T, J, 3)`` grid."""

    def __init__(self, pb: Problem, X):
        T, J, f = pb.T, pb.J, pb.loss_scale
        P = T * J
        self.pb = pb
        self.g = np.zeros((T, J, 3))
        diag = np.zeros((P, 3, 3))
        if len(pb.obs_pt):
            r, Jr = _reprojection(pb, X)
            _, w = _soft_l1((r * r).sum(-1), f)
            H = w[:, None, None] * (Jr[:, :, :, None] * Jr[:, :, None, :]).sum(1)
            gr = w[:, None] * (Jr * r[:, :, None]).sum(1)
            for k in range(9):
                diag[:, k // 3, k % 3] += np.bincount(pb.obs_pt, H[:, k // 3, k % 3], P)
            for k in range(3):
                self.g.reshape(P, 3)[:, k] += np.bincount(pb.obs_pt, gr[:, k], P)
        self.H = diag.copy()                       # reprojection blocks (block diagonal)
        G = X.reshape(T, J, 3)
        D = diag.reshape(T, J, 3, 3)
        self.bc = None
        if len(pb.bones):
            r, u = _bones(pb, G)
            _, w = _soft_l1(r * r, f)
            self.bc = w * pb.bone_w ** 2                                      # (T, B)
            self.bu = u
            gb = (w * r * pb.bone_w)[..., None] * u
            outer = self.bc[..., None, None] * u[..., :, None] * u[..., None, :]
            for b, (ja, jb) in enumerate(pb.bones):
                self.g[:, ja] += gb[:, b]
                self.g[:, jb] -= gb[:, b]
                D[:, ja] += outer[:, b]
                D[:, jb] += outer[:, b]
        eye = np.eye(3)
        self.ac = self.vc = None
        if pb.acc_w.size and pb.acc_w.any():
            r = _acc(G) * pb.acc_w[..., None]
            _, w = _soft_l1((r * r).sum(-1), f)
            self.ac = w * pb.acc_w ** 2                                       # (T-2, J)
            q = (w * pb.acc_w)[..., None] * r
            self.g[2:] += q
            self.g[1:-1] -= 2.0 * q
            self.g[:-2] += q
            dd = np.zeros((T, J))
            dd[2:] += self.ac
            dd[1:-1] += 4.0 * self.ac
            dd[:-2] += self.ac
            D += dd[..., None, None] * eye
        if pb.vel_w.size and pb.vel_w.any():
            r = _vel(G) * pb.vel_w[..., None]
            _, w = _soft_l1((r * r).sum(-1), f)
            self.vc = w * pb.vel_w ** 2                                       # (T-1, J)
            q = (w * pb.vel_w)[..., None] * r
            self.g[1:] += q
            self.g[:-1] -= q
            dd = np.zeros((T, J))
            dd[1:] += self.vc
            dd[:-1] += self.vc
            D += dd[..., None, None] * eye
        self.diag = diag
        self.g = self.g.reshape(-1)

    def matvec(self, v):
        """``JᵀWJ v`` for ``v (3P,)``."""
        pb = self.pb
        V = v.reshape(pb.T, pb.J, 3)
        out = _blockmul(self.H, v).reshape(pb.T, pb.J, 3)
        if self.bc is not None:
            d = V[:, pb.bones[:, 0]] - V[:, pb.bones[:, 1]]
            u = self.bu
            dot = u[..., 0] * d[..., 0] + u[..., 1] * d[..., 1] + u[..., 2] * d[..., 2]
            s = (self.bc * dot)[..., None] * u                                   # (T, B, 3)
            for b, (ja, jb) in enumerate(pb.bones):
                out[:, ja] += s[:, b]
                out[:, jb] -= s[:, b]
        if self.ac is not None:
            q = self.ac[..., None] * _acc(V)
            out[2:] += q
            out[1:-1] -= 2.0 * q
            out[:-2] += q
        if self.vc is not None:
            q = self.vc[..., None] * _vel(V)
            out[1:] += q
            out[:-1] -= q
        return out.reshape(-1)


def _blockmul(M, v):
    """``M (P, 3, 3)`` times ``v (3P,)`` block by block → ``(3P,)``."""
    v = v.reshape(-1, 1, 3)
    return (M[:, :, 0] * v[:, :, 0] + M[:, :, 1] * v[:, :, 1]
            + M[:, :, 2] * v[:, :, 2]).ravel()


def _pcg(op, extra, Dinv, b, x, maxiter, rtol=1e-8):
    """Conjugate gradients on ``(op + diag(extra)) x = b`` preconditioned by the 3×3 blocks
    ``Dinv (P, 3, 3)``; plain array operations (no BLAS calls, whose threads slow short vector
    products on a busy machine)."""
    def prec(v):
        return _blockmul(Dinv, v)

    r = b - (op(x) + extra * x)
    z = prec(r)
    p = z.copy()
    rz = float((r * z).sum())
    stop = rtol * rtol * float((b * prec(b)).sum())
    for _ in range(maxiter):
        if rz <= stop:
            break
        Ap = op(p) + extra * p
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


def solve(pb: Problem, X0, *, max_iter: int = 20, tol: float = 1e-7, rtol: float = 1e-4,
          cg_iter: int = 200):
    """Minimise the robust cost from ``X0 (P, 3)`` by damped IRLS Gauss–Newton.

    Returns ``(X, iterations, cost)``. Each step solves the Levenberg-damped normal equations
    ``(A + λ diag(A)) δ = −g`` by preconditioned conjugate gradients; it is accepted when the
    robust cost falls, otherwise λ grows tenfold. Stops when no joint moves more than ``tol``
    times the scene's size, or the cost falls by less than ``rtol`` of itself.
    """
    X = np.array(X0, dtype=np.float64)
    cost = evaluate(pb, X)
    lam = 1e-6
    size = max(1.0, float(np.ptp(X, axis=0).max()) if len(X) else 1.0)
    it = 0
    for it in range(1, max_iter + 1):
        nb = _Normal(pb, X)
        D = nb.diag
        dA = np.einsum("pii->pi", D).ravel()
        floor = 1e-12 * max(1.0, float(dA.max()) if dA.size else 1.0)
        improved = False
        while lam < 1e8:
            extra = lam * dA + floor
            Dd = D + extra.reshape(-1, 3)[:, :, None] * np.eye(3)
            Dinv = np.linalg.inv(Dd)
            x0 = -_blockmul(Dinv, nb.g)
            step = _pcg(nb.matvec, extra, Dinv, -nb.g, x0, cg_iter)
            Xn = X + step.reshape(-1, 3)
            cn = evaluate(pb, Xn)
            if np.isfinite(cn) and cn <= cost:
                improved = True
                break
            lam *= 10.0
        if not improved:
            break
        done = (np.abs(step).max() < tol * size) or (cost - cn <= rtol * cost)
        X, cost = Xn, cn
        lam = max(lam / 10.0, 1e-9)
        if done:
            break
    return X, it, cost
