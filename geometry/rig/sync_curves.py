"""Score curves of camera pairs for the time offsets with known cameras (used by
:func:`geometry.offsets_with_cameras`, :mod:`geometry.rig.sync_refine`): the mean Cauchy loss
of the Sampson distances of camera ``j``'s tracks shifted by ``δ`` against camera ``i``'s, per
block of frames, on whole shifts and on a fine grid. Written here rather than taken from a
library: one pass scores every shift of a pair, vectorised over the grid."""
from __future__ import annotations

import numpy as np

from ..camera import fundamental_from_pose
from ..epipolar.fundamental import sampson_distance
from .sync import shift_frames, split_frames

BLOCKS = 10
FINE_STEP = 0.05
SCALE_FACTOR = 1.0   # Cauchy scale = this × the robust (MAD) scale of the Sampson distances


def _pair_F(K, R, t, c, j):
    """F with ``x_jᵀ F x_c = 0`` from world→camera poses."""
    Rr = R[j] @ R[c].T
    return fundamental_from_pose(K[c], K[j], Rr, t[j] - Rr @ t[c])


def _pair_table(xi, xj, F, grid, scale):
    """Cauchy loss of camera ``j`` shifted by each ``grid`` value against camera ``i``:
    per-frame sums and counts ``(G, T)`` (``F``: ``x_jᵀ F x_i = 0``). The Sampson distances
    of :func:`shift_frames`-interpolated tracks, vectorised over the grid (in chunks of about
    5·10⁵ joint samples, ~60 MB): ``F x_i`` is the same for every shift."""
    T, J = xi.shape[:2]
    grid = np.asarray(grid, dtype=np.float64)
    Xi = np.concatenate([xi, np.ones((T, J, 1))], -1)
    Xj = np.concatenate([xj, np.ones((T, J, 1))], -1)
    l1 = Xi @ F.T                                              # F x_i   (T, J, 3)
    n1 = l1[..., 0] ** 2 + l1[..., 1] ** 2
    S = np.zeros((grid.size, T))
    N = np.zeros((grid.size, T))
    step = max(1, int(5e5 // max(T * J, 1)))
    t = np.arange(T)
    for g0 in range(0, grid.size, step):
        d = grid[g0:g0 + step]
        k, a = split_frames(d)
        a = a[:, None, None, None]
        i0 = t[None, :] + k[:, None]                           # (G, T)
        lo = np.where(((i0 >= 0) & (i0 < T))[..., None, None], Xj[np.clip(i0, 0, T - 1)], np.nan)
        hi = np.where(((i0 >= -1) & (i0 < T - 1))[..., None, None],
                      Xj[np.clip(i0 + 1, 0, T - 1)], np.nan)
        x2 = np.where(np.isclose(a, 0.0), lo, (1 - a) * lo + a * hi)
        e = np.einsum("gtjk,tjk->gtj", x2, l1)
        l2 = x2 @ F                                            # Fᵀ x_j  (G, T, J, 3)
        den = l2[..., 0] ** 2 + l2[..., 1] ** 2 + n1
        with np.errstate(invalid="ignore", divide="ignore"):
            dist = np.sqrt(np.where(den > 0, e * e / np.where(den > 0, den, 1.0), np.inf))
        ok = np.isfinite(dist)
        S[g0:g0 + step] = np.where(ok, np.log1p((np.where(ok, dist, 0.0) / scale) ** 2),
                                   0.0).sum(-1)
        N[g0:g0 + step] = ok.sum(-1)
    return S, N


def _pair_scale(xi, xj, F, d, per_joint=False):
    """Robust (MAD) scale of the Sampson distances (px) with camera ``j`` shifted by ``d``:
    pooled over joints (``None`` with fewer than 16 distances), or with ``per_joint`` one per
    joint ``(J,)`` (the pooled one where a joint has fewer than 8); at least 1 px."""
    with np.errstate(invalid="ignore"):
        e = sampson_distance(F, xi, shift_frames(xj, float(d)))
    ok = np.isfinite(e)
    if ok.sum() < 16:
        return None
    pooled = max(1.0, SCALE_FACTOR * 1.4826 * float(np.median(e[ok])))
    if not per_joint:
        return pooled
    out = np.full(e.shape[1], pooled)
    for j in np.flatnonzero(ok.sum(0) >= 8):
        out[j] = max(1.0, SCALE_FACTOR * 1.4826 * float(np.median(e[ok[:, j], j])))
    return out


class _Curves:
    """Pairwise score curves ``L_ij(δ)`` (mean Cauchy loss of camera ``j`` shifted by ``δ``
    against camera ``i``), per frame block, on whole shifts and on a fine grid near a whole
    relative shift; the joint offsets minimise ``Σ_ij L_ij(o_j − o_i)``."""

    def __init__(self, xs, F, pairs, shifts, scale, blocks):
        self.xs, self.F, self.scale = xs, F, scale
        self.pairs, self.shifts, self.blocks = pairs, shifts.astype(float), blocks
        self.whole, self.fine, self.grid = {}, {}, {}
        for (i, j) in pairs:
            S, N = _pair_table(xs[i], xs[j], F[(i, j)], self.shifts, scale[(i, j)])
            self.whole[(i, j)] = self._by_block(S, N)

    def add_fine(self, centre, at):
        """Fine curves on a 0.05-frame grid within 2 frames of ``centre[(i, j)]``, each joint's
        Sampson distances scaled by its own robust scale with camera ``j`` shifted by
        ``at[(i, j)]`` (a detector's hip is not its wrist: the precise joints weigh more; the
        scales are measured near the solution, not at the start, where a wrong shift would
        make the moving joints look noisy)."""
        for (i, j) in self.pairs:
            c = centre[(i, j)]
            s = _pair_scale(self.xs[i], self.xs[j], self.F[(i, j)], at[(i, j)], per_joint=True)
            g = np.arange(c - 2.0, c + 2.0 + 1e-9, FINE_STEP)
            S, N = _pair_table(self.xs[i], self.xs[j], self.F[(i, j)], g,
                               self.scale[(i, j)] if s is None else s)
            self.fine[(i, j)], self.grid[(i, j)] = self._by_block(S, N), g

    def _by_block(self, S, N):
        Sb = np.stack([S[:, self.blocks == b].sum(1) for b in range(BLOCKS)], 1)
        Nb = np.stack([N[:, self.blocks == b].sum(1) for b in range(BLOCKS)], 1)
        return Sb, Nb

    @staticmethod
    def _curve(table, use):
        S, N = table
        n = N[:, use].sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n >= 16, S[:, use].sum(1) / np.maximum(n, 1), np.inf)

    def whole_curves(self, use):
        return {p: self._curve(t, use) for p, t in self.whole.items()}

    def fine_curves(self, use):
        return {p: self._curve(t, use) for p, t in self.fine.items()}
