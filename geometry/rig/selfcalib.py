"""Self-calibration helpers: a first guess of the intrinsics and focal lengths from ``F``.

- :func:`intrinsics_from_image_size` — ``K`` with the principal point at the image centre and a
  focal length from a field-of-view guess (or a given focal), the usual starting point when a
  camera's calibration is unknown.
- :func:`focal_from_fundamental` — Bougnoux's closed form (S. Bougnoux, "From projective to
  Euclidean space under any practical situation, a criticism of self-calibration", ICCV 1998;
  Hartley & Zisserman eq. (19.xx)) for the two focal lengths of a fundamental matrix, given the
  principal points and square pixels. It is singular when the optical axes of the two cameras
  intersect (e.g. every camera of a ring aimed at one point), so every result carries a
  ``valid`` flag: ``f² > 0`` and a denominator that is not vanishingly small relative to its
  numerator.
- :func:`focal_consensus` — one focal length for a set of camera pairs, robust to Bougnoux's
  failures: the focal whose essential matrices ``E = Kᵀ F K`` are closest to having two equal
  singular values (median over pairs, scanned over a plausible field-of-view range), accepted
  only when that minimum is distinct (the cost at ``f/√2`` and ``f·√2`` at least
  :data:`CONTRAST` times higher; near a singular configuration the cost is flat). Bougnoux's
  per-pair values are screened against the same range and the consensus (outliers reported),
  so a Bougnoux estimate at half the true focal is never accepted.
- :func:`focal_scale_check` — after bundle adjustment: do the refined focals agree with the
  pairs' epipolar geometry, or are they all off by a common factor (the focal–depth
  ambiguity)? The disagreement is added to the reported focal std.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera import skew
from ..common.checks import batch_shape, safe_svd
from ..common.validate import as_array, as_matrix, check_positive

__all__ = ["FocalResult", "FocalConsensus", "intrinsics_from_image_size", "focal_from_fundamental",
           "focal_consensus", "essential_cost", "FocalScaleCheck", "focal_scale_check"]

FOV_RANGE_DEG = (15.0, 130.0)   # plausible horizontal fields of view (on the larger image side)
CONTRAST = 3.0                  # essential cost at f/√2 and f·√2 over the cost at f
AGREE = 0.25                    # Bougnoux values within 25 % of the consensus are inliers


@dataclass(frozen=True)
class FocalResult:
    """``f1, f2 (...)`` focal lengths (px) of the first and second camera of ``F``
    (``x2ᵀ F x1 = 0``); ``valid (...)`` where both squared focals were positive and the formula
    well conditioned (invalid entries hold ``0``)."""

    f1: np.ndarray
    f2: np.ndarray
    valid: np.ndarray


def intrinsics_from_image_size(image_size, focal=None, *, fov_deg: float = 50.0) -> np.ndarray:
    """Initial ``K (..., 3, 3)`` from ``image_size (..., 2)`` = ``(width, height)`` px.

    The principal point is the image centre ``((w)/2, (h)/2)``; the focal length is ``focal`` px
    when given (scalar or ``(...)``), else the one that gives a horizontal field of view of
    ``fov_deg`` degrees on the larger image side: ``f = max(w, h) / (2 tan(fov/2))``.
    """
    size = as_array("image_size", image_size, tail=(2,), finite=True)
    if np.any(size <= 0):
        raise ValueError(f"image_size: expected positive (width, height), got {size.tolist()}")
    w, h = size[..., 0], size[..., 1]
    if focal is None:
        fov = check_positive("fov_deg", fov_deg)
        if fov >= 180:
            raise ValueError(f"fov_deg: expected a value in (0, 180), got {fov_deg}")
        f = np.maximum(w, h) / (2.0 * np.tan(np.radians(fov) / 2.0))
    else:
        f = as_array("focal", focal, finite=True)
        if np.any(f <= 0):
            raise ValueError(f"focal: expected positive focal length(s) in px, got {focal}")
        try:
            f = np.broadcast_to(f, w.shape)
        except ValueError:
            raise ValueError(f"focal: shape {f.shape} does not broadcast to the image sizes' "
                             f"batch {w.shape}") from None
    K = np.zeros(w.shape + (3, 3))
    K[..., 0, 0] = f
    K[..., 1, 1] = f
    K[..., 0, 2] = w / 2.0
    K[..., 1, 2] = h / 2.0
    K[..., 2, 2] = 1.0
    return K


def _one_focal(F, pa, pb, rel_eps):
    """Squared focal of the camera whose points ``x_a`` enter as ``x_bᵀ F x_a = 0``."""
    # epipole in image b: left null vector of F (Fᵀ e_b = 0)
    _, _, Vt, _ = safe_svd(np.swapaxes(F, -1, -2))
    e = Vt[..., -1, :]
    I3 = np.diag([1.0, 1.0, 0.0])
    Se = skew(e)
    mv = lambda A, v: np.einsum("...ij,...j->...i", A, v)  # noqa: E731
    dot = lambda a, b: np.einsum("...i,...i->...", a, b)  # noqa: E731
    num = -dot(pb, mv(Se @ I3 @ F, pa)) * dot(pa, mv(np.swapaxes(F, -1, -2), pb))
    den = dot(pb, mv(Se @ I3 @ F @ I3 @ np.swapaxes(F, -1, -2), pb))
    scale = np.abs(num) + np.abs(den) * 1e6
    ok = np.abs(den) > rel_eps * np.maximum(scale, 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        f2 = np.where(ok, num / np.where(ok, den, 1.0), -1.0)
    return f2


def focal_from_fundamental(F, pp1, pp2, *, rel_eps: float = 1e-9,
                           focal_range=(1e-3, 1e3)) -> FocalResult:
    """Bougnoux's focal lengths of both cameras of ``F (..., 3, 3)`` (``x2ᵀ F x1 = 0``).

    ``pp1``, ``pp2 (..., 2)``: principal points (px) of camera 1 and 2 (usually the image
    centres). Square pixels and zero skew are assumed. A result is ``valid`` when both squared
    focals are positive, their denominators are not negligible (``rel_eps``), and both focals
    lie within ``focal_range`` times the principal point's distance scale
    ``max(|pp1|, |pp2|)`` (a guard against near-singular configurations, whose focals explode).
    """
    F = as_matrix("F", F, 3, 3)
    p1 = as_array("pp1", pp1, tail=(2,), finite=True)
    p2 = as_array("pp2", pp2, tail=(2,), finite=True)
    rel_eps = check_positive("rel_eps", rel_eps)
    fr = as_array("focal_range", focal_range, finite=True)
    if fr.shape != (2,) or not 0 < fr[0] < fr[1]:
        raise ValueError(f"focal_range: expected (low, high) with 0 < low < high, got "
                         f"{focal_range!r}")
    batch = batch_shape({"F": 2, "pp1": 1, "pp2": 1}, F=F, pp1=p1, pp2=p2)
    F = np.broadcast_to(F, batch + (3, 3))
    h1 = np.concatenate([np.broadcast_to(p1, batch + (2,)), np.ones(batch + (1,))], -1)
    h2 = np.concatenate([np.broadcast_to(p2, batch + (2,)), np.ones(batch + (1,))], -1)
    # Shift both images so the principal points are the origins: F' = T2ᵀ F T1 with T = [I | p].
    T1 = np.zeros(batch + (3, 3))
    T1[..., :, 2] = h1
    T1[..., 0, 0] = T1[..., 1, 1] = 1.0
    T2 = np.zeros(batch + (3, 3))
    T2[..., :, 2] = h2
    T2[..., 0, 0] = T2[..., 1, 1] = 1.0
    Fc = np.swapaxes(T2, -1, -2) @ F @ T1
    Fc = Fc / np.maximum(np.linalg.norm(Fc, axis=(-2, -1), keepdims=True), 1e-300)
    o = np.zeros(batch + (3,))
    o[..., 2] = 1.0
    f1sq = _one_focal(Fc, o, o, rel_eps)
    f2sq = _one_focal(np.swapaxes(Fc, -1, -2), o, o, rel_eps)
    ref = np.maximum(np.linalg.norm(p1, axis=-1), np.linalg.norm(p2, axis=-1))
    ref = np.broadcast_to(np.maximum(ref, 1.0), batch)
    lo, hi = (fr[0] * ref) ** 2, (fr[1] * ref) ** 2
    valid = (f1sq > lo) & (f1sq < hi) & (f2sq > lo) & (f2sq < hi)
    f1 = np.where(valid, np.sqrt(np.abs(f1sq)), 0.0)
    f2 = np.where(valid, np.sqrt(np.abs(f2sq)), 0.0)
    return FocalResult(f1=f1, f2=f2, valid=np.asarray(valid))


@dataclass(frozen=True)
class FocalConsensus:
    """Result of :func:`focal_consensus`: ``f`` (px; the scan's minimum, NaN when not
    ``valid``), ``valid`` (plausible and identifiable), ``contrast`` (essential cost at
    ``f/√2`` and ``f·√2`` over the cost at ``f``, the smaller), ``range`` (the plausible focal
    range scanned, px), ``bougnoux (K,)`` the per-pair Bougnoux values that were valid and
    plausible, ``bougnoux_inlier (K,)`` those within :data:`AGREE` of ``f``."""

    f: float
    valid: bool
    contrast: float
    range: tuple
    bougnoux: np.ndarray
    bougnoux_inlier: np.ndarray


def essential_cost(F, pp1, pp2, f) -> np.ndarray:
    """Median over pairs of ``(s₁ − s₂)/(s₁ + s₂)`` (singular values of ``E = K₂ᵀ F K₁`` with
    focal ``f`` px and principal points ``pp1, pp2 (P, 2)``) for every ``f (M,)`` → ``(M,)``;
    0 for a perfect essential matrix."""
    F = np.asarray(F, float)
    f = np.atleast_1d(np.asarray(f, float))
    K1 = np.zeros((f.size,) + F.shape)
    K1[..., 0, 0] = K1[..., 1, 1] = f[:, None]
    K1[..., 2, 2] = 1.0
    K2 = K1.copy()
    K1[..., :2, 2] = pp1
    K2[..., :2, 2] = pp2
    E = np.swapaxes(K2, -1, -2) @ F[None] @ K1
    _, S, _, ok = safe_svd(E)
    r = np.where(ok[..., None], S, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = (r[..., 0] - r[..., 1]) / (r[..., 0] + r[..., 1])
    return np.nanmedian(np.where(np.isfinite(a), a, np.nan), axis=-1)


def focal_consensus(F, pp1, pp2, *, fov_range_deg=FOV_RANGE_DEG, steps: int = 121) -> FocalConsensus:
    """One focal length (px) shared by the cameras of the pairs ``F (P, 3, 3)``
    (``x2ᵀ F x1 = 0``), principal points ``pp1, pp2 (P, 2)`` (image centres: the image's larger
    side is taken as ``2 max |pp|``). See the module docstring; ``steps`` log-spaced focals
    are scanned over the range that gives ``fov_range_deg`` fields of view."""
    F = as_matrix("F", F, 3, 3)
    if F.ndim != 3 or F.shape[0] < 1:
        raise ValueError(f"F: expected shape (P, 3, 3) with P >= 1, got shape {F.shape}")
    p1 = as_array("pp1", pp1, tail=(2,), finite=True)
    p2 = as_array("pp2", pp2, tail=(2,), finite=True)
    if p1.shape != (F.shape[0], 2) or p2.shape != (F.shape[0], 2):
        raise ValueError(f"pp1/pp2: expected shape ({F.shape[0]}, 2), got {p1.shape}, {p2.shape}")
    fov = as_array("fov_range_deg", fov_range_deg, finite=True)
    if fov.shape != (2,) or not 0 < fov[0] < fov[1] < 180:
        raise ValueError(f"fov_range_deg: expected (low, high) in (0, 180), got {fov_range_deg!r}")
    side = 2.0 * max(float(np.abs(p1).max()), float(np.abs(p2).max()), 1.0)
    lo, hi = side / (2 * np.tan(np.radians(fov[1]) / 2)), side / (2 * np.tan(np.radians(fov[0]) / 2))
    fs = np.geomspace(lo, hi, int(steps))
    cost = essential_cost(F, p1, p2, fs)
    fb = focal_from_fundamental(F, p1, p2)
    bou = np.concatenate([fb.f1[fb.valid], fb.f2[fb.valid]])
    bou = bou[(bou >= lo) & (bou <= hi)]
    nan = FocalConsensus(float("nan"), False, 0.0, (lo, hi), bou, np.zeros(bou.size, bool))
    if not np.isfinite(cost).any():
        return nan
    k = int(np.nanargmin(cost))
    f = float(fs[k])
    if 0 < k < fs.size - 1 and np.all(np.isfinite(cost[k - 1:k + 2])):   # parabola in log f
        c0, c1, c2 = cost[k - 1:k + 2]
        den = c0 - 2 * c1 + c2
        if den > 0:
            f = float(np.exp(np.log(fs[k]) + 0.5 * (c0 - c2) / den * np.log(fs[1] / fs[0])))
    around = essential_cost(F, p1, p2, [f / np.sqrt(2.0), f, f * np.sqrt(2.0)])
    contrast = float(min(around[0], around[2]) / max(around[1], 1e-12))
    valid = bool(0 < k < fs.size - 1 and np.isfinite(contrast) and contrast >= CONTRAST)
    inl = np.abs(bou - f) <= AGREE * f
    return FocalConsensus(f if valid else float("nan"), valid, contrast, (lo, hi), bou, inl)


@dataclass(frozen=True)
class FocalScaleCheck:
    """Result of :func:`focal_scale_check`: ``scale`` — the common factor of all focals that
    best fits the pairs' epipolar geometry; ``cost_given``/``cost_best`` — the essential cost at
    the given focals and at ``scale`` times them; ``consistent`` — ``cost_given`` is within
    :data:`SCALE_TOLERANCE` times ``cost_best`` (the focals agree with the F's); ``excess (C,)``
    — the focal error this suggests, ``|scale − 1| f`` (0 where consistent), px."""

    scale: float
    cost_given: float
    cost_best: float
    consistent: bool
    excess: np.ndarray


SCALE_TOLERANCE = 2.0
FLAT_CONTRAST = 5.0      # cost at the ends of the scanned factors over the minimum


def focal_scale_check(F, pairs, K, *, scale_range=(0.125, 8.0), steps: int = 161) -> FocalScaleCheck:
    """Do the focal lengths of ``K (C, 3, 3)`` agree with the pairwise ``F (P, 3, 3)``
    (``x_jᵀ F x_i = 0`` for ``pairs (P, 2)`` = ``(i, j)``)?

    A bundle adjustment can settle on all focals wrong by a common factor (the focal–depth
    ambiguity of distant subjects) while its covariance reports a small std. The pairs' essential
    cost (:func:`essential_cost`) as a function of a common factor ``λ`` on every focal is lowest
    near ``λ = 1`` when the focals are right; a minimum elsewhere, clearly below the cost at 1,
    gives the focal error ``|λ − 1| f`` that the std must include. A minimum at the end of the
    scanned range, or a flat cost (neither end :data:`FLAT_CONTRAST` times the minimum), says
    nothing: consistent."""
    F = as_matrix("F", F, 3, 3)
    K = as_matrix("K", K, 3, 3)
    pr = np.asarray(pairs)
    if pr.ndim != 2 or pr.shape != (F.shape[0], 2) or pr.dtype.kind not in "iu" \
            or np.any(pr < 0) or np.any(pr >= K.shape[0]):
        raise ValueError(f"pairs: expected ({F.shape[0]}, 2) camera indices, got {pairs!r}")
    lam = np.geomspace(scale_range[0], scale_range[1], int(steps))
    Ks = np.broadcast_to(K, (lam.size,) + K.shape).copy()
    Ks[..., :2, :2] *= lam[:, None, None, None]
    E = np.swapaxes(Ks[:, pr[:, 1]], -1, -2) @ F[None] @ Ks[:, pr[:, 0]]
    _, S, _, ok = safe_svd(E)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(ok, (S[..., 0] - S[..., 1]) / (S[..., 0] + S[..., 1]), np.nan)
    cost = np.nanmedian(a, axis=1) if np.isfinite(a).any() else np.full(lam.size, np.nan)
    c1 = float(essential_cost_scaled(F, pr, K))
    if not np.isfinite(cost).any() or not np.isfinite(c1):
        return FocalScaleCheck(1.0, c1, c1, True, np.zeros(K.shape[0]))
    k = int(np.nanargmin(cost))
    best = float(cost[k])
    # only a distinct minimum says anything (near the singular configuration, e.g. a ring of
    # cameras aimed at one point, the cost is flat in the focal)
    ends = max(cost[0], cost[-1])
    distinct = bool(0 < k < lam.size - 1 and ends >= FLAT_CONTRAST * max(best, 1e-12))
    consistent = bool(c1 <= SCALE_TOLERANCE * best + 1e-12) or not distinct
    s = float(lam[k])
    excess = np.zeros(K.shape[0]) if consistent else abs(s - 1.0) * K[:, 0, 0]
    return FocalScaleCheck(s, c1, best, consistent, excess)


def essential_cost_scaled(F, pairs, K) -> float:
    """:func:`essential_cost` of the pairs with each camera's own ``K`` (median over pairs)."""
    E = np.swapaxes(K[pairs[:, 1]], -1, -2) @ F @ K[pairs[:, 0]]
    _, S, _, ok = safe_svd(E)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(ok, (S[:, 0] - S[:, 1]) / (S[:, 0] + S[:, 1]), np.nan)
    return float(np.nanmedian(a)) if np.isfinite(a).any() else float("nan")
