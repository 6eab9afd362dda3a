"""Bundle adjustment of a static rig and per-frame points with ``scipy.optimize.least_squares``.

Model: observation ``x[c, n]`` (px) of point ``X[n]`` in camera ``c`` is
``π(K_c (R_c X_n + t_c))``; the residual is ``√w (π(...) − x)`` in px and a robust loss
(``soft_l1``, ``huber``, ``cauchy``, ``arctan`` or ``linear``) with ``f_scale`` px bounds the
influence of outliers. Parameters: per camera a rotation update ``ω`` (``R = Exp(ω) R₀``, so
no Rodrigues singularity at π) and ``t``; optionally a focal multiplier ``k`` (``f = k f₀``,
aspect ratio and principal point kept), shared by all cameras or one per camera; every point
``X_n`` (one per frame-joint). Camera 0 is held fixed (it defines the world); the overall scale
is a gauge freedom left to the damping and fixed by the caller afterwards.

The Jacobian is analytic and sparse (each residual row touches one camera and one point), passed
to ``least_squares`` as a CSR matrix with ``tr_solver='lsmr'`` and ``x_scale='jac'``. The
marginal standard deviation of the focal multiplier comes from the Schur complement of the
Gauss–Newton matrix on the camera parameters (points eliminated in closed form), scaled by a
robust estimate of the residual variance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import least_squares

from .camera import skew
from ._validate import as_array, as_mask, as_matrix, as_points, as_weights, check_positive

__all__ = ["BundleResult", "bundle_adjust", "so3_exp"]

_LOSSES = ("linear", "soft_l1", "huber", "cauchy", "arctan")
_FOCAL_MODES = ("none", "shared", "per_camera")


@dataclass(frozen=True)
class BundleResult:
    """Refined rig and points.

    ``R (C,3,3)``, ``t (C,3)``, ``K (C,3,3)``; ``X (N,3)`` (points with fewer than two
    observations are left as given and flagged in ``point_valid (N,)``); ``residuals (C,N)``
    reprojection error in px (NaN where not observed); ``focal_std (C,)`` standard deviation of
    each camera's focal length in px (0 when the focal was not refined, inf when unconstrained);
    ``cost`` final robust cost; ``num_evaluations``; ``valid`` — the optimisation produced
    finite values and at least one point.
    """

    R: np.ndarray
    t: np.ndarray
    K: np.ndarray
    X: np.ndarray
    residuals: np.ndarray
    point_valid: np.ndarray
    focal_std: np.ndarray
    cost: float
    num_evaluations: int
    valid: bool


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


def _left_jacobian(w):
    """``J_l(ω)`` with ``Exp(ω + δ) ≈ Exp(J_l δ) Exp(ω)``."""
    th = np.linalg.norm(w, axis=-1)[..., None, None]
    S = skew(w)
    small = th < 1e-6
    ths = np.where(small, 1.0, th)
    a = np.where(small, 0.5 - th ** 2 / 24.0, (1.0 - np.cos(ths)) / ths ** 2)
    b = np.where(small, 1.0 / 6.0 - th ** 2 / 120.0, (ths - np.sin(ths)) / ths ** 3)
    return np.eye(3) + a * S + b * (S @ S)


class _Problem:
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
        Jl = _left_jacobian(w)[cam]
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


def _rho(s, loss):
    """Robust loss ``ρ(s)`` and weight ``ρ'(s)`` of squared scaled residuals ``s`` (scipy's)."""
    if loss == "linear":
        return s, np.ones_like(s)
    if loss == "soft_l1":
        q = np.sqrt(1.0 + s)
        return 2.0 * (q - 1.0), 1.0 / q
    if loss == "huber":
        big = s > 1.0
        sq = np.sqrt(np.where(big, s, 1.0))
        return np.where(big, 2.0 * sq - 1.0, s), np.where(big, 1.0 / sq, 1.0)
    if loss == "cauchy":
        return np.log1p(s), 1.0 / (1.0 + s)
    return np.arctan(s), 1.0 / (1.0 + s * s)  # arctan


def _solve_lm(prob, p, loss, f_scale, max_iter, ftol, xtol):
    """Levenberg–Marquardt with the points eliminated by the Schur complement; the robust
    loss enters as iteratively re-weighted least squares (weights ``ρ'``). Returns the
    parameters, the final cost and the number of residual evaluations."""
    f2 = f_scale ** 2
    nc = prob.n_cam + prob.n_focal

    def cost_of(r):
        return 0.5 * f2 * _rho((r ** 2).sum(-1) / f2, loss)[0].sum()

    r, Jc, Jf, Jp = prob.blocks(p)
    cost = cost_of(r)
    lam, nev = 1e-3, 1
    for _ in range(max_iter):
        omega = _rho((r ** 2).sum(-1) / f2, loss)[1]
        A = prob.camera_block(Jc, Jf)
        U, V, W, gc, gp = prob.normal_equations(A, Jp, r, omega)
        improved = False
        while nev < 10 * max_iter:
            Ud = U + lam * np.diag(np.maximum(np.diag(U), 1e-9))
            Vd = V.copy()
            dv = np.maximum(np.diagonal(V, axis1=1, axis2=2), 1e-9)
            Vd[:, [0, 1, 2], [0, 1, 2]] += lam * dv
            Vinv = np.linalg.inv(Vd)
            WV = np.einsum("nij,njk->nik", W, Vinv)
            S = Ud - np.einsum("nik,nlk->il", WV, W)
            b = gc - np.einsum("nik,nk->i", WV, gp)
            try:
                dc = np.linalg.solve(S, -b) if nc else np.zeros(0)
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            dp = -np.einsum("nij,nj->ni", Vinv, gp + np.einsum("nki,k->ni", W, dc))
            step = np.concatenate([dc, dp.reshape(-1)])
            p_new = p + step
            r_new, Jc_n, Jf_n, Jp_n = prob.blocks(p_new)
            nev += 1
            c_new = cost_of(r_new)
            if np.isfinite(c_new) and c_new < cost:
                small = (cost - c_new) < ftol * cost or \
                    np.linalg.norm(step) < xtol * (np.linalg.norm(p) + xtol)
                p, r, Jc, Jf, Jp, cost = p_new, r_new, Jc_n, Jf_n, Jp_n, c_new
                lam = max(lam / 3.0, 1e-12)
                improved = True
                break
            lam *= 5.0
            if lam > 1e12:
                break
        if not improved or small:
            break
    return p, float(cost), nev


def bundle_adjust(x, K, R, t, X, mask=None, weights=None, *, loss: str = "soft_l1",
                  f_scale: float = 2.0, refine_focal: str = "none", fixed_cameras=(0,),
                  max_nfev: int = 50, ftol: float = 1e-8, xtol: float = 1e-10,
                  inlier_threshold: float | None = None, solver: str = "schur",
                  verbose: int = 0) -> BundleResult:
    """Refine a static rig and its points by minimising the robust reprojection error.

    Args:
        x: ``(C, N, 2)`` observed pixels (NaN = missing). N counts every frame-joint.
        K: ``(C, 3, 3)`` (or ``(3, 3)``) initial intrinsics. R: ``(C, 3, 3)``, t: ``(C, 3)``
            initial world→camera poses. X: ``(N, 3)`` initial points (NaN = unknown).
        mask: ``(C, N)`` bool, observations to use. weights: ``(C, N)`` confidence weights
            (multiply the squared residuals).
        loss: scipy robust loss; f_scale: its soft threshold in px.
        refine_focal: ``"none"``, ``"shared"`` (one focal multiplier for all cameras) or
            ``"per_camera"``.
        fixed_cameras: cameras held fixed (camera 0 defines the world).
        inlier_threshold: px; observations above it are excluded when estimating the focal's
            standard deviation (default ``3 f_scale``).
        solver: ``"schur"`` (default: Levenberg–Marquardt with the points eliminated by the
            Schur complement and the robust loss as IRLS — exact steps, fast on 10⁵ points) or
            ``"scipy"`` (``scipy.optimize.least_squares``, ``trf`` with the sparse analytic
            Jacobian and ``lsmr``; the reference, slower). ``max_nfev`` bounds the iterations.
    Returns:
        :class:`BundleResult`. Raises ``ValueError`` on bad arguments; a problem without any
        point seen twice gives ``valid=False`` with the inputs returned unchanged.
    """
    x = as_points("x", x)
    if x.ndim != 3:
        raise ValueError(f"x: expected shape (C, N, 2), got shape {x.shape}")
    C, N = x.shape[:2]
    K = as_matrix("K", K, 3, 3, (C,))
    R = as_matrix("R", R, 3, 3, (C,))
    t = as_array("t", t, tail=(3,), finite=True)
    if t.shape != (C, 3):
        raise ValueError(f"t: expected shape ({C}, 3), got shape {t.shape}")
    X = as_points("X", X, 3)
    if X.shape != (N, 3):
        raise ValueError(f"X: expected shape ({N}, 3), got shape {X.shape}")
    if loss not in _LOSSES:
        raise ValueError(f"loss: expected one of {_LOSSES}, got {loss!r}")
    if refine_focal not in _FOCAL_MODES:
        raise ValueError(f"refine_focal: expected one of {_FOCAL_MODES}, got {refine_focal!r}")
    f_scale = check_positive("f_scale", f_scale)
    thr = 3.0 * f_scale if inlier_threshold is None else check_positive("inlier_threshold",
                                                                         inlier_threshold)
    m = as_mask("mask", mask, (C, N))
    w = as_weights("weights", weights, (C, N))
    obs = m & np.all(np.isfinite(x), -1) & (w > 0) & np.all(np.isfinite(X), -1)[None]
    obs &= (obs.sum(0) >= 2)[None]
    fixed = {int(c) for c in np.atleast_1d(fixed_cameras) if 0 <= int(c) < C}
    empty = dict(R=R.copy(), t=t.copy(), K=K.copy(), X=np.where(np.isfinite(X), X, 0.0),
                 residuals=np.full((C, N), np.nan), point_valid=np.zeros(N, bool),
                 focal_std=np.full(C, np.inf if refine_focal != "none" else 0.0),
                 cost=float("nan"), num_evaluations=0, valid=False)
    if not obs.any():
        return BundleResult(**empty)
    if solver not in ("schur", "scipy"):
        raise ValueError(f"solver: expected 'schur' or 'scipy', got {solver!r}")
    prob = _Problem(x, K, R, t, X, obs, w, refine_focal, fixed)
    p0 = prob.x0()
    if solver == "scipy":
        lsq = least_squares(prob.residual, p0, jac=prob.jacobian, method="trf", loss=loss,
                            f_scale=f_scale, x_scale="jac", tr_solver="lsmr",
                            tr_options={"atol": 1e-10, "btol": 1e-10}, max_nfev=max_nfev,
                            ftol=ftol, xtol=xtol, gtol=1e-12, verbose=verbose)
        p, cost, nev = lsq.x, float(lsq.cost), int(lsq.nfev)
    else:
        p, cost, nev = _solve_lm(prob, p0, loss, f_scale, max_nfev, ftol, xtol)
    _, Rn, tn, k, Kn, Xu = prob.unpack(p)
    if not (np.all(np.isfinite(p)) and np.all(k > 0)):
        return BundleResult(**empty)
    Xout = np.where(np.isfinite(X), X, 0.0)
    Xout[prob.used] = Xu
    res = np.full((C, N), np.nan)
    proj = _project(Kn, Rn, tn, Xout)
    full_obs = m & np.all(np.isfinite(x), -1) & prob.point_used[None]
    e = np.linalg.norm(proj - x, axis=-1)
    res[full_obs] = e[full_obs]
    e_used = e[prob.cam, prob.pt]
    inl = e_used < thr
    sigma = 1.4826 * np.median(e_used[inl]) / np.sqrt(2.0) if inl.any() else 1.0
    std = prob.focal_std(p, inl, max(sigma, 1e-6)) if refine_focal != "none" else np.zeros(C)
    return BundleResult(R=Rn, t=tn, K=Kn, X=Xout, residuals=res, point_valid=prob.point_used.copy(),
                        focal_std=std, cost=cost, num_evaluations=nev,
                        valid=True)


def _project(K, R, t, X):
    """Pixels ``(C, N, 2)`` of ``X (N, 3)`` in every camera (no validation)."""
    Xc = np.einsum("cij,nj->cni", R, X) + t[:, None]
    z = Xc[..., 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        xn = Xc[..., :2] / z
    return np.einsum("cij,cnj->cni", K[:, :2, :2], xn) + K[:, None, :2, 2]
