"""The rig refined jointly with the time offsets: :func:`synchronise_rig` (one trial) and
:func:`synchronise_session` (per-trial offsets of one rig).

Rounds of: resynchronise (:func:`geometry.apply_time_offsets`) → reconstruct the rig → the
offsets with those cameras (:func:`geometry.offsets_with_cameras`, method in
:mod:`geometry.rig.sync_refine`), until no offset moves by more than ``tol`` frames. The
offsets' confidence comes from block halves with the rig held fixed, with ``rig_replicates``
from rigs reconstructed on halves of the frames, and with ``probe`` from how much of a pushed
offset comes back once the rig is reconstructed with it.

After the rounds (``continuous``), the offsets and the cameras' poses are refined once more in
continuous time (:mod:`geometry.rig.sync_spline`), whose Gauss–Newton std is the starting std
(in :func:`synchronise_session` per trial, from the session's cameras). Measured on issue 21's
synthetic clips of seed 7 as one 12-trial session: the rounds alone 0.38 frame RMS, with the
fit 0.24.

Known limit (measured): when the motion is mostly a translation (walking), a rig can absorb part
of a time offset; the joint fixed point is then off by ~0.1 frame and ~0.15° (synthetic walk,
2 px noise, 120 frames; restoring share κ 0.4–0.7), which the block-half spread does not fully
show. A person turning in place can let the rig absorb nearly all of it (κ ≈ 0).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..common.checks import check_int
from .sync import apply_time_offsets, estimate_time_offsets, shift_frames
from .sync_refine import (BLOCKS, _check_common, _finite, offsets_with_cameras, _refit_continuous,
                          smooth_tracks, _with_std)

__all__ = ["SyncedRig", "synchronise_rig", "synchronise_session"]


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


def synchronise_rig(x, K=None, *, confidence=None, max_offset: int = 10, reference: int = 0,
                    initial=None, tol: float = 0.02, max_rounds: int = 4,
                    rig_replicates: int = 3, probe: float = 0.5, seed: int = 0,
                    continuous: bool = True, **rig_options) -> SyncedRig:
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
        probe: frames by which each camera's final offset is pushed, one camera at a time,
            before the rig is reconstructed and the offsets re-estimated once more. The share
            of the push that comes back, ``κ`` (``summary["restoring"]``, 1 = all of it), says
            how much of an offset error the rig absorbs: the fixed point of the rounds moves
            ``1/κ`` times as far as a single round's error, so the fixed-rig std is divided by
            ``κ`` (clipped to [0.05, 1]) when that is larger. A turning person seen by a level
            ring can let the rig absorb a whole offset error (κ ≈ 0; measured κ −0.2 for an
            offset 0.97 frame off that the block halves gave a std of 0.18). Each round also
            removes only the share κ of the start's error, so ``(1 − κ)^rounds`` times the
            start's std (:func:`estimate_time_offsets`; not counted when ``initial`` is given)
            is added in quadrature: a rigid body spinning in front of a level ring leaves the
            offsets unobservable with a free rig (κ 0–0.3), and without that term four rounds
            left offsets 2–5 frames off with stds of 0.02–0.06, confident. A camera whose
            probe rig cannot be reconstructed keeps its std (κ NaN). Costs one rig
            reconstruction per camera. 0: no probe.
        seed: RANSAC and resampling seed.
        continuous: after the rounds, refine the offsets in continuous time from the last
            rig (:func:`geometry.rig.sync_spline.refine_offsets_continuous`: every joint's path
            a spline fitted to the raw detections of all cameras together with the offsets
            and the cameras' poses; its Gauss–Newton std replaces the block halves' as the
            fixed-rig std) and reconstruct the rig with them. False: the rounds' offsets.
        rig_options: passed to :func:`reconstruct_rig`.
    Returns:
        :class:`SyncedRig`; ``rig`` is reconstructed from the views resynchronised with the
        final offsets. Bad arguments raise ``ValueError`` naming the argument.
    """
    x = _check_common(x, max_offset, reference, tol, max_rounds)
    rig_replicates = check_int("rig_replicates", rig_replicates, 0, None)
    if isinstance(probe, bool) or not isinstance(probe, (int, float, np.integer, np.floating)) \
            or not 0 <= probe <= 1:
        raise ValueError(f"probe: expected a number of frames in [0, 1], got {probe!r}")
    C, T, J = x.shape[:3]
    conf = None
    if confidence is not None:
        conf = _finite("confidence", confidence, ((C, T, J),))
        lo = rig_options.get("min_confidence", 0.0)
        if isinstance(lo, bool) or not isinstance(lo, (int, float, np.integer, np.floating)) \
                or not np.isfinite(lo):
            raise ValueError(f"min_confidence: expected a finite number, got {lo!r}")
        x = np.where((conf > lo)[..., None], x, np.nan)
    init_std = None
    if initial is None:
        init = estimate_time_offsets(x, max_offset=max_offset, reference=reference, seed=seed)
        off = init.offsets.copy()
        init_std = init.offset_std
    else:
        off = _finite("initial", initial, ((C,),))
        off = off - off[reference]
        if np.any(np.abs(off) > max_offset + 1):
            raise ValueError(f"initial: expected offsets within max_offset + 1 of the "
                             f"reference, got {off.tolist()}")
    history = [off.copy()]
    converged, est, rec = False, None, None
    xs_smooth = smooth_tracks(x)
    for _ in range(max_rounds):
        rec = _reconstruct(x, conf, off, K, seed, rig_options)
        if not rec.valid:
            break
        est = offsets_with_cameras(xs_smooth, rec.K, rec.R, rec.t, off, max_offset=max_offset,
                                   reference=reference, camera_valid=rec.camera_valid,
                                   seed=seed, smooth=0, continuous=False)
        new = np.where(np.isfinite(est["offset_std"]), est["offsets"], off)
        step = float(np.max(np.abs(new - off)))
        off = new
        history.append(off.copy())
        if step < tol:
            converged = True
            break
    if rec is not None and rec.valid and not converged:
        rec = _reconstruct(x, conf, off, K, seed, rig_options)
    if est is not None and continuous and rec is not None and rec.valid:
        off, est, rec = _continuous(x, conf, xs_smooth, off, est, rec, K, seed, rig_options,
                                    reference)
    fixed_std = None if est is None else est["offset_std"].copy()
    if est is not None and rig_replicates > 0:
        est = _with_rig_replicates(est, x, conf, xs_smooth, off, K, seed, rig_options,
                                   max_offset, reference, rig_replicates)
    restoring = np.full(C, np.nan)
    if est is not None and probe > 0 and rec is not None and rec.valid:
        est, restoring = _with_probe(est, fixed_std, x, conf, xs_smooth, off, K, seed,
                                     rig_options, max_offset, reference, float(probe),
                                     init_std, len(history) - 1)
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
                     summary={"rounds": len(history) - 1, "restoring": restoring})


def _continuous(x, conf, xs_smooth, off, est, rec, K, seed, rig_options, reference):
    """The offsets refined in continuous time with the rig ``rec``, ``est`` with their
    Gauss–Newton std, and the rig reconstructed with them (unchanged where the fit fails)."""
    refined = _refined(x, xs_smooth, off, est, rec, reference)
    if refined is None:
        return off, est, rec
    again = _reconstruct(x, conf, refined[0], K, seed, rig_options)
    if not again.valid:
        return off, est, rec
    return refined[0], refined[1], again


def _refined(x, xs_smooth, off, est, cams, reference):
    """``(offsets, est)`` of one trial refined in continuous time from ``off`` and the cameras
    ``cams`` (poses refined too) where ``est`` has a finite std; None where none was refined."""
    free = np.isfinite(est["offset_std"]) & (np.arange(len(off)) != reference)
    return _refit_continuous(x, xs_smooth, cams.K, cams.R, cams.t, cams.camera_valid, off, est,
                            free, reference, poses=True)


def _with_rig_replicates(est, x, conf, xs_smooth, off, K, seed, rig_options, max_offset,
                         reference, splits):
    """``est`` with ``offset_std``, ``agreement``, ``confidence``, ``confident`` widened by
    the spread of offsets re-estimated with rigs reconstructed from halves of the frame
    blocks (see :func:`synchronise_rig`)."""
    T = x.shape[1]
    block = np.arange(T) * BLOCKS // T
    rng = np.random.default_rng(seed + 1)
    reps = []
    for _ in range(splits):
        perm = rng.permutation(BLOCKS)
        for h in (perm[:BLOCKS // 2], perm[BLOCKS // 2:]):
            keep = np.isin(block, h)[None, :, None, None]
            rec, e = _reestimate(np.where(keep, x, np.nan), conf,
                                 np.where(keep, xs_smooth, np.nan), off, K, seed, rig_options,
                                 max_offset, reference)
            if rec.valid:
                reps.append(np.where(rec.camera_valid, e["offsets"], np.nan))
    if len(reps) < 2:
        return dict(est)
    reps = np.array(reps)
    sd_rig = np.nanstd(reps, 0, ddof=1) / np.sqrt(2.0)
    far = np.nanmean(np.abs(reps - off) > 1.0, 0)
    free = np.isfinite(est["offset_std"]) & (np.arange(len(off)) != reference)
    sd = np.fmax(est["offset_std"], np.nan_to_num(sd_rig, nan=np.inf))
    est = _with_std(est, sd, np.minimum(est["agreement"], 1.0 - far), free)
    return dict(est, replicates=reps)


def _with_probe(est, fixed_std, x, conf, xs_smooth, off, K, seed, rig_options, max_offset,
                reference, step, init_std=None, rounds=0):
    """``est`` with each camera's std widened by its restoring share ``κ`` and by the share
    ``(1 − κ)^rounds`` of the start's std ``init_std (C,)`` that the rounds left (see the
    ``probe`` argument of :func:`synchronise_rig`); returns ``(est, κ (C,))``."""
    C = len(off)
    kappa = np.full(C, np.nan)
    free = np.isfinite(est["offset_std"]) & (np.arange(C) != reference)
    for c in np.flatnonzero(free):
        pushed = off.copy()
        pushed[c] += step
        rec, e = _reestimate(x, conf, xs_smooth, pushed, K, seed, rig_options, max_offset,
                             reference)
        if rec.valid and rec.camera_valid[c]:
            kappa[c] = (pushed[c] - e["offsets"][c]) / step
    k = np.nan_to_num(kappa, nan=1.0)            # a failed probe: no widening
    sd = np.fmax(est["offset_std"], fixed_std / np.clip(k, 0.05, 1.0))
    if init_std is not None and rounds > 0:
        # each round removes only the share κ of the start's error: (1 − κ)^rounds of it is left
        left = (1.0 - np.clip(k, 0.0, 1.0)) ** rounds
        start = np.where(np.isfinite(init_std), init_std, 2.0 * max_offset)   # inf: no start
        sd = np.sqrt(sd ** 2 + (left * start) ** 2)
    return _with_std(est, sd, est["agreement"], free), kappa


def _reestimate(x, conf, xs_smooth, off, K, seed, rig_options, max_offset, reference):
    """The rig reconstructed from ``x`` resynchronised with ``off`` and the offsets estimated
    once with it (no block halves): ``(rig, dict of offsets_with_cameras or None)``."""
    rec = _reconstruct(x, conf, off, K, seed, rig_options)
    if not rec.valid:
        return rec, None
    return rec, offsets_with_cameras(xs_smooth, rec.K, rec.R, rec.t, off, max_offset=max_offset,
                                     reference=reference, camera_valid=rec.camera_valid,
                                     seed=seed, smooth=0, halves=0, continuous=False)


def _reconstruct(x, conf, off, K, seed, rig_options):
    """:func:`geometry.reconstruct_rig` of ``x`` (and ``conf``) resynchronised with ``off``."""
    from .reconstruct import reconstruct_rig
    xs = apply_time_offsets(x, off)
    cs = None
    if conf is not None:
        cs = np.stack([shift_frames(conf[c][..., None].repeat(2, -1), float(off[c]))[..., 0]
                       for c in range(x.shape[0])])
        cs = np.nan_to_num(cs, nan=0.0)
    return reconstruct_rig(xs, K, confidence=cs, seed=seed, **rig_options)


def synchronise_session(trials, K=None, *, max_offset: int = 10, reference: int = 0,
                        tol: float = 0.02, max_rounds: int = 4, seed: int = 0,
                        continuous: bool = True, **session_options):
    """Per-trial time offsets of a session and its rig, refined jointly.

    ``trials``: sequence of ``(C, T_i, J, 2)`` undistorted pixels (NaN = missing), one moving
    person each, same cameras and joints. Each trial's whole-frame start comes from
    :func:`estimate_time_offsets`; then rounds of :func:`geometry.calibrate_session` on the
    resynchronised trials and :func:`offsets_with_cameras` per trial with the session's
    cameras, until no offset moves by more than ``tol`` frames. With ``continuous`` each
    trial's offsets are then refined in continuous time with the session's cameras (their
    poses refined too, for that trial's fit only), as at the end of :func:`synchronise_rig`;
    the fit's Gauss–Newton std replaces the block halves' std, and the session is calibrated
    again with the new offsets. ``session_options`` go to :func:`geometry.calibrate_session`
    (``image_size``, ``refine_focal``, …).

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
                                        seed=seed, smooth=0, continuous=False)
                   for s, o in zip(smooth, off)]
        new = np.stack([np.where(np.isfinite(r["offset_std"]), r["offsets"], o)
                        for r, o in zip(results, off)])
        step = float(np.max(np.abs(new - off)))
        off = new
        if step < tol:
            break
    else:
        cal = calibrate_session([apply_time_offsets(x, o) for x, o in zip(xs, off)], K,
                                seed=seed, **session_options)
    if continuous and results is not None and cal is not None and cal.valid:
        refined = [_refined(x, s, o, r, cal, reference)
                   for x, s, o, r in zip(xs, smooth, off, results)]
        if any(r is not None for r in refined):
            new = np.stack([o if r is None else r[0] for r, o in zip(refined, off)])
            again = calibrate_session([apply_time_offsets(x, o) for x, o in zip(xs, new)], K,
                                      seed=seed, **session_options)
            if again.valid:
                off, cal = new, again
                results = [r0 if r is None else r[1] for r, r0 in zip(refined, results)]
    return off, results, cal
