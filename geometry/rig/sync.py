"""Synchronisation of unsynchronised cameras from the epipolar geometry of pooled joints.

Convention: ``offsets[c] = d`` means camera ``c``'s frame ``t + d`` shows the instant of the
reference camera's frame ``t``; :func:`apply_time_offsets` resamples every camera onto the
reference's frame times (linear interpolation for fractional offsets).

Method (:func:`estimate_time_offsets`): for a static rig, joints of the same instant obey one
fundamental matrix per camera pair. For every camera and every candidate whole-frame shift, all
frames' joints are pooled into one robust F problem (one batched call of the RANSAC engine over
all shifts); the shift with the smallest robust epipolar error wins. The sub-frame offset then
is the vertex of the parabola through the least-squares epipolar costs of the best shift and
its two neighbours (see :func:`_refine`).

Quality: the whole estimate (best whole-frame shift, then the sub-frame vertex) is repeated on
random halves of the frames (in blocks of consecutive frames, so slow stretches and fast ones
are resampled together); the spread of the halves gives each offset a standard deviation and a
confidence, and ``confident=False`` marks offsets that may be off by half a frame or more. On
synthetic people and on Pose2Sim detections shifted by known amounts the flag catches ≥ 90 % of
such estimates (see the issue-21 figures in ``tests/geometry/rig/test_quality_flags.py``).

On real detections this pooled-F estimate can be off by a whole frame (the Pose2Sim balancing
trial shifted by known amounts: up to ~1 frame); :func:`geometry.synchronise_rig`
(:mod:`geometry.rig.sync_joint`) starts from it and refines the offsets with the rig's cameras
(``benchmarks/accuracy_offsets.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from ..common.checks import check_int
from ..common.validate import as_array, as_mask, as_points, check_positive
from ..epipolar.fundamental import fundamental_least_squares, sampson_distance
from ..epipolar.fundamental_ransac import estimate_fundamental

__all__ = ["TimeOffsets", "estimate_time_offsets", "apply_time_offsets", "shift_frames",
           "temporal_outliers"]


@dataclass(frozen=True)
class TimeOffsets:
    """Result of :func:`estimate_time_offsets` for ``C`` cameras.

    ``offsets (C,)`` frames (float; 0 for the reference), ``integer (C,)`` the best whole-frame
    shift, ``shifts (S,)`` the candidate whole-frame shifts and ``cost (C, S)`` their robust
    epipolar error (median Sampson distance, px; inf where not computable), ``valid (C,)``: an
    offset could be computed at all.

    Quality of each offset, from the score curve and its variability over blocks of frames:

    - ``gap (C,)``: the second-best gap — cost of the best shift at least two frames from the
      best one, minus the best cost, over the best cost (inf for the reference);
    - ``agreement (C,)``: fraction of random halves of the frames (in blocks) whose own cost
      curve has its minimum within a frame of the best shift (at the best shift without
      ``subframe``); below 0.9 the estimate is not reproducible;
    - ``sharpness (C,)``: the parabola's curvature at the minimum relative to the minimum cost
      (``(c₋ − 2c₀ + c₊) / c₀``; 0 where there is no minimum);
    - ``subframe_ok (C,)``: the sub-frame value is used: its minimum was bracketed and its std
      is below the whole frame's rounding error (``1/√12``); False where the whole-frame value
      is kept (never silently: this flag says so);
    - ``offset_std (C,)``: standard deviation of the offset (frames): the whole estimate (best
      whole-frame shift, then the sub-frame vertex) repeated on random halves of the frames (in
      blocks), their spread ``/√2``, times :data:`STD_INFLATION` (measured on synthetic
      people); whole-frame values add their rounding error ``1/√12``; inf where not computable;
    - ``confidence (C,)``: the probability that the offset is within half a frame under a
      normal error with that std; ``confident (C,)``: ``valid``, ``subframe_ok`` and
      ``confidence ≥`` :data:`CONFIDENT_P` (0.99; False: the offset may be off by half a frame
      or more).
    """

    offsets: np.ndarray
    integer: np.ndarray
    shifts: np.ndarray
    cost: np.ndarray
    valid: np.ndarray
    gap: np.ndarray | None = None
    agreement: np.ndarray | None = None
    sharpness: np.ndarray | None = None
    subframe_ok: np.ndarray | None = None
    offset_std: np.ndarray | None = None
    confidence: np.ndarray | None = None
    confident: np.ndarray | None = None


BLOCKS = 10            # frame blocks of the half-sample replicates
HALVES = 20            # random halves (of the blocks) in the agreement
QUANTISATION_STD = 1.0 / np.sqrt(12.0)   # std of rounding a uniform offset to whole frames
STD_INFLATION = 1.0    # half-sample std × this = reported std (1: measured on synthetic people)
# ``confident`` needs P(|error| < ½ frame) ≥ this. With an honest std, 0.9 let every offset with
# a std up to 0.30 frame pass, 6–10 % of which land half a frame off: the flag then missed many
# of them (issue 21's clips: synchronise_session flagged 1 of 3; this function 48 of 55)
CONFIDENT_P = 0.99


def confidence_from_std(std) -> np.ndarray:
    """P(|error| < ½ frame) for a normal error of std ``std`` (frames; array): 0 where the std
    is NaN or infinite."""
    std = np.asarray(std, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = erf(0.5 / (np.sqrt(2.0) * np.maximum(std, 1e-12)))
    return np.where(np.isfinite(std), c, 0.0)


def split_frames(tq):
    """Frame times ``tq`` (array) → ``(i0 int64, a)``: the frame before and the fraction of the
    way to the next (``tq = i0 + a``, ``0 ≤ a < 1``); a time a hair below a whole frame (e.g.
    −3 − 4e-16 from a 0.05 grid) is that frame, not a blend with the one before."""
    tq = np.asarray(tq, dtype=np.float64)
    i0 = np.floor(tq)
    i0 = np.where(np.isclose(tq - i0, 1.0), i0 + 1, i0)
    return i0.astype(np.int64), np.clip(tq - i0, 0.0, None)


def shift_frames(x, d: float) -> np.ndarray:
    """``x (T, J, 2)`` sampled at frame times ``t + d`` (linear interpolation; NaN outside)."""
    T = x.shape[0]
    i0, a = split_frames(np.arange(T) + d)
    a = a[:, None, None]
    out = np.full_like(x, np.nan)
    ok0 = (i0 >= 0) & (i0 < T)
    ok1 = (i0 + 1 >= 0) & (i0 + 1 < T)
    exact = np.isclose(a[:, 0, 0], 0.0)
    lo = np.where(ok0[:, None, None], x[np.clip(i0, 0, T - 1)], np.nan)
    hi = np.where(ok1[:, None, None], x[np.clip(i0 + 1, 0, T - 1)], np.nan)
    out[:] = np.where(exact[:, None, None], lo, (1 - a) * lo + a * hi)
    return out


def apply_time_offsets(x, offsets) -> np.ndarray:
    """Resample ``x (C, T, J, 2)`` so every camera shows the reference camera's instants:
    ``out[c, t] = x[c](t + offsets[c])`` (linear interpolation, NaN outside the recording)."""
    x = as_points("x", x)
    if x.ndim != 4:
        raise ValueError(f"x: expected shape (C, T, J, 2), got shape {x.shape}")
    d = as_array("offsets", offsets, finite=True)
    if d.shape != (x.shape[0],):
        raise ValueError(f"offsets: expected shape ({x.shape[0]},), got shape {d.shape}")
    return np.stack([shift_frames(x[c], float(d[c])) for c in range(x.shape[0])])


def check_offset_inputs(x, max_offset, reference) -> np.ndarray:
    """Checked ``x (C, T, J, 2)`` of an offset estimator, with ``max_offset`` an integer in
    ``[0, T)`` and ``reference`` a camera index (``ValueError`` naming the argument)."""
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
    return x


def estimate_time_offsets(x, mask=None, *, max_offset: int = 10, reference: int = 0,
                          subframe: bool = True, threshold: float = 3.0, seed: int = 0) -> TimeOffsets:
    """Per-camera time offsets of an unsynchronised static rig from 2D joints.

    Args:
        x: ``(C, T, J, 2)`` pixels (NaN = missing) of a moving person; the rig is static.
        mask: optional ``(C, T, J)`` bool of usable observations.
        max_offset: whole-frame shifts in ``[-max_offset, max_offset]`` are tried.
        reference: the camera whose clock the others are expressed in.
        subframe: refine to a fraction of a frame (parabola through the costs of the best
            whole-frame shift and its two neighbours, the bracket moved by a frame where the
            best shift is not the middle one).
        threshold: RANSAC threshold (Sampson distance, px) of the pooled F fits.
        seed: RANSAC seed.
    Returns:
        :class:`TimeOffsets` (see the module docstring for the sign convention) with a quality
        figure per offset: ``confident`` is False where the estimate may be off by half a frame
        or more. A camera whose pooled geometry cannot be fitted at any shift (too few joints
        seen together with the reference, a degenerate configuration) has ``valid=False`` and
        offset 0.
    """
    x = check_offset_inputs(x, max_offset, reference)
    C, T, J = x.shape[:3]
    m = as_mask("mask", mask, (C, T, J))
    x = np.where(m[..., None], x, np.nan)
    threshold = check_positive("threshold", threshold)
    check_int("seed", seed, 0, None)
    if not isinstance(subframe, (bool, np.bool_)):
        raise TypeError(f"subframe: expected a bool, got {subframe!r}")
    shifts = np.arange(-max_offset, max_offset + 1)
    S = shifts.size
    others = [c for c in range(C) if c != reference]
    cost = np.full((C, S), np.inf)
    cost[reference] = 0.0
    out = {k: np.zeros(C) for k in ("offsets", "sharpness", "offset_std")}
    out["gap"] = np.full(C, np.nan)
    out["agreement"] = np.zeros(C)
    out["offset_std"][:] = np.inf
    integer = np.zeros(C, dtype=np.int64)
    valid = np.zeros(C, dtype=bool)
    sub_ok = np.zeros(C, dtype=bool)
    valid[reference] = sub_ok[reference] = True
    out["gap"][reference], out["offset_std"][reference] = np.inf, 0.0
    out["agreement"][reference] = 1.0
    if others:
        a = np.stack([np.broadcast_to(x[reference].reshape(-1, 2), (S, T * J, 2)) for _ in others])
        b = np.stack([np.stack([shift_frames(x[c], float(d)).reshape(-1, 2) for d in shifts])
                      for c in others])
        fit = estimate_fundamental(a, b, threshold=threshold, seed=seed)
        with np.errstate(invalid="ignore"):
            dist = sampson_distance(fit.F, a, b)
        block = (np.arange(T * J) // J) * BLOCKS // T
    for k, c in enumerate(others):
        for s in range(S):
            dk = dist[k, s][np.isfinite(dist[k, s])]
            if fit.valid[k, s] and dk.size >= 16:
                cost[c, s] = float(np.median(dk))
        if not np.isfinite(cost[c]).any():
            continue
        best = int(np.argmin(cost[c]))
        integer[c] = shifts[best]
        out["offsets"][c] = float(shifts[best])
        valid[c] = True
        far = [s for s in range(S) if abs(s - best) > 1 and np.isfinite(cost[c, s])]
        out["gap"][c] = (min(cost[c, far]) - cost[c, best]) / max(cost[c, best], 1e-300) \
            if far else np.inf
        halves = _halves(dist[k], best, block, seed)       # [(blocks of the half, its argmin)]
        sub = _refine(x[reference], x[c], int(shifts[best])) if subframe else None
        if sub is not None and sub.ok:
            out["offsets"][c] = sub.offset
            out["sharpness"][c] = sub.sharpness
            sub_ok[c] = True
        reps = []
        for blocks, arg in halves:
            est = float(shifts[arg])
            if sub is not None and sub.ok and abs(arg - best) <= 1:
                v = sub.vertex_of(blocks)
                est = float(shifts[arg]) if v is None else v
            reps.append(est)
        if not subframe:
            sub_ok[c] = True
        out["agreement"][c] = np.mean([abs(a - best) <= (1 if subframe else 0)
                                       for _, a in halves]) if halves else 0.0
        if len(reps) >= 4:
            # a half holds half the data: its spread is √2 times the full estimate's
            sd = float(np.std(reps, ddof=1)) / np.sqrt(2.0)
            if not sub_ok[c] or not subframe:
                sd = float(np.hypot(sd, QUANTISATION_STD))   # + rounding to whole frames
            out["offset_std"][c] = STD_INFLATION * sd
    std = out["offset_std"]
    conf = np.where(valid, confidence_from_std(std), 0.0)
    return TimeOffsets(offsets=out["offsets"], integer=integer, shifts=shifts, cost=cost,
                       valid=valid, gap=out["gap"], agreement=out["agreement"],
                       sharpness=out["sharpness"],
                       subframe_ok=sub_ok, offset_std=std, confidence=conf,
                       confident=valid & sub_ok & (conf >= CONFIDENT_P))


def _halves(d, best, block, seed):
    """Random halves of the frame blocks and each half's best whole-frame shift: the cost
    curve of a half is the mean over its blocks of the per-block median Sampson distance
    (``d (S, N)``, ``block (N,)``). Returns ``[(blocks, argmin)]`` (empty with < 4 blocks)."""
    S = d.shape[0]
    med = np.full((S, BLOCKS), np.nan)
    for i in range(BLOCKS):
        sel = d[:, block == i]
        for s in range(S):
            v = sel[s][np.isfinite(sel[s])]
            if v.size >= 8:
                med[s, i] = np.median(v)
    have = np.flatnonzero(np.isfinite(med[best]))
    if have.size < 4:
        return []
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(HALVES):
        half = np.sort(rng.choice(have, have.size // 2, replace=False))
        m = med[:, half]
        c = np.where(np.isfinite(m).all(1), m.mean(1) if m.size else np.inf, np.inf)
        out.append((half, int(np.argmin(c))))
    return out


def temporal_outliers(x, *, min_px: float = 12.0) -> np.ndarray:
    """Single-frame glitches of tracks ``x (T, J, 2)`` → ``(T, J)`` bool: farther than
    ``max(min_px, 6 MAD)`` px from the 5-frame running median of the same joint."""
    from scipy.ndimage import median_filter
    med = median_filter(x, size=(5, 1, 1), mode="nearest")
    dev = np.linalg.norm(x - med, axis=-1)
    ok = np.isfinite(dev)
    if not ok.any():
        return np.zeros(dev.shape, dtype=bool)
    mad = float(np.median(dev[ok]))
    return ok & (dev > max(min_px, 6.0 * 1.4826 * mad))


@dataclass(frozen=True)
class _SubFrame:
    """The sub-frame step's result: ``offset`` (frames), ``ok`` (a bracketed minimum),
    ``sharpness``; :meth:`vertex_of` re-estimates the offset from the pairs of some frame
    blocks only (the same least-squares ``F`` per shift)."""

    offset: float
    ok: bool
    sharpness: float
    d0: int = 0
    e: np.ndarray | None = None
    block: np.ndarray | None = None

    def vertex_of(self, blocks):
        keep = np.isin(self.block, blocks)
        if keep.sum() < 16:
            return None
        v = _vertex(_trimmed(self.e, keep))
        return None if v is None else self.d0 + v[0]


def _refine(xr, xc, d0):
    """Sub-frame offset near the whole-frame shift ``d0`` → :class:`_SubFrame`.

    The vertex of the parabola through the least-squares epipolar costs at three consecutive
    whole-frame shifts whose middle one is lowest (``d0 − 1, d0, d0 + 1``, or that bracket
    moved by one frame when ``d0 ± 1`` is lower than ``d0``). Whole-frame samples keep the
    noise level of every candidate the same (interpolating between frames averages the detector
    noise and biases the cost towards half frames). Near the true offset the squared epipolar
    misfit grows quadratically with the time error (locally linear motion), so the vertex is the
    sub-frame offset. The cost is the 90 % trimmed mean of the squared Sampson distances of one
    fixed set of pairs, each shift with its own least-squares ``F``. Gross outliers are found per
    track, by time (:func:`temporal_outliers`), not by the epipolar fit at ``d0``: that would
    favour the joints that happen to fit there. ``ok`` is False when no bracket has its lowest
    cost in the middle."""
    fail = _SubFrame(float(d0), False, 0.0)
    xr = np.where(temporal_outliers(xr)[..., None], np.nan, xr)
    xc = np.where(temporal_outliers(xc)[..., None], np.nan, xc)
    T, J = xr.shape[:2]
    a = xr.reshape(-1, 2)
    bs = np.stack([shift_frames(xc, float(d0 + k)).reshape(-1, 2) for k in range(-2, 3)])
    use = np.all(np.isfinite(bs), axis=(0, 2)) & np.all(np.isfinite(a), -1)
    n = int(use.sum())
    if n < 16:
        return fail
    A = np.broadcast_to(a, bs.shape)
    F, ok = fundamental_least_squares(A, bs, np.broadcast_to(use, bs.shape[:2]), iterations=10)
    if not ok[1:4].all():
        return fail
    with np.errstate(invalid="ignore"):
        e = sampson_distance(F, A, bs, squared=True)[:, use]            # (5, n)
    full = _vertex(_trimmed(e, np.ones(n, bool)))
    if full is None:
        return fail
    block = (np.flatnonzero(use) // J) * BLOCKS // T
    return _SubFrame(float(d0 + full[0]), True, float(full[1]), int(d0), e, block)


def _trimmed(e, keep):
    """90 % trimmed mean of each row of ``e[:, keep]`` → ``(rows,)``."""
    v = np.sort(e[:, keep], axis=1)
    k = max(8, int(0.9 * v.shape[1]))
    return v[:, :k].mean(1)


def _vertex(c):
    """Offset (relative to the middle of 5 costs at shifts −2…2) of the parabola vertex through
    the lowest bracketed triple, and its relative curvature; None without a bracket."""
    for j in sorted((1, 2, 3), key=lambda j: (j != 2, c[j])):
        c0, c1, c2 = c[j - 1], c[j], c[j + 1]
        den = c0 - 2.0 * c1 + c2
        if den > 0 and c1 <= min(c0, c2) and c1 <= c[2]:
            return (j - 2) + float(np.clip(0.5 * (c0 - c2) / den, -0.5, 0.5)), den / max(c1, 1e-300)
    return None

