"""The bundle-adjustment problem (private): parameter layout, residuals and the sparse analytic
Jacobian that :func:`geometry.rig.bundle.bundle_adjust` hands to scipy's ``least_squares``.

Rotation updates live on SO(3): ``R = Exp(ω) R₀`` (:func:`so3_exp`, left Jacobian
:func:`left_jacobian`).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..camera import skew

__all__ = ["Problem", "so3_exp", "left_jacobian"]


def so3_exp(w) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` from axis-angle vectors ``w (..., 3)`` (radians)."""
    w = np.asarray(w, dtype=np.float64)
    th = np.linalg.norm(w, axis=-1)[..., None, None]
    S = skew(w)
    small = th < 1e-8
    ths = np.where(small, 1.0, th)
    a = np.where(small, 1.0 - th ** 2 / 6.0, np.sin(ths) / ths)
    b = np.where(small, 0.5 - th ** 2 / 24.0, (1.0 - np.cos(ths)) / ths ** 2)
    return np.eye(3) + a * S + b * (S @ S)


def left_jacobian(w):
    """``J_l(ω)`` with ``Exp(ω + δ) ≈ Exp(J_l δ) Exp(ω)``."""
    th = np.linalg.norm(w, axis=-1)[..., None, None]
    S = skew(w)
    small = th < 1e-6
    ths = np.where(small, 1.0, th)
    a = np.where(small, 0.5 - th ** 2 / 24.0, (1.0 - np.cos(ths)) / ths ** 2)
    b = np.where(small, 1.0 / 6.0 - th ** 2 / 120.0, (ths - np.sin(ths)) / ths ** 3)
    return np.eye(3) + a * S + b * (S @ S)


class Problem:
    """Index bookkeeping and the residual/Jacobian of one bundle-adjustment problem."""

    def __init__(self, x, K0, R0, t0, X0, obs, w, focal_mode, fixed):
        C, N = obs.shape
        self.C, self.K0, self.R0, self.t0 = C, K0, R0, t0
        self.focal_mode, self.fixed = focal_mode, fixed
        cam, pt = np.nonzero(obs)
        self.cam, self.pt = cam, pt
        self.obs_x = x[cam, pt]
        self.sw = np.sqrt(w[cam, pt])
        self.point_used = np.zeros(N, bool)
        self.point_used[pt] = True
        used = np.flatnonzero(self.point_used)
        self.point_index = np.full(N, -1)
        self.point_index[used] = np.arange(used.size)
        self.used = used
        self.X0 = X0[used]
        # parameter layout: [cams (6 each, free cameras only)] [focal (0, 1 or C)] [points (3 each)]
        free = np.array([c not in fixed for c in range(C)])
        self.free = free
        self.cam_slot = np.full(C, -1)
        self.cam_slot[free] = np.arange(free.sum())
        self.n_cam = 6 * int(free.sum())
        self.n_focal = {"none": 0, "shared": 1, "per_camera": C}[focal_mode]
        self.n_pts = 3 * used.size
        self.n = self.n_cam + self.n_focal + self.n_pts
        self.M = cam.size
        self._build_pattern()

    def x0(self):
        p = np.zeros(self.n)
        p[self.n_cam:self.n_cam + self.n_focal] = 1.0
        for c in range(self.C):
            if self.free[c]:
                s = self.cam_slot[c]
                p[6 * s + 3:6 * s + 6] = self.t0[c]
        p[self.n_cam + self.n_focal:] = self.X0.reshape(-1)
        return p

    def unpack(self, p):
        R, t = self.R0.copy(), self.t0.copy()
        w = np.zeros((self.C, 3))
        for c in range(self.C):
            if self.free[c]:
                s = self.cam_slot[c]
                w[c] = p[6 * s:6 * s + 3]
                t[c] = p[6 * s + 3:6 * s + 6]
        R = so3_exp(w) @ self.R0
        k = np.ones(self.C)
        if self.focal_mode == "shared":
            k[:] = p[self.n_cam]
        elif self.focal_mode == "per_camera":
            k = p[self.n_cam:self.n_cam + self.C].copy()
        K = self.K0.copy()
        K[:, 0, 0] *= k
        K[:, 1, 1] *= k
        X = p[self.n_cam + self.n_focal:].reshape(-1, 3)
        return w, R, t, k, K, X

    def _build_pattern(self):
        M, cam = self.M, self.cam
        rows, cols = [], []
        r0 = np.arange(M) * 2
        has_cam = self.free[cam]
        for d in range(2):
            r = r0 + d
            for j in range(6):
                rows.append(r[has_cam])
                cols.append(6 * self.cam_slot[cam[has_cam]] + j)
            if self.n_focal:
                rows.append(r)
                cols.append(self.n_cam + (0 if self.focal_mode == "shared" else cam))
            for j in range(3):
                rows.append(r)
                cols.append(self.n_cam + self.n_focal + 3 * self.point_index[self.pt] + j)
        self._blocks = [len(r) for r in rows]
        rows = np.concatenate(rows)
        cols = np.concatenate([np.broadcast_to(c, r.shape) for c, r in
                               zip(cols, np.split(rows, np.cumsum(self._blocks)[:-1]))])
        order = np.arange(rows.size, dtype=np.float64) + 1.0
        J = sp.csr_matrix((order, (rows, cols)), shape=(2 * M, self.n))
        self._perm = (J.data - 1.0).astype(np.int64)
        self._J = J
        self._has_cam = has_cam

    def blocks(self, p):
        """Residuals ``(M, 2)`` and Jacobian blocks w.r.t. camera ``(M,2,6)``, focal ``(M,2)``,
        point ``(M,2,3)`` (all already multiplied by √w)."""
        w, R, t, k, K, X = self.unpack(p)
        cam = self.cam
        Xp = X[self.point_index[self.pt]]
        RX = np.einsum("mij,mj->mi", R[cam], Xp)
        Xc = RX + t[cam]
        z = Xc[:, 2]
        z = np.where(np.abs(z) < 1e-9, np.where(z < 0, -1e-9, 1e-9), z)
        fx, fy = K[cam, 0, 0], K[cam, 1, 1]
        u = fx * Xc[:, 0] / z + K[cam, 0, 2]
        v = fy * Xc[:, 1] / z + K[cam, 1, 2]
        sw = self.sw
        r = np.stack([u, v], -1) - self.obs_x
        r *= sw[:, None]
        # d(u,v)/dXc
        D = np.zeros((self.M, 2, 3))
        D[:, 0, 0] = fx / z
        D[:, 0, 2] = -fx * Xc[:, 0] / z ** 2
        D[:, 1, 1] = fy / z
        D[:, 1, 2] = -fy * Xc[:, 1] / z ** 2
        D *= sw[:, None, None]
        Jp = D @ R[cam]
        Jl = left_jacobian(w)[cam]
        Jw = -D @ skew(RX) @ Jl
        Jc = np.concatenate([Jw, D], -1)
        k_c = k[cam]
        Jf = np.stack([(u - K[cam, 0, 2]) / k_c, (v - K[cam, 1, 2]) / k_c], -1) * sw[:, None]
        return r, Jc, Jf, Jp

    def residual(self, p):
        return self.blocks(p)[0].reshape(-1)

    def jacobian(self, p):
        _, Jc, Jf, Jp = self.blocks(p)
        hc = self._has_cam
        parts = []
        for d in range(2):
            for j in range(6):
                parts.append(Jc[hc, d, j])
            if self.n_focal:
                parts.append(Jf[:, d])
            for j in range(3):
                parts.append(Jp[:, d, j])
        data = np.concatenate(parts)
        J = self._J.copy()
        J.data = data[self._perm]
        return J

    def camera_block(self, Jc, Jf):
        """Dense camera-side Jacobian ``(M, 2, n_cam + n_focal)`` from the blocks."""
        nc = self.n_cam + self.n_focal
        A = np.zeros((self.M, 2, nc))
        hc = self._has_cam
        rows = np.flatnonzero(hc)
        slot = self.cam_slot[self.cam[hc]]
        for j in range(6):
            A[rows, :, 6 * slot + j] = Jc[hc, :, j]
        if self.n_focal:
            fcol = self.n_cam + (np.zeros(self.M, int) if self.focal_mode == "shared"
                                 else self.cam)
            A[np.arange(self.M), :, fcol] = Jf
        return A

    def normal_equations(self, A, Jp, r, omega):
        """Gauss–Newton blocks with per-observation weights ``omega (M,)``: ``U (nc,nc)``,
        ``V (P,3,3)``, ``W (P,nc,3)``, gradients ``gc (nc,)``, ``gp (P,3)``."""
        P = self.used.size
        pts = self.point_index[self.pt]
        Aw = A * omega[:, None, None]
        Jw = Jp * omega[:, None, None]
        U = np.einsum("mdi,mdj->ij", Aw, A)
        gc = np.einsum("mdi,md->i", Aw, r)

        def acc(vals):  # (M, k) → (P, k) sums per point
            return np.stack([np.bincount(pts, vals[:, i], minlength=P)
                             for i in range(vals.shape[1])], -1)

        V = acc(np.einsum("mdi,mdj->mij", Jw, Jp).reshape(self.M, 9)).reshape(P, 3, 3)
        nc = A.shape[-1]
        W = acc(np.einsum("mdi,mdj->mij", Aw, Jp).reshape(self.M, nc * 3)).reshape(P, nc, 3)
        gp = acc(np.einsum("mdi,md->mi", Jw, r))
        return U, V, W, gc, gp

    def focal_std(self, p, inlier, sigma):
        """Marginal std of each camera's focal (px) from the Schur complement on cameras."""
        if not self.n_focal:
            return np.zeros(self.C)
        r, Jc, Jf, Jp = self.blocks(p)
        A = self.camera_block(Jc, Jf)
        U, V, W, _, _ = self.normal_equations(A, Jp, r, inlier.astype(np.float64))
        Vinv = np.linalg.pinv(V)
        S = U - np.einsum("nij,njk,nlk->il", W, Vinv, W)
        cov = np.linalg.pinv(S, rcond=1e-12, hermitian=True) * sigma ** 2
        var = np.diag(cov)[self.n_cam:]
        f0 = self.K0[:, 0, 0]
        std = np.sqrt(np.maximum(var, 0.0))
        return f0 * (std[0] if self.focal_mode == "shared" else std)
