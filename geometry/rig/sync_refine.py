"""Time offsets refined together with the rig: known-camera epipolar scores, sub-frame minimum.

Convention as :mod:`geometry.rig.sync`: ``offsets[c] = d`` means camera ``c``'s frame ``t + d``
shows the instant of the reference camera's frame ``t``.

Method (:func:`synchronise_rig`):

1. whole-frame start: :func:`geometry.estimate_time_offsets` (pooled ``F`` per shift);
2. resynchronise (:func:`apply_time_offsets`) and reconstruct the rig
   (:func:`geometry.reconstruct_rig`);
3. with the cameras known, every camera's offset is re-estimated against all the others (held
   at their current offsets): the score of a candidate offset ``d`` is the mean Cauchy loss
   ``log(1 + (e/s)²)`` of the Sampson distances ``e`` (px) of all joints and frames to every
   other camera under the rig's fundamental matrices, ``s`` the robust residual scale. Whole
   shifts in ``[-max_offset, max_offset]`` are scored, then a fine grid (0.05 frame) within a
   frame of the best, the minimum refined by a parabola through the three lowest grid points.
   The tracks are first cleaned of single-frame glitches and smoothed in time by a Gaussian of
   :data:`SMOOTH` = 1.5 frames (NaN-aware): interpolating raw tracks between frames averages
   the detector noise and pulls the score towards half frames; after smoothing, neighbouring
   samples are strongly correlated and that bias shrinks about 50-fold (1.5 frames was the
   most repeatable of 0.7–2 on the shifted Pose2Sim detections: RMS 0.065 frame against 0.09
   at 1 frame, the rig held fixed);
4. repeat 2–3 until no offset moves by more than ``tol`` (0.02 frame) or ``max_rounds``.

Confidence: the frames are cut into 10 blocks of consecutive frames; the offset is
re-estimated (whole shift, then the fine minimum) on 40 random halves of the blocks. Their
spread ``/√2`` is the offset's standard deviation; ``confidence`` = P(|error| < ½ frame) under a
normal error with that std; ``confident`` also requires that ≥ 90 % of the halves pick the same
whole-frame neighbourhood (within one frame) and that the score has a real minimum (its depth
below the far shifts' median at least :data:`MIN_DEPTH`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import erf

from ..camera import fundamental_from_pose
from ..common.checks import check_int
from ..common.validate import as_points, check_positive
from ..epipolar.fundamental import sampson_distance
from .sync import estimate_time_offsets, shift_frames, temporal_outliers, apply_time_offsets

__all__ = ["SyncedRig", "synchronise_rig", "synchronise_session", "offsets_with_cameras",
           "smooth_tracks"]

BLOCKS = 10
HALVES = 24
FINE_STEP = 0.05
MIN_DEPTH = 0.02      # score(far shifts) − score(best) below this (Cauchy units): no minimum
SMOOTH = 1.5         # frames: Gaussian smoothing of the tracks before interpolation
SCALE_FACTOR = 1.0   # Cauchy scale = this × the robust (MAD) scale of the Sampson distances


@dataclass(frozen=True)
class SyncedRig:
    """Result of :func:`synchronise_rig` (``C`` cameras).

    ``offsets (C,)`` frames (0 for the reference); ``offset_std (C,)`` frames (inf where not
    computable); ``confidence (C,)`` P(|error| < ½ frame); ``confident (C,)`` bool (False: may
    be off by half a frame or more); ``agreement (C,)`` fraction of block halves choosing the
    same whole-frame neighbourhood; ``depth (C,)`` score of the far shifts minus the best
    score; ``shifts (S,)`` and ``cost (C, S)`` the whole-frame score curves of the last round;
    ``rig``: the :class:`geometry.RigReconstruction` of the resynchronised views (or the
    :class:`geometry.SessionCalibration` of a session); ``history``: offsets of each round
    ``(rounds + 1, C)``; ``converged``: the last round moved no offset by more than ``tol``.
    """

    offsets: np.ndarray
    offset_std: np.ndarray
    confidence: np.ndarray
    confident: np.ndarray
    agreement: np.ndarray
    depth: np.ndarray
    shifts: np.ndarray
    cost: np.ndarray
    rig: object
    history: np.ndarray
    converged: bool
    summary: dict = field(default_factory=dict)


def smooth_tracks(x, sigma: float = SMOOTH) -> np.ndarray:
    """``x (..., T, J, 2)`` → the same with single-frame glitches removed
    (:func:`geometry.rig.sync.temporal_outliers`) and a NaN-aware Gaussian smoothing of
    ``sigma`` frames along ``T`` (samples with no valid neighbour stay NaN)."""
    from scipy.ndimage import gaussian_filter1d
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape((-1,) + x.shape[-3:])
    out = np.empty_like(flat)
    for i, xi in enumerate(flat):
        bad = temporal_outliers(xi) | ~np.isfinite(xi).all(-1)
        w = (~bad).astype(np.float64)
        v = np.where(bad[..., None], 0.0, xi)
        ws = gaussian_filter1d(w, sigma, axis=0, mode="constant", truncate=3.0)
        vs = gaussian_filter1d(v, sigma, axis=0, mode="constant", truncate=3.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = vs / ws[..., None]
        out[i] = np.where(((ws > 0.3) & ~bad)[..., None], r, np.nan)
    return out.reshape(x.shape)


def _pair_F(K, R, t, c, j):
    """F with ``x_jᵀ F x_c = 0`` from world→camera poses."""
    Rr = R[j] @ R[c].T
    return fundamental_from_pose(K[c], K[j], Rr, t[j] - Rr @ t[c])


def _pair_table(xi, xj, F, grid, scale):
    """Cauchy loss of camera ``j`` shifted by each ``grid`` value against camera ``i``:
    per-frame sums and counts ``(G, T)`` (``F``: ``x_jᵀ F x_i = 0``)."""
    T = xi.shape[0]
    S = np.zeros((len(grid), T))
    N = np.zeros((len(grid), T))
    for g, d in enumerate(grid):
        with np.errstate(invalid="ignore"):
            e = sampson_distance(F, xi, shift_frames(xj, float(d)))       # (T, J)
        ok = np.isfinite(e)
        S[g] = np.where(ok, np.log1p((np.where(ok, e, 0.0) / scale) ** 2), 0.0).sum(1)
        N[g] = ok.sum(1)
    return S, N


def _pair_scale(xi, xj, F, d):
    with np.errstate(invalid="ignore"):
        e = sampson_distance(F, xi, shift_frames(xj, float(d)))
    e = e[np.isfinite(e)]
    return max(1.0, SCALE_FACTOR * 1.4826 * float(np.median(e))) if e.size >= 16 else None


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

    def add_fine(self, centre):
        """Fine curves on a 0.05-frame grid within 2 frames of ``centre[(i, j)]``."""
        for (i, j) in self.pairs:
            g = np.arange(centre[(i, j)] - 2.0, centre[(i, j)] + 2.0 + 1e-9, FINE_STEP)
            S, N = _pair_table(self.xs[i], self.xs[j], self.F[(i, j)], g, self.scale[(i, j)])
            self.fine[(i, j)], self.grid[(i, j)] = self._by_block(S, N), g

    def _by_block(self, S, N):
        B = self.blocks.max() + 1
        Sb = np.stack([S[:, self.blocks == b].sum(1) for b in range(B)], 1)
        Nb = np.stack([N[:, self.blocks == b].sum(1) for b in range(B)], 1)
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


def _solve_whole(curves, max_offset, C, ref, free, start):
    """Whole-frame offsets in ``[-max_offset, max_offset]`` minimising the sum of pairwise
    whole-shift curves (sampled on ``[-2 max_offset, 2 max_offset]``; shifts outside cost the
    curve's worst value): exhaustive for few combinations, else coordinate descent from
    ``start``."""
    M = 2 * int(max_offset)
    lut = {}
    for p, c in curves.items():
        fin = np.isfinite(c)
        lut[p] = (np.where(fin, c, np.nan), np.nanmax(c[fin]) if fin.any() else 0.0)

    def total(o):
        s = 0.0
        for (i, j), (c, worst) in lut.items():
            k = int(round(o[j] - o[i])) + M
            v = c[k] if 0 <= k < c.size else worst
            s += worst if not np.isfinite(v) else v
        return s

    cand = np.arange(-int(max_offset), int(max_offset) + 1)
    if len(free) == 0:
        return np.zeros(C)
    if cand.size ** len(free) <= 200_000:
        grids = np.meshgrid(*[cand] * len(free), indexing="ij")
        combos = np.stack([g.ravel() for g in grids], 1)
        tot = np.zeros(len(combos))
        for (i, j), (c, worst) in lut.items():
            oi = combos[:, free.index(i)] if i in free else np.zeros(len(combos), int)
            oj = combos[:, free.index(j)] if j in free else np.zeros(len(combos), int)
            k = oj - oi + M
            inside = (k >= 0) & (k < c.size)
            v = np.where(inside, c[np.clip(k, 0, c.size - 1)], worst)
            tot += np.where(np.isfinite(v), v, worst)
        o = np.zeros(C)
        o[free] = combos[int(np.argmin(tot))]
        return o
    o = np.round(start).astype(float)
    o[ref] = 0.0
    for _ in range(5):
        moved = False
        for f in free:
            best = min(cand, key=lambda v: total(np.where(np.arange(C) == f, v, o)))
            moved |= best != o[f]
            o[f] = best
        if not moved:
            break
    return o


def _solve_fine(curves, grids, o0, C, ref, free):
    """Continuous offsets near the whole solution ``o0`` minimising the sum of the pairwise fine
    curves (cubic splines through the grid), Powell within ±1 frame."""
    from scipy.interpolate import CubicSpline
    from scipy.optimize import minimize
    spl = {}
    for p, c in curves.items():
        ok = np.isfinite(c)
        if ok.sum() >= 8:
            g = grids[p][ok]
            spl[p] = (CubicSpline(g, c[ok]), g[0], g[-1], float(np.nanmax(c[ok])))
    if not free:
        return np.zeros(C)

    def f(v):
        o = o0.copy()
        o[free] = v
        s = 0.0
        for (i, j), (sp, lo, hi, worst) in spl.items():
            d = o[j] - o[i]
            s += float(sp(d)) if lo <= d <= hi else worst + abs(d - np.clip(d, lo, hi))
        return s

    # start at the best point of a coarse grid around the whole solution
    best = o0[free].astype(float)
    for k, fi in enumerate(free):
        cands = o0[fi] + np.arange(-1.0, 1.0 + 1e-9, 0.1)
        vals = [f(np.where(np.arange(len(free)) == k, cv, best)) for cv in cands]
        best[k] = cands[int(np.argmin(vals))]
    r = minimize(f, best, method="Powell", bounds=[(o0[fi] - 1.0, o0[fi] + 1.0) for fi in free],
                 options={"xtol": 1e-3, "ftol": 1e-9})
    o = o0.copy()
    o[free] = r.x
    return o


def offsets_with_cameras(x, K, R, t, offsets=None, *, max_offset: int = 10, reference: int = 0,
                         camera_valid=None, seed: int = 0, smooth: float = SMOOTH,
                         halves: int = HALVES):
    """Time offsets of ``x (C, T, J, 2)`` (undistorted px) with the cameras known.

    ``K (C,3,3)``, ``R (C,3,3)``, ``t (C,3)`` world→camera (``x_cam = R X + t``); ``offsets``
    ``(C,)`` the current estimate (default 0; it sets each pair's loss scale and is the start
    of the whole-frame search when there are too many cameras for an exhaustive one). Every
    camera pair's score curve ``L_ij(δ)`` (see the module docstring) is computed once on whole
    shifts and on a fine grid; the offsets minimise ``Σ L_ij(o_j − o_i)``, first over whole
    frames (exhaustively for ≤ 200,000 combinations), then continuously within a frame.

    Returns ``dict`` with ``offsets, offset_std, confidence, confident, agreement, depth (C,)``,
    ``shifts (S,)``, ``cost (C, S)`` (each camera's whole-shift score against the reference,
    or the first valid camera paired with it). ``halves``: block-half replicates behind
    ``offset_std`` (0: none; the std is then NaN and nothing is ``confident``).
    """
    x = _check_common(x, max_offset, reference, 1.0, 1)
    C = x.shape[0]
    K = np.asarray(K, dtype=np.float64)
    K = np.broadcast_to(K, (C, 3, 3)) if K.shape == (3, 3) else K
    for name, v, shape in (("K", K, (C, 3, 3)), ("R", np.asarray(R, np.float64), (C, 3, 3)),
                           ("t", np.asarray(t, np.float64), (C, 3))):
        if v.shape != shape or not np.all(np.isfinite(v)):
            raise ValueError(f"{name}: expected finite shape {shape}, got {v.shape}")
    R, t = np.asarray(R, np.float64), np.asarray(t, np.float64)
    if offsets is not None:
        offsets = np.asarray(offsets, np.float64)
        if offsets.shape != (C,) or not np.all(np.isfinite(offsets)):
            raise ValueError(f"offsets: expected {C} finite offsets, got shape {offsets.shape}")
    if not (isinstance(smooth, (int, float, np.floating, np.integer)) and smooth >= 0):
        raise ValueError(f"smooth: expected a number >= 0 (frames), got {smooth!r}")
    xs = smooth_tracks(x, smooth) if smooth > 0 else x
    T = xs.shape[1]
    cv = np.ones(C, bool) if camera_valid is None else np.asarray(camera_valid, bool)
    off = np.zeros(C) if offsets is None else offsets.copy()
    off = off - off[reference]
    shifts = np.arange(-max_offset, max_offset + 1)
    F, scale, centre, pairs = {}, {}, {}, []
    for i in range(C):
        for j in range(i + 1, C):
            if cv[i] and cv[j]:
                Fij = _pair_F(K, R, t, i, j)
                s = _pair_scale(xs[i], xs[j], Fij, off[j] - off[i])
                if s is not None:
                    F[(i, j)], scale[(i, j)] = Fij, s
                    pairs.append((i, j))
    block = np.arange(T) * BLOCKS // T
    linked = {reference}
    for _ in range(C):
        for i, j in pairs:
            if i in linked or j in linked:
                linked |= {i, j}
    free = [c for c in range(C) if c != reference and c in linked]
    res = {k: np.zeros(C) for k in ("offsets", "agreement", "depth", "confidence")}
    res["offset_std"] = np.full(C, np.inf)
    res["confident"] = np.zeros(C, bool)
    res["offset_std"][reference], res["confidence"][reference] = 0.0, 1.0
    res["confident"][reference], res["agreement"][reference] = True, 1.0
    res["depth"][reference] = np.inf
    cost = np.full((C, shifts.size), np.inf)
    cost[reference] = 0.0
    if not free:
        return dict(res, shifts=shifts, cost=cost)
    every = np.ones(BLOCKS, bool)
    # whole solution with the curves of all frames; fine curves centred on it
    cur = _Curves(xs, F, pairs, np.arange(-2 * max_offset, 2 * max_offset + 1), scale, block)
    w = {p: v[max_offset:3 * max_offset + 1] for p, v in cur.whole_curves(every).items()}
    o_whole = _solve_whole(cur.whole_curves(every), max_offset, C, reference, free, off)
    cur.add_fine({(i, j): o_whole[j] - o_whole[i] for (i, j) in pairs})
    o = _solve_fine(cur.fine_curves(every), cur.grid, o_whole, C, reference, free)
    res["offsets"] = o
    for c in free:
        p = (min(c, reference), max(c, reference))
        if p not in w:
            p = next(q for q in pairs if c in q)
        cc = w[p] if p[1] == c else w[p][::-1]
        cost[c] = cc
        k = int(np.argmin(cc))
        far = (np.abs(shifts - shifts[k]) >= 2) & np.isfinite(cc)
        res["depth"][c] = float(np.median(cc[far]) - cc[k]) if far.any() else 0.0
    rng = np.random.default_rng(seed)
    have = np.unique(block[np.isfinite(xs).all(-1).any(axis=(0, 2))])
    reps, agree = [], []
    halves = check_int("halves", halves, 0, None)
    if halves == 0:
        res["offset_std"][free] = np.nan
    for _ in range(halves if have.size >= 4 else 0):
        half = np.zeros(BLOCKS, bool)
        half[rng.choice(have, have.size // 2, replace=False)] = True
        oh = _solve_whole(cur.whole_curves(half), max_offset, C, reference, free, o_whole)
        near = np.abs(oh - o_whole) <= 1
        agree.append(near)
        of = _solve_fine(cur.fine_curves(half), cur.grid, o_whole, C, reference, free)
        reps.append(np.where(near, of, oh))
    if len(reps) >= 4:
        reps, agree = np.array(reps), np.array(agree)
        sd = reps.std(0, ddof=1) / np.sqrt(2.0)
        for c in free:
            res["offset_std"][c] = sd[c]
            res["agreement"][c] = agree[:, c].mean()
            res["confidence"][c] = float(erf(0.5 / (np.sqrt(2.0) * max(sd[c], 1e-9))))
            res["confident"][c] = bool(res["confidence"][c] >= 0.9 and res["agreement"][c] >= 0.9
                                       and res["depth"][c] >= MIN_DEPTH)
    return dict(res, shifts=shifts, cost=cost)


def _check_common(x, max_offset, reference, tol, max_rounds):
    x = as_points("x", x)
    if x.ndim != 4:
        raise ValueError(f"x: expected shape (C, T, J, 2), got shape {x.shape}")
    C, T = x.shape[:2]
    if isinstance(max_offset, bool) or not isinstance(max_offset, (int, np.integer)) \
            or max_offset < 0 or max_offset >= T:
        raise ValueError(f"max_offset: expected an integer in [0, {T - 1}], got {max_offset!r}")
    if not (isinstance(reference, (int, np.integer)) and not isinstance(reference, bool)
            and 0 <= reference < C):
        raise ValueError(f"reference: expected a camera index in [0, {C}), got {reference!r}")
    check_positive("tol", tol)
    check_int("max_rounds", max_rounds, 1, None)
    return x


def synchronise_rig(x, K=None, *, confidence=None, max_offset: int = 10, reference: int = 0,
                    initial=None, tol: float = 0.02, max_rounds: int = 4,
                    rig_replicates: int = 3, seed: int = 0, **rig_options) -> SyncedRig:
    """Time offsets and the rig of an unsynchronised static rig, refined jointly.

    Args:
        x: ``(C, T, J, 2)`` undistorted pixels (NaN = missing) of one moving person.
        K: ``(C, 3, 3)``/``(3, 3)`` intrinsics or ``None`` (then ``image_size`` in
            ``rig_options``, as :func:`geometry.reconstruct_rig`).
        confidence: optional ``(C, T, J)`` detector confidences, shifted with the tracks and
            passed to :func:`geometry.reconstruct_rig` (with ``min_confidence`` in
            ``rig_options``); observations at or below ``min_confidence`` are also left out of
            the offset scores.
        max_offset: whole-frame shifts in ``[-max_offset, max_offset]`` are searched.
        reference: the camera whose clock the offsets are expressed in.
        initial: ``(C,)`` starting offsets (frames); default :func:`estimate_time_offsets`.
        tol: stop when no offset moves by more than this (frames) in a round.
        max_rounds: most reconstruct-and-re-estimate rounds.
        rig_replicates: random splits of the frame blocks into two halves; on each half the
            rig is reconstructed again and the offsets re-estimated with it, so that the
            offset's std also holds the rig's uncertainty (a rig that absorbs part of a time
            offset). The reported std is the larger of the fixed-rig one and ``spread/√2`` of
            these ``2 × rig_replicates`` estimates; a replicate more than a frame away also
            lowers ``agreement``. 0: fixed-rig std only.
        seed: RANSAC and resampling seed. rig_options: passed to :func:`reconstruct_rig`.
    Returns:
        :class:`SyncedRig`; ``rig`` is reconstructed from the views resynchronised with the
        final offsets. Bad arguments raise ``ValueError`` naming the argument.
    """
    from .reconstruct import reconstruct_rig
    x = _check_common(x, max_offset, reference, tol, max_rounds)
    rig_replicates = check_int("rig_replicates", rig_replicates, 0, None)
    C, T, J = x.shape[:3]
    conf = None
    if confidence is not None:
        conf = np.asarray(confidence, dtype=np.float64)
        if conf.shape != (C, T, J) or not np.all(np.isfinite(conf)):
            raise ValueError(f"confidence: expected finite shape {(C, T, J)}, got {conf.shape}")
        lo = float(rig_options.get("min_confidence", 0.0))
        x = np.where((conf > lo)[..., None], x, np.nan)
    if initial is None:
        init = estimate_time_offsets(x, max_offset=max_offset, reference=reference, seed=seed)
        off = init.offsets.copy()
    else:
        off = np.asarray(initial, dtype=np.float64)
        if off.shape != (C,) or not np.all(np.isfinite(off)):
            raise ValueError(f"initial: expected {C} finite offsets, got {off!r}")
        off = off - off[reference]
    history = [off.copy()]
    converged, est, rec = False, None, None
    xs_smooth = smooth_tracks(x)
    for _ in range(max_rounds):
        rec = _reconstruct(reconstruct_rig, x, conf, off, K, seed, rig_options)
        if not rec.valid:
            break
        est = offsets_with_cameras(xs_smooth, rec.K, rec.R, rec.t, off, max_offset=max_offset,
                                   reference=reference, camera_valid=rec.camera_valid,
                                   seed=seed, smooth=0)
        new = np.where(np.isfinite(est["offset_std"]), est["offsets"], off)
        step = float(np.max(np.abs(new - off)))
        off = new
        history.append(off.copy())
        if step < tol:
            converged = True
            break
    if rec is not None and rec.valid and not converged:
        rec = _reconstruct(reconstruct_rig, x, conf, off, K, seed, rig_options)
    if est is not None and rig_replicates > 0:
        est = _with_rig_replicates(est, x, conf, xs_smooth, off, K, seed, rig_options,
                                   max_offset, reference, rig_replicates)
    if est is None:
        est = dict(offset_std=np.where(np.arange(C) == reference, 0.0, np.inf),
                   confidence=(np.arange(C) == reference).astype(float),
                   confident=np.arange(C) == reference, agreement=np.zeros(C),
                   depth=np.zeros(C), shifts=np.arange(-max_offset, max_offset + 1),
                   cost=np.full((C, 2 * max_offset + 1), np.inf))
    return SyncedRig(offsets=off, offset_std=est["offset_std"], confidence=est["confidence"],
                     confident=est["confident"], agreement=est["agreement"],
                     depth=est["depth"], shifts=est["shifts"], cost=est["cost"], rig=rec,
                     history=np.array(history), converged=converged,
                     summary={"rounds": len(history) - 1})


def _with_rig_replicates(est, x, conf, xs_smooth, off, K, seed, rig_options, max_offset,
                         reference, splits):
    """``est`` with ``offset_std``, ``agreement``, ``confidence``, ``confident`` widened by
    the spread of offsets re-estimated with rigs reconstructed from halves of the frame
    blocks (see :func:`synchronise_rig`)."""
    from .reconstruct import reconstruct_rig
    T = x.shape[1]
    block = np.arange(T) * BLOCKS // T
    rng = np.random.default_rng(seed + 1)
    reps = []
    for _ in range(splits):
        perm = rng.permutation(BLOCKS)
        for h in (perm[:BLOCKS // 2], perm[BLOCKS // 2:]):
            keep = np.isin(block, h)[None, :, None, None]
            xh = np.where(keep, x, np.nan)
            rec = _reconstruct(reconstruct_rig, xh, conf, off, K, seed, rig_options)
            if not rec.valid:
                continue
            e = offsets_with_cameras(np.where(keep, xs_smooth, np.nan), rec.K, rec.R, rec.t,
                                     off, max_offset=max_offset, reference=reference,
                                     camera_valid=rec.camera_valid, seed=seed, smooth=0,
                                     halves=0)
            reps.append(np.where(rec.camera_valid, e["offsets"], np.nan))
    est = dict(est)
    if len(reps) < 2:
        return est
    reps = np.array(reps)
    sd_rig = np.nanstd(reps, 0, ddof=1) / np.sqrt(2.0)
    far = np.nanmean(np.abs(reps - off) > 1.0, 0)
    free = np.isfinite(est["offset_std"]) & (np.arange(len(off)) != reference)
    sd = np.where(free, np.fmax(est["offset_std"], np.nan_to_num(sd_rig, nan=np.inf)),
                  est["offset_std"])
    agree = np.where(free, np.minimum(est["agreement"], 1.0 - far), est["agreement"])
    conf_ = np.where(free, erf(0.5 / (np.sqrt(2.0) * np.maximum(sd, 1e-9))), est["confidence"])
    est.update(offset_std=sd, agreement=agree, confidence=conf_,
               confident=np.where(free, (conf_ >= 0.9) & (agree >= 0.9)
                                  & (est["depth"] >= MIN_DEPTH), est["confident"]),
               replicates=reps)
    return est


def _reconstruct(reconstruct_rig, x, conf, off, K, seed, rig_options):
    xs = apply_time_offsets(x, off)
    cs = None
    if conf is not None:
        cs = np.stack([shift_frames(conf[c][..., None].repeat(2, -1), float(off[c]))[..., 0]
                       for c in range(x.shape[0])])
        cs = np.nan_to_num(cs, nan=0.0)
    return reconstruct_rig(xs, K, confidence=cs, seed=seed, **rig_options)


def synchronise_session(trials, K=None, *, max_offset: int = 10, reference: int = 0,
                        tol: float = 0.02, max_rounds: int = 4, seed: int = 0,
                        **session_options):
    """Per-trial time offsets of a session and its rig, refined jointly.

    ``trials``: sequence of ``(C, T_i, J, 2)`` undistorted pixels (NaN = missing), one moving
    person each, same cameras and joints. Each trial's whole-frame start comes from
    :func:`estimate_time_offsets`; then rounds of :func:`geometry.calibrate_session` on the
    resynchronised trials and :func:`offsets_with_cameras` per trial with the session's
    cameras, until no offset moves by more than ``tol`` frames. ``session_options`` go to
    :func:`geometry.calibrate_session` (``image_size``, ``refine_focal``, …).

    Returns ``(offsets (N, C), results, calibration)``: ``results`` one ``dict`` per trial as
    :func:`offsets_with_cameras` returns (``offset_std``, ``confidence``, ``confident``, …),
    ``calibration`` the :class:`geometry.SessionCalibration` of the resynchronised trials.
    """
    from .session import calibrate_session
    if isinstance(trials, np.ndarray) or not hasattr(trials, "__len__") or len(trials) == 0:
        raise ValueError("trials: expected a non-empty sequence of (C, T, J, 2) arrays")
    xs = []
    for i, tr in enumerate(trials):
        try:
            xs.append(_check_common(tr, max_offset, reference, tol, max_rounds))
        except ValueError as exc:
            raise ValueError(f"trials[{i}]: {exc}") from None
    C = xs[0].shape[0]
    if any(x.shape[0] != C or x.shape[2:] != xs[0].shape[2:] for x in xs):
        raise ValueError("trials: every trial needs the same cameras and joints")
    off = np.stack([estimate_time_offsets(x, max_offset=max_offset, reference=reference,
                                          seed=seed).offsets for x in xs])
    smooth = [smooth_tracks(x) for x in xs]
    results, cal = None, None
    for _ in range(max_rounds):
        cal = calibrate_session([apply_time_offsets(x, o) for x, o in zip(xs, off)], K,
                                seed=seed, **session_options)
        if not cal.valid:
            break
        results = [offsets_with_cameras(s, cal.K, cal.R, cal.t, o, max_offset=max_offset,
                                        reference=reference, camera_valid=cal.camera_valid,
                                        seed=seed, smooth=0) for s, o in zip(smooth, off)]
        new = np.stack([np.where(np.isfinite(r["offset_std"]), r["offsets"], o)
                        for r, o in zip(results, off)])
        step = float(np.max(np.abs(new - off)))
        off = new
        if step < tol:
            break
    else:
        cal = calibrate_session([apply_time_offsets(x, o) for x, o in zip(xs, off)], K,
                                seed=seed, **session_options)
    return off, results, cal
