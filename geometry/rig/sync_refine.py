"""Time offsets refined together with the rig: known-camera epipolar scores, sub-frame minimum.

Convention as :mod:`geometry.rig.sync`: ``offsets[c] = d`` means camera ``c``'s frame ``t + d``
shows the instant of the reference camera's frame ``t``.

Method (:func:`geometry.synchronise_rig`, in :mod:`geometry.rig.sync_joint`; step 3 is
:func:`offsets_with_cameras`, here):

1. whole-frame start: :func:`geometry.estimate_time_offsets` (pooled ``F`` per shift);
2. resynchronise (:func:`apply_time_offsets`) and reconstruct the rig
   (:func:`geometry.reconstruct_rig`);
3. with the cameras known, every camera pair's score curve ``L_ij(δ)`` is computed: the mean
   Cauchy loss ``log(1 + (e/s)²)`` of the Sampson distances ``e`` (px, under the rig's
   fundamental matrix) of all joints and frames with camera ``j`` shifted by ``δ`` against
   camera ``i``, ``s`` the pair's robust (MAD) residual scale; on whole shifts in
   ``±2 max_offset``, and on a 0.05-frame grid near the whole solution with one scale per
   joint (a detector's hip is not its wrist), measured at the whole solution, then again at
   the fine minimum that gives. The offsets minimise
   ``Σ L_ij(o_j − o_i)``: over whole frames (exhaustively), then continuously within a frame
   (cubic splines through the grid, Powell).
   The tracks are first cleaned of single-frame glitches and smoothed in time by a Gaussian of
   :data:`SMOOTH` = 1.5 frames (NaN-aware): interpolating raw tracks between frames averages
   the detector noise and pulls the score towards half frames; after smoothing, neighbouring
   samples are strongly correlated and that bias shrinks about 50-fold (1.5 frames was the
   most repeatable of 0.7–2 on the shifted Pose2Sim detections: RMS 0.065 frame against 0.09
   at 1 frame, the rig held fixed);
4. repeat 2–3 until no offset moves by more than ``tol`` (0.02 frame) or ``max_rounds``.

Confidence: the frames are cut into 10 blocks of consecutive frames; the offset is
re-estimated (whole shifts, then the fine minimum) on :data:`HALVES` random halves of the
blocks. Their spread ``/√2`` is the offset's standard deviation; ``confidence`` = P(|error| <
½ frame) under a normal error with that std; ``confident`` needs ``confidence`` ≥
:data:`geometry.rig.sync.CONFIDENT_P` (0.99) and also that ≥ 90 % of the halves pick the same
whole-frame neighbourhood (within one frame) and that the score has a real minimum (its depth
below the far shifts' median at least :data:`MIN_DEPTH`).
"""
from __future__ import annotations

import numpy as np

from ..common.checks import check_int
from ..common.validate import as_points, check_positive
from .sync import CONFIDENT_P, check_offset_inputs, confidence_from_std, temporal_outliers
from .sync_curves import BLOCKS, _Curves, _pair_F, _pair_scale

__all__ = ["offsets_with_cameras", "smooth_tracks"]

HALVES = 24
MIN_DEPTH = 0.02      # score(far shifts) − score(best) below this (Cauchy units): no minimum
SMOOTH = 1.5         # frames: Gaussian smoothing of the tracks before interpolation


def _finite(name, v, shapes):
    """``v`` as a finite float array of one of ``shapes``, else ValueError naming ``name``."""
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a finite float array, got {type(v).__name__}") from None
    if a.shape not in shapes or not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: expected finite values of shape {shapes[0]}, got shape {a.shape}")
    return a


def _check_common(x, max_offset, reference, tol, max_rounds):
    x = check_offset_inputs(x, max_offset, reference)
    check_positive("tol", tol)
    check_int("max_rounds", max_rounds, 1, None)
    return x


def smooth_tracks(x, sigma: float = SMOOTH) -> np.ndarray:
    """``x (..., T, J, 2)`` → the same with single-frame glitches removed
    (:func:`geometry.rig.sync.temporal_outliers`) and a NaN-aware Gaussian smoothing of
    ``sigma`` frames along ``T`` (samples with no valid neighbour stay NaN)."""
    from scipy.ndimage import gaussian_filter1d
    x = as_points("x", x)
    if x.ndim < 3:
        raise ValueError(f"x: expected shape (..., T, J, 2), got shape {x.shape}")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.integer, np.floating)) \
            or not 0 < sigma <= 100:
        raise ValueError(f"sigma: expected a number of frames in (0, 100], got {sigma!r}")
    if x.size == 0:
        return x.copy()
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
                         halves: int = HALVES, continuous: bool = False):
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
    ``continuous`` (with ``smooth`` > 0, i.e. raw tracks): the offsets are then refined in
    continuous time (:func:`geometry.rig.sync_spline.refine_offsets_continuous`: every joint's
    path a spline fitted with the offsets to the raw detections, the cameras held), and
    ``offset_std`` is that fit's Gauss–Newton std (the halves still give ``agreement``). With
    exact cameras the scores alone were 2× farther off on a person barely moving (module
    docstring of :mod:`geometry.rig.sync_spline`); but a camera error becomes a confident
    offset error there (Pose2Sim with its Qualisys calibration: camera 2 1.17 → 1.87 frames,
    std 0.07, where :func:`geometry.synchronise_rig`, poses refined, finds 0.00), so it is off
    by default.
    """
    x = _check_common(x, max_offset, reference, 1.0, 1)
    C = x.shape[0]
    K = _finite("K", K, ((C, 3, 3), (3, 3)))
    K = np.broadcast_to(K, (C, 3, 3))
    if np.any(K[:, 0, 0] * K[:, 1, 1] == 0) or np.any(K[:, 2] != [0, 0, 1]):
        raise ValueError("K: expected upper-triangular intrinsics with non-zero focal lengths")
    R, t = _finite("R", R, ((C, 3, 3),)), _finite("t", t, ((C, 3),))
    if offsets is not None:
        offsets = _finite("offsets", offsets, ((C,),))
        if np.any(np.abs(offsets) > 1e6):
            raise ValueError("offsets: expected offsets within ±1e6 frames")
    if isinstance(smooth, bool) or not isinstance(smooth, (int, float, np.floating, np.integer)) \
            or not 0 <= smooth <= 100:
        raise ValueError(f"smooth: expected a number of frames in [0, 100], got {smooth!r}")
    if camera_valid is not None:
        camera_valid = np.asarray(camera_valid)
        if camera_valid.shape != (C,) or camera_valid.dtype != bool:
            raise ValueError(f"camera_valid: expected ({C},) bool, got {camera_valid!r}")
    xs = smooth_tracks(x, smooth) if smooth > 0 else x
    T = xs.shape[1]
    cv = np.ones(C, bool) if camera_valid is None else np.asarray(camera_valid, bool)
    off = np.zeros(C) if offsets is None else offsets.copy()
    off = off - off[reference]
    shifts = np.arange(-max_offset, max_offset + 1)
    F, scale, pairs = {}, {}, []
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
    centre = {(i, j): o_whole[j] - o_whole[i] for (i, j) in pairs}
    o = o_whole
    for _ in range(2):      # joint scales at the whole solution, then at the fine one
        cur.add_fine(centre, {(i, j): o[j] - o[i] for (i, j) in pairs})
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
        res["offset_std"][free] = sd[free]
        res["agreement"][free] = agree[:, free].mean(0)
        res = _with_std(res, res["offset_std"], res["agreement"], np.isin(np.arange(C), free))
    if continuous and smooth > 0:
        refined = _refit_continuous(x, xs, K, R, t, cv, res["offsets"], res,
                                   np.isin(np.arange(C), free), reference)
        if refined is not None:
            res = refined[1]
    return dict(res, shifts=shifts, cost=cost)


def _refit_continuous(x, xs, K, R, t, camera_valid, offsets, est, candidates, reference,
                     poses=False):
    """``(offsets (C,), est)`` refined in continuous time from ``offsets``
    (:func:`geometry.rig.sync_spline.refine_offsets_continuous` of the raw ``x`` with the
    smoothed ``xs``, cameras ``K, R, t``; ``poses``: their poses refined too) where
    ``candidates (C,)`` and the fit refined the offset: there ``est`` (a dict as
    :func:`offsets_with_cameras` returns) takes the fit's offsets and Gauss–Newton std.
    None where the fit refined none."""
    from .sync_spline import refine_offsets_continuous
    r = refine_offsets_continuous(x, K, R, t, offsets, xs, reference=reference,
                                  camera_valid=camera_valid, poses=poses)
    done = np.isfinite(r["offset_std"]) & candidates
    if not r["valid"] or not done.any():
        return None
    new = np.where(done, r["offsets"], offsets)
    sd = np.where(done, r["offset_std"], est["offset_std"])
    return new, _with_std(dict(est, offsets=new), sd, est["agreement"], done)


def _with_std(est, sd, agreement, free):
    """``est`` (a dict as :func:`offsets_with_cameras` returns) with ``offset_std``,
    ``agreement``, ``confidence`` and ``confident`` replaced where ``free (C,)`` is True:
    ``confident`` = P(|error| < ½) ≥ :data:`geometry.rig.sync.CONFIDENT_P`, ``agreement`` ≥ 0.9
    and ``depth`` ≥ MIN_DEPTH."""
    conf = confidence_from_std(sd)
    ok = (conf >= CONFIDENT_P) & (agreement >= 0.9) & (est["depth"] >= MIN_DEPTH)
    return dict(est, offset_std=np.where(free, sd, est["offset_std"]),
                agreement=np.where(free, agreement, est["agreement"]),
                confidence=np.where(free, conf, est["confidence"]),
                confident=np.where(free, ok, est["confident"]))
