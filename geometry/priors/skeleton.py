"""The skeleton- and time-aware robust 3D step (after calibration): :func:`refine_skeleton`.

A person is not a cloud of independent points: bone lengths are constant over a trial, joints
move smoothly and left and right do not swap in 3D. Given known cameras, this step

1. triangulates every joint by view-pair consensus (:mod:`.consensus`), with an adaptive
   outlier threshold (``max(min_threshold, 4 σ)``, σ the robust residual scale);
2. repairs left/right swaps in 2D: a view whose swapped pair reprojects decisively better than
   the detected one is swapped back;
3. estimates each bone's length robustly (median over the frames where both joints rest on three
   or more agreeing views);
4. alternates a skeleton/time-consistent fit (:mod:`._solver`: robust reprojection weighted by the
   per-(camera, joint) noise of :func:`.noise.observation_noise`, soft bone lengths,
   acceleration and velocity terms) with joint-wise view rejection and swap repair judged
   against that fit — a wrist whose views disagree is judged with its elbow and its past and
   next frames — until the inlier sets stop changing.

All terms are negative log-likelihoods (residual / σ), so the priors weigh nothing where the
detections are exact: on noise-free data the result equals the plain one (priors off).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..common.validate import as_array, as_mask, as_matrix, as_weights, check_positive
from ._solver import Problem, solve
from .consensus import apply_swaps, consensus_triangulation, reproject, swap_candidates
from .noise import ObservationNoise, observation_noise
from .terms import bone_terms, check_index_pairs, estimate_bone_lengths, gap_fill, time_terms


@dataclass(frozen=True)
class SkeletonRefinement:
    """Result of :func:`refine_skeleton`.

    ``X (T, J, 3)`` world joints (0 where invalid); ``valid (T, J)``; ``inliers (C, T, J)``
    views the joint rests on; ``residuals (C, T, J)`` reprojection error px of every usable
    observation (after swap repair; NaN where missing or invalid); ``swaps (C, T, S)`` left/right
    pairs swapped back in 2D, ``swapped_views (C, T)`` views with any; ``bone_lengths (B,)``
    (``(G, B)`` with ``segments``; NaN where not estimable); ``noise``: the per-(camera, joint)
    :class:`~geometry.priors.noise.ObservationNoise` of the final fit; ``threshold_px (C, J)``
    the rejection threshold; ``rounds``; ``iterations`` Gauss–Newton steps in all;
    ``summary`` numbers for reports.
    """

    X: np.ndarray
    valid: np.ndarray
    inliers: np.ndarray
    residuals: np.ndarray
    swaps: np.ndarray
    swapped_views: np.ndarray
    bone_lengths: np.ndarray
    noise: ObservationNoise
    threshold_px: np.ndarray
    rounds: int
    iterations: int
    summary: dict = field(default_factory=dict)


def _check(x, K, R, t, X0, confidence, mask, segments):
    x = as_array("x", x, tail=(None, None, None, 2))
    if x.ndim != 4:
        raise ValueError(f"x: expected shape (C, T, J, 2), got shape {x.shape}")
    C, T, J = x.shape[:3]
    if C < 2:
        raise ValueError(f"x: expected at least 2 cameras, got shape {x.shape}")
    K = as_matrix("K", K, 3, 3)
    if K.shape != (C, 3, 3):
        raise ValueError(f"K: expected shape ({C}, 3, 3), got shape {K.shape}")
    R = as_matrix("R", R, 3, 3)
    if R.shape != (C, 3, 3):
        raise ValueError(f"R: expected shape ({C}, 3, 3), got shape {R.shape}")
    t = as_array("t", t, finite=True)
    if t.shape != (C, 3):
        raise ValueError(f"t: expected shape ({C}, 3), got shape {t.shape}")
    if not (np.isfinite(K).all() and np.isfinite(R).all()):
        raise ValueError("K/R: must be finite")
    if X0 is not None:
        X0 = as_array("X0", X0)
        if X0.shape != (T, J, 3):
            raise ValueError(f"X0: expected shape ({T}, {J}, 3), got shape {X0.shape}")
    conf = as_weights("confidence", confidence, (C, T, J))
    m = as_mask("mask", mask, (C, T, J))
    if segments is None:
        seg = np.zeros(T, dtype=np.int64)
    else:
        seg = np.asarray(segments)
        if seg.shape != (T,) or not np.issubdtype(seg.dtype, np.integer):
            raise ValueError(f"segments: expected an int array of shape ({T},), got "
                             f"{seg.dtype} {seg.shape}")
        seg = seg.astype(np.int64)
    return x, K, R, t, X0, conf, m, seg


def _robust_sigma(res):
    """Per-axis noise σ (px) from 2D residual norms (Rayleigh: median = 1.1774 σ)."""
    res = res[np.isfinite(res)]
    return float(np.median(res)) / 1.1774 if res.size else 0.0


def refine_skeleton(x, K, R, t, X0=None, *, bones, confidence=None, mask=None, swap_pairs=None,
                    segments=None, bone_weight: float = 1.0, smooth_weight: float = 1.0,
                    velocity_weight: float = 0.0, bone_sigma: float = 0.04,
                    accel_sigma: float = 0.04, velocity_sigma: float = 0.2,
                    reject: bool = True, per_joint_noise: bool = True,
                    threshold: float | None = None, min_threshold: float = 3.0,
                    reject_sigmas: float = 4.0, loss_scale: float = 2.0, max_gap: int = 5,
                    max_rounds: int = 4, max_iter: int = 15,
                    min_noise_px: float = 1e-3) -> SkeletonRefinement:
    """Skeleton- and time-aware robust 3D joints from 2D detections and known cameras.

    Args:
        x: ``(C, T, J, 2)`` undistorted detections, px (NaN = missing).
        K, R, t: ``(C, 3, 3)``, ``(C, 3, 3)``, ``(C, 3)`` cameras (``x_cam = R X + t``), e.g.
            from :func:`geometry.reconstruct_rig` or a calibration.
        X0: optional ``(T, J, 3)`` start (NaN = unknown); default: view-pair consensus.
        bones: ``(B, 2)`` joint index pairs (``pose.Skeleton.bone_array``); ``()`` for none.
        confidence: optional ``(C, T, J)`` (0 drops an observation; weighs the first DLT).
        mask: optional ``(C, T, J)`` bool, False drops an observation.
        swap_pairs: optional ``(S, 2)`` left/right joint pairs (``Skeleton.flip_pairs``) to
            repair in 2D; None = no swap repair.
        segments: optional ``(T,)`` int labels of contiguous clips: no time term crosses a
            label change and bone lengths are estimated per label (per person / clip).
        bone_weight, smooth_weight, velocity_weight: multipliers of the bone-length,
            acceleration and velocity terms (0 switches a prior off).
        bone_sigma, accel_sigma (per frame²), velocity_sigma (per frame): standard deviations
            of the priors (a bone's length over the trial, the frame-to-frame change) as
            fractions of the subject's mean bone length — so any world unit works (metres, or
            :func:`geometry.reconstruct_rig`'s unit baseline). For an adult (mean bone ≈ 0.25 m)
            the defaults are 1 cm, 1 cm/frame² and 5 cm/frame; without bones the unit is
            taken as metres.
        reject: joint-wise view rejection against the fit (False: keep the first inlier sets).
        per_joint_noise: weigh each observation by its (camera, joint) noise (False: one σ per
            camera).
        threshold: fixed outlier threshold, px (default adaptive: ``max(min_threshold,
            reject_sigmas · σ)``, σ from the residuals).
        loss_scale: soft-L1 scale in σ units of every term.
        max_gap: with smoothing on, joints with fewer than two inlier views are filled from the
            time prior if an anchored frame lies within ``max_gap`` frames on both sides.
        max_rounds: rounds of fit → reject/repair; max_iter: Gauss–Newton steps per fit.
        min_noise_px: floor of the estimated pixel noise.
    Returns:
        :class:`SkeletonRefinement`.
    """
    x, K, R, t, X0, conf, m, seg = _check(x, K, R, t, X0, confidence, mask, segments)
    C, T, J = x.shape[:3]
    bones = check_index_pairs("bones", bones, J)
    pairs = None if swap_pairs is None else check_index_pairs("swap_pairs", swap_pairs, J)
    for name, v in (("bone_weight", bone_weight), ("smooth_weight", smooth_weight),
                    ("velocity_weight", velocity_weight)):
        check_positive(name, v, allow_zero=True)
    for name, v in (("bone_sigma", bone_sigma), ("accel_sigma", accel_sigma),
                    ("velocity_sigma", velocity_sigma), ("min_threshold", min_threshold),
                    ("reject_sigmas", reject_sigmas), ("loss_scale", loss_scale),
                    ("min_noise_px", min_noise_px)):
        check_positive(name, v)
    if threshold is not None:
        threshold = check_positive("threshold", threshold)
    use0 = m & np.isfinite(x).all(-1) & (conf > 0)
    S = 0 if pairs is None else len(pairs)
    swaps = np.zeros((C, T, S), dtype=bool)
    smooth = smooth_weight > 0 or velocity_weight > 0

    def flat(a):                       # (C, T, J, ...) -> (C, T·J, ...)
        return a.reshape((C, T * J) + a.shape[3:])

    def init(xw, cw, thr):
        Xi, inl, ok = consensus_triangulation(flat(xw), K, R, t, flat(use0), thr, flat(cw))
        return Xi.reshape(T, J, 3), inl.reshape(C, T, J), ok.reshape(T, J)

    def residuals(xw, X):
        proj, z = reproject(X, K, R, t)
        r = np.linalg.norm(proj - xw, axis=-1)
        return np.where(use0 & (z > 0), r, np.nan)

    # 1. start: consensus (or X0) with an adaptive threshold
    thr = 50.0 if threshold is None else threshold
    xw, cw = x, conf
    if X0 is None:
        X, inl, ok = init(xw, cw, thr)
    else:
        X = np.nan_to_num(X0)
        ok = np.isfinite(X0).all(-1)
        inl = use0 & (residuals(xw, X) < thr) & ok[None]
    if threshold is None:
        dof = 2.0 * inl.sum(0)[ok]
        corr = float(np.sqrt(np.mean(dof / np.maximum(dof - 3.0, 1.0)))) if dof.size else 1.0
        sig = _robust_sigma(residuals(xw, X)[inl]) * corr
        thr = float(np.clip(reject_sigmas * sig, min_threshold, 50.0))
        if X0 is None:
            X, inl, ok = init(xw, cw, thr)
        else:
            inl = use0 & (residuals(xw, X) < thr) & ok[None]
    # 2. swap repair against the consensus solution
    if S:
        swaps = swap_candidates(x, np.where(ok[..., None], X, np.nan), K, R, t, pairs,
                                threshold=thr)
        if swaps.any():
            xw, cw = apply_swaps(x, swaps, pairs), apply_swaps(conf, swaps, pairs)
            X, inl, ok = init(xw, cw, thr)
    # 3. bone lengths from the reliable frames
    reliable = ok & (inl.sum(0) >= min(3, C))
    L = estimate_bone_lengths(X, reliable, bones, seg)
    size = float(np.nanmean(L)) if np.isfinite(L).any() else 0.25    # mean bone, world units
    thr_cj = np.full((C, J), thr)
    rounds = iters = 0
    noise = observation_noise(xw, np.where(ok[..., None], X, np.nan), K, R, t, inl,
                              min_noise_px=min_noise_px)
    active = ok.copy()
    for rounds in range(1, max_rounds + 1):
        # 4a. noise per observation from the current inliers (dof-corrected), fit
        nv = inl.sum(0)[active]
        dof = 2.0 * nv[nv >= 2]
        corr = float(np.sqrt(np.mean(dof / np.maximum(dof - 3.0, 1.0)))) if dof.size else 1.0
        sig_cj = noise.noise if per_joint_noise else np.repeat(noise.camera_noise[:, None], J, 1)
        sig_cj = np.maximum(sig_cj * corr, min_noise_px)
        anchored = inl.sum(0) >= 2
        active = anchored | (gap_fill(anchored, seg, max_gap) if smooth else False)
        Xs = _start_points(X, anchored, active, seg)
        pb = _problem(xw, K, R, t, inl & active[None], sig_cj, active, bones, L, seg,
                      bone_weight / (bone_sigma * size), smooth_weight / (accel_sigma * size),
                      velocity_weight / (velocity_sigma * size), loss_scale)
        Xf, it, _ = solve(pb, Xs.reshape(-1, 3), max_iter=max_iter)
        iters += it
        X = Xf.reshape(T, J, 3)
        # 4b. swap repair and view rejection judged against the fit
        changed = False
        if S and reject:
            new = swap_candidates(x, np.where(active[..., None], X, np.nan), K, R, t, pairs,
                                  threshold=thr)
            if (new != swaps).any():
                swaps, changed = new, True
                xw, cw = apply_swaps(x, swaps, pairs), apply_swaps(conf, swaps, pairs)
        res = residuals(xw, X)
        noise = observation_noise(xw, np.where(active[..., None], X, np.nan), K, R, t,
                                  inl & active[None], min_noise_px=min_noise_px)
        if not reject:
            if not changed:
                break
            continue
        if threshold is None:
            sig = noise.noise if per_joint_noise else noise.camera_noise[:, None]
            thr_cj = np.broadcast_to(np.clip(reject_sigmas * sig * corr, min_threshold, thr),
                                     (C, J)).copy()
        new_inl = use0 & (res < thr_cj[:, None, :])
        if (new_inl != inl).any():
            inl, changed = new_inl, True
        if not changed:
            break
    anchored = inl.sum(0) >= 2
    valid = anchored | (gap_fill(anchored, seg, max_gap) if smooth else False)
    res = residuals(xw, X)
    res = np.where(valid[None], res, np.nan)
    Xo = np.where(valid[..., None], X, 0.0)
    summary = {"threshold_px": thr, "mean_bone": size, "rounds": rounds, "iterations": iters,
               "swaps_repaired": int(swaps.sum()), "inlier_fraction":
               float((inl & valid[None]).sum() / max(1, use0.sum())),
               "valid_fraction": float(valid.mean()),
               "median_reprojection_px": float(np.nanmedian(res[inl & valid[None]]))
               if (inl & valid[None]).any() else float("nan")}
    bl = L[0] if segments is None else L
    return SkeletonRefinement(X=Xo, valid=valid, inliers=inl & valid[None], residuals=res,
                              swaps=swaps, swapped_views=swaps.any(-1), bone_lengths=bl,
                              noise=noise, threshold_px=thr_cj, rounds=rounds, iterations=iters,
                              summary=summary)


def _start_points(X, anchored, active, seg):
    """``X`` with the active but unanchored joints interpolated in time from anchored frames."""
    Xs = np.array(X, dtype=np.float64)
    T, J = anchored.shape
    need = active & ~anchored
    if not need.any():
        return Xs
    tt = np.arange(T)
    for j in np.flatnonzero(need.any(0)):
        for g in np.unique(seg[need[:, j]]):
            inseg = seg == g
            src = inseg & anchored[:, j]
            dst = inseg & need[:, j]
            if src.sum() == 0:
                continue
            for k in range(3):
                Xs[dst, j, k] = np.interp(tt[dst], tt[src], Xs[src, j, k])
    return Xs


def _problem(xw, K, R, t, inl, sig_cj, active, bones, L, seg, wb, wa, wv, loss_scale):
    C, T, J = inl.shape
    c, tt, j = np.nonzero(inl)
    bl, bw = bone_terms(active, bones, L, seg, wb)
    acc_w, vel_w = time_terms(active, seg, wa, wv)
    return Problem(T=T, J=J, KR=np.einsum("cab,cbd->cad", K, R),
                   Kt=np.einsum("cab,cb->ca", K, t), obs_cam=c, obs_pt=tt * J + j,
                   obs_xy=xw[c, tt, j], obs_inv_sigma=1.0 / sig_cj[c, j], bones=bones,
                   bone_len=bl, bone_w=bw, acc_w=acc_w, vel_w=vel_w, loss_scale=loss_scale)
