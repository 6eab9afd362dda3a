"""Time offsets refined in continuous time, with the cameras known: every joint's 3D path a
cubic B-spline, fitted together with the offsets to the raw detections of all cameras.

Convention as :mod:`geometry.rig.sync`: ``offsets[c] = d`` means camera ``c``'s frame ``k``
shows the reference camera's instant ``τ = k − d``.

Model (:func:`refine_offsets_continuous`): joint ``j`` is at ``X_j(τ) = Σ_m B_m(τ) P_jm``
(uniform cubic B-spline, a knot every :data:`KNOT` frame of the reference clock); the
detection of joint ``j`` in camera ``c``'s frame ``k`` is ``π_c(X_j(k − o_c))`` plus noise of
camera ``c``'s and joint ``j``'s level ``σ_cj`` (px; the median residual of the fit, which is
repeated with observations beyond :data:`REJECT` ``σ_cj`` left out until the levels settle).
The offsets ``o`` and control points ``P`` minimise

    ``Σ ½ s² log(1 + |r/σ_cj|² / s²)  +  ½ λ (f/z)² / σ² Σ_jm |P_j,m−1 − 2 P_jm + P_j,m+1|²``

(Cauchy loss of the reprojection errors ``r`` normalised by ``σ_cj``, ``s`` = :data:`LOSS_SCALE`;
a second-difference prior, ``λ`` = :data:`PRIOR` px², ``f/z`` the median focal over
depth, so that a path seen by one camera only stays determined). The offsets' standard
deviations are the Gauss–Newton covariance of that fit (the Schur complement of the offsets).

With ``poses`` the cameras' poses (all but the reference's) are fitted too: a rig reconstructed
from resynchronised views carries the offsets' errors, and with it held the fit can be
confidently wrong (a rig 1° off: an offset 0.36 frame off with a std of 0.017).

Measured (issue 21's synthetic clips: 4 cameras, 2–4 px, 10 % outliers, 100–200 frames):
- true cameras, the slow clips (a person turning or reaching, 0.3–1 px/frame; seeds 7 and 18,
  36 offsets): the epipolar scores of :mod:`geometry.rig.sync_refine` 0.47 frame RMS, 7 off by
  ≥ 0.5 frame; this fit 0.25, none (largest 0.50); RMS of error/std 1.16. The other clips:
  0.082 → 0.045;
- from the rigs of :func:`geometry.synchronise_rig`'s rounds (seeds 7, 11, 18, 108 offsets):
  the rounds 0.39 frame RMS (17 ≥ 0.5), this fit with that rig held 0.28 (10), with the
  poses refined 0.23 (7).
Why a knot every frame with a prior, not coarse knots: how much noise a coarse spline absorbs
depends on where the samples fall between its knots, and that moved the offsets (knots every
2 frames: 0.42 frame RMS on Gaussian noise alone, 0.18 with knots every 4 frames, which in turn
fit outliers worse: 0.53). Own Levenberg–Marquardt: the joints couple only through the few
global parameters (offsets, poses), so each joint's banded block is eliminated by a banded
Cholesky (scipy) — a generic sparse solver gives neither that speed (0.2–2 s a clip) nor the
offsets' marginal covariance.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import solveh_banded

from ..camera import _skew, rodrigues_to_matrix

__all__ = ["refine_offsets_continuous"]

KNOT = 1.0          # frames between spline knots
PRIOR = 100.0       # λ: second-difference prior (px², with the focal/depth scale)
LOSS_SCALE = 2.5    # Cauchy scale in units of the camera's noise level
REJECT = 4.0        # observations farther than this many noise levels from the fit are left out
MAX_MOVE = 1.0      # frames an offset may move from its start
_U = 11             # upper bandwidth of a joint's (3M, 3M) block: knots 3 apart, xyz interleaved


def _basis(u):
    u2, u3 = u * u, u * u * u
    B = np.stack([(1 - u) ** 3, 3 * u3 - 6 * u2 + 4, -3 * u3 + 3 * u2 + 3 * u + 1, u3], -1) / 6
    dB = np.stack([-(1 - u) ** 2, 3 * u2 - 4 * u, -3 * u2 + 2 * u + 1, u2], -1) / 2
    return B, dB


def _diff2_band(M):
    """Bands ``(3, M)`` of ``DᵀD`` (``D`` the second difference): ``[d, m] = (DᵀD)[m, m + d]``,
    from the rows ``(1, −2, 1)`` that hold knot ``m`` (rows ``m − 2, m − 1, m`` where they
    exist), without forming ``D``."""
    m = np.arange(M)
    row = lambda i: ((i >= 0) & (i <= M - 3)).astype(np.float64)        # noqa: E731
    return np.stack([row(m - 2) + 4.0 * row(m - 1) + row(m),
                     -2.0 * (row(m - 1) + row(m)), row(m)])


class _Fit:
    """The fit's data, residuals and normal equations (see the module docstring). The state is
    ``(P (J, M, 3), o (C,), R (C, 3, 3), t (C, 3))``; the global parameters are the offsets of
    ``free`` cameras, then (rotation vector, translation) of ``posed`` cameras — the first of
    them keeps its translation, which fixes the scale (the path prior would otherwise shrink
    the world)."""

    def __init__(self, x, K, R, t, sigma, o0, cams, free, prior, posed=()):
        C, T, J = x.shape[:3]
        ok = np.isfinite(x).all(-1) & cams[:, None, None]
        self.c, self.k, self.j = np.nonzero(ok)
        self.u = x[ok]
        self.K, self.J = K, J
        self.isig = 1.0 / sigma[self.c, self.j]
        used = o0[cams]
        self.tau0 = float(np.min(-used)) - MAX_MOVE - 1.5 * KNOT
        self.M = int(np.floor((np.max(T - 1 - used) + MAX_MOVE - self.tau0) / KNOT)) + 5
        self.free, self.posed = list(free), list(posed)
        F = len(self.free)
        gi = -np.ones((C, 7), int)
        gi[self.free, 0] = np.arange(F)
        n = F
        for q, c in enumerate(self.posed):      # the first keeps its centre: the scale gauge
            k = 3 if q == 0 else 6
            gi[c, 1:1 + k] = n + np.arange(k)
            n += k
        self.G, self.gcam = n, gi
        self.gidx = gi[self.c]                                           # (N, 7)
        self.prior = prior
        self.dband = _diff2_band(self.M)

    def design(self, tau):
        s = (tau - self.tau0) / KNOT
        i = np.clip(np.floor(s).astype(int), 0, self.M - 4)
        B, dB = _basis(s - i)
        return i[:, None] + np.arange(4), B, dB / KNOT

    def residuals(self, state, derivs=False):
        P, o, R, t = state
        idx, B, dB = self.design(self.k - o[self.c])
        Pk = P[self.j[:, None], idx]                                   # (N, 4, 3)
        X = np.einsum("nq,nqd->nd", B, Pk)
        Rc, Kc = R[self.c], self.K[self.c]
        RX = np.einsum("nab,nb->na", Rc, X)
        Xc = RX + t[self.c]
        z = Xc[:, 2]
        xn = Xc[:, :2] / z[:, None]
        r = (np.einsum("nab,nb->na", Kc[:, :2, :2], xn) + Kc[:, :2, 2] - self.u) * \
            self.isig[:, None]
        if not derivs:
            return r, z
        Jn = np.zeros((len(z), 2, 3))
        Jn[:, 0, 0] = Jn[:, 1, 1] = 1.0 / z
        Jn[:, :, 2] = -xn / z[:, None]
        Jc = np.einsum("nab,nbc->nac", Kc[:, :2, :2], Jn) * self.isig[:, None, None]
        Jx = np.einsum("nac,ncd->nad", Jc, Rc)                          # d r / d X
        Jg = np.zeros((len(z), 2, 7))
        Jg[:, :, 0] = -np.einsum("nad,nd->na", Jx, np.einsum("nq,nqd->nd", dB, Pk))
        if self.posed:                  # R ← exp(ω) R: d Xc / d ω = −[R X]×; d Xc / d t = I
            Jg[:, :, 1:4] = -np.einsum("nac,ncd->nad", Jc, _skew(RX))
            Jg[:, :, 4:] = Jc
        return r, z, idx, B, Jx, Jg

    def cost(self, state):
        r, z = self.residuals(state)
        if not np.all(z > 0):
            return np.inf
        s2 = LOSS_SCALE ** 2
        P = state[0]
        d2 = P[:, :-2] - 2.0 * P[:, 1:-1] + P[:, 2:]
        return 0.5 * s2 * np.log1p((r ** 2).sum(-1) / s2).sum() + 0.5 * self.prior * (d2 ** 2).sum()

    def normal(self, state):
        """Banded joint blocks ``(J, U+1, 3M)`` (upper LAPACK form), ``Hpg (J, 3M, G)``,
        ``Hgg (G, G)``, gradients ``gp (J, 3M)``, ``gg (G,)``."""
        P = state[0]
        r, z, idx, B, Jx, Jg = self.residuals(state, True)
        w = 1.0 / (1.0 + (r ** 2).sum(-1) / LOSS_SCALE ** 2)
        J, M, G = self.J, self.M, self.G
        key = self.j[:, None] * M + idx                                 # (N, 4)
        A9 = np.einsum("n,nai,naj->nij", w, Jx, Jx).reshape(-1, 9)
        band = np.zeros((4, 9, J * M))
        for q1 in range(4):
            for q2 in range(q1, 4):
                v = (B[:, q1] * B[:, q2])[:, None] * A9
                kk = (np.arange(9)[None] * J * M + key[:, q1, None]).ravel()
                band[q2 - q1] += np.bincount(kk, v.ravel(), 9 * J * M).reshape(9, J * M)
        band = band.reshape(4, 3, 3, J, M)
        gv = np.einsum("n,nai,na->ni", w, Jx, r)
        pg = np.einsum("n,nai,nab->nib", w, Jx, Jg)                       # (N, 3, 7)
        gi = self.gidx
        on = gi >= 0
        gp = np.zeros(3 * J * M)
        hpg = np.zeros(3 * J * M * max(G, 1))
        for q in range(4):
            kq = key[:, q, None] * 3 + np.arange(3)                        # (N, 3)
            gp += np.bincount(kq.ravel(), (B[:, q, None] * gv).ravel(), 3 * J * M)
            kg = kq[:, :, None] * max(G, 1) + gi[:, None, :]
            sel = np.broadcast_to(on[:, None, :], kg.shape)
            hpg += np.bincount(kg[sel], (B[:, q, None, None] * pg)[sel], hpg.size)
        gg = np.bincount(gi[on], np.einsum("n,nab,na->nb", w, Jg, r)[on], G)
        pair = on[:, :, None] & on[:, None, :]
        hgg = np.einsum("n,nai,naj->nij", w, Jg, Jg)
        Hgg = np.bincount((gi[:, :, None] * max(G, 1) + gi[:, None, :])[pair], hgg[pair],
                          G * G).reshape(G, G)
        for d in range(3):              # the prior: λ DᵀD on every coordinate
            for a in range(3):
                band[d, a, a] += self.prior * self.dband[d][None, :]
        gp = gp.reshape(J, M, 3)
        d2 = P[:, :-2] - 2.0 * P[:, 1:-1] + P[:, 2:]
        gp[:, :-2] += self.prior * d2
        gp[:, 1:-1] -= 2.0 * self.prior * d2
        gp[:, 2:] += self.prior * d2
        ab = np.zeros((J, _U + 1, 3 * M))
        m = np.arange(M)
        for d in range(4):
            for a in range(3):
                for b in range(3):
                    if d == 0 and b < a:
                        continue
                    ab[:, _U - 3 * d + a - b, 3 * (m[:M - d] + d) + b] = band[d, a, b][:, :M - d]
        return ab, hpg.reshape(J, 3 * M, max(G, 1))[..., :G], Hgg, gp.reshape(J, 3 * M), gg

    def solve(self, ab, Hpg, Hgg, gp, gg, mu):
        """Damped step ``(ΔP (J, M, 3), Δg (G,), S)``, ``S`` the globals' Schur complement,
        or None when not positive."""
        J, G = self.J, self.G
        ab = ab.copy()
        ab[:, _U] *= 1.0 + mu
        ab[:, _U] += 1e-9
        sol = np.empty((J, ab.shape[2], 1 + G))
        try:
            for j in range(J):
                sol[j] = solveh_banded(ab[j], np.concatenate([gp[j, :, None], Hpg[j]], 1),
                                       check_finite=False)
        except np.linalg.LinAlgError:
            return None
        Aig, AiB = sol[..., 0], sol[..., 1:]
        S = Hgg + mu * np.diag(np.diag(Hgg)) - np.einsum("jpa,jpb->ab", Hpg, AiB)
        try:
            dg = np.linalg.solve(S, -gg + np.einsum("jpa,jp->a", Hpg, Aig)) if G else np.zeros(0)
        except np.linalg.LinAlgError:
            return None
        dP = -Aig - np.einsum("jpa,a->jp", AiB, dg)
        return dP.reshape(J, -1, 3), dg, S

    def step(self, state, dP, dg):
        P, o, R, t = state
        o = o.copy()
        F = len(self.free)
        o[self.free] += dg[:F]
        if self.posed:
            R, t = R.copy(), t.copy()
            for c in self.posed:
                g = self.gcam[c]
                R[c] = rodrigues_to_matrix(dg[g[1:4]]) @ R[c]
                if g[4] >= 0:
                    t[c] = t[c] + dg[g[4:]]
        return P + dP, o, R, t

    def init(self, xs, o, cams, R, t):
        """Control points from the smoothed tracks ``xs`` triangulated at the reference frames
        (every camera's track interpolated at ``τ + o_c``), fitted by banded least squares."""
        from ..camera import projection_matrix
        from ..triangulation import triangulate_multiview
        C, T = xs.shape[:2]
        tau = np.arange(np.floor(self.tau0 + 2 * KNOT), self.tau0 + (self.M - 3) * KNOT)
        xi = np.full((tau.size, C, self.J, 2), np.nan)
        for c in np.flatnonzero(cams):
            q = tau + o[c]
            k0 = np.clip(np.floor(q).astype(int), 0, T - 2)
            a = (q - k0)[:, None, None]
            good = (q >= 0) & (q <= T - 1)
            xi[good, c] = ((1 - a) * xs[c, k0] + a * xs[c, k0 + 1])[good]
        tri = triangulate_multiview(projection_matrix(self.K, R, t), xi,
                                    threshold=30.0)
        X = np.where(tri.valid[..., None], tri.X, np.nan)               # (n, J, 3)
        idx, B, _ = self.design(tau)
        P = np.zeros((self.J, self.M, 3))
        seen = np.isfinite(X).all(-1).sum(0) >= 8
        for j in np.flatnonzero(seen):
            wt = np.isfinite(X[:, j]).all(-1).astype(float)
            ab = np.zeros((4, self.M))
            for q1 in range(4):
                for q2 in range(q1, 4):
                    np.add.at(ab[3 - (q2 - q1)], idx[:, q2], wt * B[:, q1] * B[:, q2])
            for d in range(3):
                ab[3 - d, d:] += self.dband[d, :self.M - d]
            ab[3] += 1e-9
            rhs = np.zeros((self.M, 3))
            Xj = np.nan_to_num(X[:, j])
            for q in range(4):
                np.add.at(rhs, idx[:, q], (wt * B[:, q])[:, None] * Xj)
            P[j] = solveh_banded(ab, rhs)
        return P, seen


def refine_offsets_continuous(x, K, R, t, offsets, smoothed, *, reference: int = 0,
                              camera_valid=None, max_iter: int = 60, prior: float = PRIOR,
                              poses: bool = False):
    """Offsets of ``x (C, T, J, 2)`` (raw undistorted px, NaN = missing) refined in continuous
    time with the cameras known (model and reasons: module docstring).

    ``K, R (C, 3, 3)``, ``t (C, 3)`` world→camera; ``offsets (C,)`` the start (frames; each
    offset moves at most :data:`MAX_MOVE` from it); ``smoothed (C, T, J, 2)`` the tracks
    smoothed in time (:func:`geometry.smooth_tracks`), used for the starting paths only.
    Returns ``dict``: ``offsets (C,)``, ``offset_std (C,)`` (Gauss–Newton, frames; 0 for the
    reference, inf where not refined), ``noise_px (C, J)`` (each camera's and joint's
    noise level σ, from the fit's residuals), ``iterations``, ``valid`` (False:
    nothing refined, the start returned); with ``poses`` the cameras' poses (all but the
    reference's) are refined too and returned as ``R (C, 3, 3)``, ``t (C, 3)`` (the first
    refined camera keeps its centre, which holds the scale). Arguments are not checked here:
    :func:`geometry.synchronise_rig` and :func:`geometry.offsets_with_cameras` call it.
    """
    C, T, J = x.shape[:3]
    o = np.asarray(offsets, np.float64) - offsets[reference]
    cams = np.ones(C, bool) if camera_valid is None else np.asarray(camera_valid, bool).copy()
    sigma = np.full((C, J), np.nan)
    std = np.where(np.arange(C) == reference, 0.0, np.inf)
    fail = dict(offsets=o, offset_std=std, noise_px=sigma, iterations=0, valid=False)
    free = [c for c in range(C) if cams[c] and c != reference]
    if not cams[reference] or not free or T < 8:
        return fail
    # only the instants every camera sees, for any offsets within MAX_MOVE of the start: a
    # camera's frames outside the others' span fit freely, and shifting it to widen that
    # span lowered the cost (offsets ran 1 frame off, to the bound, on 3 of 12 slow clips)
    lo = float(np.max(-o[cams])) + 2.0 * MAX_MOVE
    hi = float(np.min(T - 1 - o[cams])) - 2.0 * MAX_MOVE
    if hi - lo < 20:
        return fail
    tau = np.arange(T)[None, :] - o[:, None]
    x = np.where(((tau >= lo) & (tau <= hi))[..., None, None], x, np.nan)
    cams &= np.isfinite(x).all(-1).sum(axis=(1, 2)) >= 20
    free = [c for c in free if cams[c]]
    if not cams[reference] or not free:
        return fail
    R, t = np.array(R, np.float64), np.array(t, np.float64)
    posed = free if poses else []
    start, it, fit, rejected = o.copy(), 0, None, None
    every = _Fit(x, K, R, t, np.ones((C, J)), start, cams, free, 0.0)
    P, seen = every.init(smoothed, o, cams, R, t)
    if not seen.any():
        return fail
    if not seen.all():                  # joints too rarely triangulated are left out
        x = np.where(seen[None, None, :, None], x, np.nan)
        every = _Fit(x, K, R, t, np.ones((C, J)), start, cams, free, 0.0)
    state = (P, o, R, t)
    for _ in range(3):      # noise levels and outliers from the start's residuals, then the fit's
        r, z = every.residuals(state)
        if not np.all(z > 0):
            return fail
        e = np.linalg.norm(r, axis=-1)
        new = _noise_levels(e, every.c, every.j, C, J)
        if new is None:
            return fail
        out = e > REJECT * new[every.c, every.j]
        if fit is not None and np.all(np.abs(new / sigma - 1.0) < 0.1) and \
                np.mean(out != rejected) < 0.005:
            break
        sigma, rejected = new, out
        xr = x.copy()
        xr[every.c[out], every.k[out], every.j[out]] = np.nan
        f_over_z = float(np.median(K[cams, 0, 0])) / float(np.median(z))
        lam = prior * f_over_z ** 2 / float(np.median(sigma[cams]) ** 2)
        if fit is None:     # the paths first, with the offsets held: a step from the rough
            # starting paths would move the offsets as a side effect (measured: 1 frame)
            state, n = _levenberg_marquardt(_Fit(xr, K, R, t, sigma, start, cams, [], lam),
                                            state, start, max_iter)
            it += n
        fit = _Fit(xr, K, R, t, sigma, start, cams, free, lam, posed)
        state, n = _levenberg_marquardt(fit, state, start, max_iter)
        it += n
    step = fit.solve(*fit.normal(state), 0.0)
    if step is None:
        return fail
    try:
        var = np.diag(np.linalg.inv(step[2]))[:len(free)]
    except np.linalg.LinAlgError:
        return fail
    std[free] = np.sqrt(np.where(var > 0, var, np.inf))
    out = dict(offsets=state[1], offset_std=std, noise_px=sigma, iterations=it, valid=True)
    return dict(out, R=state[2], t=state[3]) if poses else out


def _noise_levels(e, c, j, C, J):
    """``(C, J)`` noise levels (px) from reprojection error norms ``e`` of cameras ``c`` and
    joints ``j``: the median over 2D errors is 1.1774 σ (Rayleigh); a camera's joint with fewer
    than 10 errors takes the camera's level. None where a camera has none."""
    out = np.full((C, J), np.nan)
    for ci in np.unique(c):
        ec, jc = e[c == ci], j[c == ci]
        whole = np.median(ec) / 1.1774
        n = np.bincount(jc, minlength=J)
        out[ci] = [np.median(ec[jc == jj]) / 1.1774 if n[jj] >= 10 else whole
                   for jj in range(J)]
    out[~np.isfinite(out)] = 1.0        # cameras left out of the fit
    return out if np.all(out > 0) else None


def _levenberg_marquardt(fit, state, start, max_iter):
    """``(state, iterations)`` minimising ``fit.cost``; offsets kept within MAX_MOVE of
    ``start``."""
    cost, mu, it = fit.cost(state), 1e-3, 0
    for it in range(1, max_iter + 1):
        normal = fit.normal(state)
        done = True
        while mu < 1e8:
            step = fit.solve(*normal, mu)
            if step is not None:
                new = fit.step(state, step[0], step[1])
                c_new = fit.cost(new) if np.all(np.abs(new[1] - start) <= MAX_MOVE) else np.inf
                if c_new < cost:
                    done = cost - c_new < 1e-7 * cost
                    state, cost, mu = new, c_new, max(mu / 3.0, 1e-9)
                    break
            mu *= 5.0
        if done:
            break
    return state, it
