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
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera import skew
from ..common.validate import as_array, as_matrix, check_positive

__all__ = ["FocalResult", "intrinsics_from_image_size", "focal_from_fundamental"]


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
        f = np.broadcast_to(f, w.shape)
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
    _, _, Vt = np.linalg.svd(np.swapaxes(F, -1, -2))
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
    batch = np.broadcast_shapes(F.shape[:-2], p1.shape[:-1], p2.shape[:-1])
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
    lo, hi = (focal_range[0] * ref) ** 2, (focal_range[1] * ref) ** 2
    valid = (f1sq > lo) & (f1sq < hi) & (f2sq > lo) & (f2sq < hi)
    f1 = np.where(valid, np.sqrt(np.abs(f1sq)), 0.0)
    f2 = np.where(valid, np.sqrt(np.abs(f2sq)), 0.0)
    return FocalResult(f1=f1, f2=f2, valid=np.asarray(valid))
