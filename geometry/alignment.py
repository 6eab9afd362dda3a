"""Similarity alignment and metric normalisation of reconstructions.

- :func:`umeyama` — the least-squares similarity ``dst ≈ s R src + t`` (Umeyama 1991), batched,
  with masks/weights; the evaluation helper behind :func:`n_mpjpe`.
- :func:`n_mpjpe` — 3D error after one global similarity alignment and a per-frame optimal
  scale (the "normalised MPJPE" of Rhodin et al. 2018, with one rigid alignment for the whole
  sequence since the reconstruction's frame is arbitrary).
- :func:`scale_from_height`, :func:`scale_from_bone_lengths` — metric scale of a
  reconstruction from the subject's known height or bone lengths.
- :func:`up_from_spine`, :func:`rotation_aligning` — the world "up" direction from the mean
  spine direction and the rotation that makes it ``+z``.

No skeleton knowledge lives here (``geometry`` never imports ``pose``): callers pass the joint
indices (e.g. pelvis and neck, or bone pairs).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common.checks import batch_shape, check_real, index_array, safe_svd
from .common.validate import as_array, as_mask, as_points, as_weights, check_positive

__all__ = ["Similarity", "umeyama", "apply_similarity", "n_mpjpe", "mpjpe_aligned",
           "scale_from_height", "scale_from_bone_lengths", "up_from_spine",
           "rotation_aligning"]


@dataclass(frozen=True)
class Similarity:
    """``dst ≈ s R src + t``: ``s (...)``, ``R (..., 3, 3)``, ``t (..., 3)``; ``valid (...)``
    where at least 3 non-collinear weighted points were available (else the identity)."""

    s: np.ndarray
    R: np.ndarray
    t: np.ndarray
    valid: np.ndarray


def umeyama(src, dst, mask=None, weights=None, *, with_scale: bool = True) -> Similarity:
    """Least-squares similarity (or rigid, ``with_scale=False``) from ``src`` to ``dst``.

    ``src, dst (..., N, 3)``; ``mask (..., N)`` bool and ``weights (..., N)`` non-negative select
    and weight points; NaN points are ignored. Minimises ``Σ w |dst − (s R src + t)|²`` with
    ``det R = +1`` (Umeyama, PAMI 1991).
    """
    A = as_points("src", src, 3)
    B = as_points("dst", dst, 3)
    if A.shape != B.shape:
        raise ValueError(f"dst: expected shape {A.shape} like src, got shape {B.shape}")
    m = as_mask("mask", mask, A.shape[:-1]) & np.all(np.isfinite(A), -1) & np.all(np.isfinite(B), -1)
    w = np.where(m, as_weights("weights", weights, A.shape[:-1]), 0.0)
    # Normalise first: each problem's points by their largest coordinate, the weights by the
    # largest weight, so no product below can overflow (an inf reaching LAPACK's SVD loops
    # forever); the scale and translation are brought back to the input's units at the end.
    sa = _max_abs(A, m)
    sb = _max_abs(B, m)
    w = w / np.maximum(w.max(-1, initial=0.0), 1e-300)[..., None]
    A = np.where(m[..., None], A / sa[..., None, None], 0.0)
    B = np.where(m[..., None], B / sb[..., None, None], 0.0)
    W = w.sum(-1)
    Wd = np.maximum(W, 1e-300)[..., None]
    ma = (w[..., None] * A).sum(-2) / Wd
    mb = (w[..., None] * B).sum(-2) / Wd
    Ac, Bc = A - ma[..., None, :], B - mb[..., None, :]
    cov = np.einsum("...n,...ni,...nj->...ij", w, Bc, Ac) / Wd[..., None]
    U, S, Vt, ok = safe_svd(cov)
    d = np.sign(np.linalg.det(U) * np.linalg.det(Vt))
    d = np.where(d == 0, 1.0, d)
    D = np.ones(S.shape)
    D[..., 2] = d
    R = np.einsum("...ij,...j,...jk->...ik", U, D, Vt)
    var_a = (w * (Ac ** 2).sum(-1)).sum(-1) / Wd[..., 0]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if with_scale:
            s_n = (S * D).sum(-1) / np.maximum(var_a, 1e-300)
            s = s_n * sb / sa
        else:
            s_n = sa / sb
            s = np.ones(W.shape)
        t = sb[..., None] * (mb - s_n[..., None] * np.einsum("...ij,...j->...i", R, ma))
    valid = ((m.sum(-1) >= 3) & (S[..., 1] > 1e-12 * np.maximum(S[..., 0], 1e-300))
             & (var_a > 0) & np.isfinite(s) & ok & np.all(np.isfinite(t), -1))
    eye = np.broadcast_to(np.eye(3), R.shape)
    return Similarity(s=np.where(valid, s, 1.0), R=np.where(valid[..., None, None], R, eye),
                      t=np.where(valid[..., None], t, 0.0), valid=np.asarray(valid))


def _max_abs(A, m):
    """``(...)`` largest |coordinate| of the points selected by ``m``; 1 where none (or 0)."""
    big = np.max(np.abs(np.where(m[..., None], A, 0.0)), axis=(-2, -1), initial=0.0)
    return np.where(big > 0, big, 1.0)


def apply_similarity(sim: Similarity, X) -> np.ndarray:
    """``s R X + t`` for ``X (..., N, 3)`` (broadcast against the similarity's batch)."""
    if not isinstance(sim, Similarity):
        raise TypeError(f"sim: expected a geometry.Similarity, got {type(sim).__name__}")
    X = as_points("X", X, 3)
    s = as_array("sim", sim.s).reshape(np.shape(sim.s))   # keep a 0-d scale 0-d
    R = as_array("sim", sim.R, tail=(3, 3))
    t = as_array("sim", sim.t, tail=(3,))
    try:
        batch_shape({"X": 2, "s": 0, "R": 2, "t": 1}, X=X, s=s, R=R, t=t)
    except ValueError:
        raise ValueError(f"sim/X: the similarity's batch {s.shape} does not broadcast with X "
                         f"{X.shape}") from None
    return (s[..., None, None] * np.einsum("...ij,...nj->...ni", R, X) + t[..., None, :])


def n_mpjpe(X_est, X_true, mask=None) -> float:
    """N-MPJPE (units of ``X_true``) of a whole reconstruction ``X_est (T, J, 3)``.

    The reconstruction is first brought to the truth's frame with ONE similarity over all
    frames (its frame and scale are arbitrary), then each frame gets its own least-squares scale
    about the truth's origin (``s_t = <X̂_t, X_t> / |X̂_t|²``), and the mean Euclidean joint
    error over valid (``mask (T, J)``, finite) joints is returned. NaN when nothing is valid.
    """
    A = as_points("X_est", X_est, 3)
    B = as_points("X_true", X_true, 3)
    if A.ndim != 3 or A.shape != B.shape:
        raise ValueError(f"X_est/X_true: expected equal shapes (T, J, 3), got {A.shape} and "
                         f"{B.shape}")
    m = as_mask("mask", mask, A.shape[:-1]) & np.all(np.isfinite(A), -1) & np.all(np.isfinite(B), -1)
    if not m.any():
        return float("nan")
    sim = umeyama(A.reshape(-1, 3), B.reshape(-1, 3), m.reshape(-1))
    Aw = apply_similarity(sim, A.reshape(-1, 3)).reshape(A.shape)
    Aw = np.where(m[..., None], Aw, 0.0)
    Bz = np.where(m[..., None], B, 0.0)
    num = np.einsum("tji,tji->t", Aw, Bz)
    den = np.einsum("tji,tji->t", Aw, Aw)
    s = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    err = np.linalg.norm(s[:, None, None] * Aw - Bz, axis=-1)
    return float(err[m].mean())


def mpjpe_aligned(X_est, X_true, mask=None) -> float:
    """Mean joint error after one global similarity alignment (no per-frame scale)."""
    A = as_points("X_est", X_est, 3)
    B = as_points("X_true", X_true, 3)
    if A.shape != B.shape:
        raise ValueError(f"X_est/X_true: expected equal shapes, got {A.shape} and {B.shape}")
    m = as_mask("mask", mask, A.shape[:-1]) & np.all(np.isfinite(A), -1) & np.all(np.isfinite(B), -1)
    if not m.any():
        return float("nan")
    sim = umeyama(A.reshape(-1, 3), B.reshape(-1, 3), m.reshape(-1))
    Aw = apply_similarity(sim, A.reshape(-1, 3)).reshape(A.shape)
    return float(np.linalg.norm(Aw - B, axis=-1)[m].mean())


def _joint_distances(X, i, j):
    d = np.linalg.norm(X[..., i, :] - X[..., j, :], axis=-1)
    return d[np.isfinite(d)]


def scale_from_height(X, height: float, top: int, bottom, *, quantile: float = 0.5) -> float:
    """Factor that makes the subject ``height`` (metres or any unit) tall.

    ``X (T, J, 3)``; ``top``: a joint at the top of the body (head); ``bottom``: one joint index
    or a sequence (ankles/heels; their mean is used). The subject's height in each frame is the
    distance from ``top`` to the mean of ``bottom``; the ``quantile`` (robust against frames
    where the subject crouches: use e.g. 0.9 for tall-standing frames) over frames is matched
    to ``height``. Raises ``ValueError`` when no frame has all those joints.
    """
    X = as_points("X", X, 3)
    h = check_positive("height", height)
    q = check_real("quantile", quantile, 0.0, 1.0)
    J = X.shape[-2]
    top = index_array("top", top, J)
    if top.size != 1:
        raise ValueError(f"top: expected one joint index, got {top.tolist()}")
    b = index_array("bottom", bottom, J)
    foot = X[..., b, :].mean(-2)
    with np.errstate(over="ignore", invalid="ignore"):
        d = np.linalg.norm(X[..., top[0], :] - foot, axis=-1).reshape(-1)
    d = d[np.isfinite(d) & (d > 0)]
    if d.size == 0:
        raise ValueError("X: no frame has the top and bottom joints; cannot measure height")
    return h / float(np.quantile(d, q))


def scale_from_bone_lengths(X, bones, lengths) -> float:
    """Factor that best matches the reconstruction's bone lengths to ``lengths``.

    ``X (T, J, 3)``; ``bones``: ``(B, 2)`` joint index pairs; ``lengths (B,)`` known lengths.
    The median length of each bone over frames is used; the factor is the weighted
    least-squares ``s = Σ L l / Σ l²``. Raises ``ValueError`` when no bone is measurable.
    """
    X = as_points("X", X, 3)
    try:
        bones = np.asarray(bones)
    except Exception:   # noqa: BLE001 - ragged sequences
        raise ValueError(f"bones: expected (B, 2) joint index pairs, got {bones!r}") from None
    if bones.dtype.kind not in "iu" or bones.ndim != 2 or bones.shape[1] != 2:
        raise ValueError(f"bones: expected (B, 2) integer joint index pairs, got {bones!r}")
    J = X.shape[-2]
    if np.any(bones >= J) or np.any(bones < -J):
        raise ValueError(f"bones: index out of range for {J} joints")
    L = as_array("lengths", lengths, finite=True).reshape(-1)
    if L.shape[0] != bones.shape[0]:
        raise ValueError(f"lengths: expected shape ({bones.shape[0]},), got shape {L.shape}")
    med = np.array([np.median(d) if (d := _joint_distances(X, i, j)).size else np.nan
                    for i, j in bones])
    ok = np.isfinite(med) & (med > 0) & (L > 0)
    if not ok.any():
        raise ValueError("X: no bone is measurable (joints missing); cannot find a scale")
    return float((L[ok] * med[ok]).sum() / (med[ok] ** 2).sum())


def up_from_spine(X, lower, upper) -> np.ndarray:
    """Unit "up" vector ``(3,)``: the mean direction from ``lower`` to ``upper`` joints.

    ``lower``/``upper``: joint indices or sequences (their mean is used), e.g. hips → shoulders
    or pelvis → neck. Each frame's unit spine direction is averaged. Raises ``ValueError`` when
    no frame has those joints.
    """
    X = as_points("X", X, 3)
    lo = X[..., index_array("lower", lower, X.shape[-2]), :].mean(-2)
    hi = X[..., index_array("upper", upper, X.shape[-2]), :].mean(-2)
    with np.errstate(over="ignore", invalid="ignore"):
        d = (hi - lo).reshape(-1, 3)
        n = np.linalg.norm(d, axis=-1)
    ok = np.isfinite(n) & (n > 0)
    if not ok.any():
        raise ValueError("X: no frame has the spine joints; cannot find the up direction")
    m = (d[ok] / n[ok, None]).sum(0)
    nm = np.linalg.norm(m)
    if nm < 1e-12:
        raise ValueError("X: spine directions cancel out; cannot find the up direction")
    return m / nm


def rotation_aligning(a, b=(0.0, 0.0, 1.0)) -> np.ndarray:
    """The smallest rotation ``R (3, 3)`` with ``R a ∥ b`` (unit vectors, Rodrigues' formula)."""
    a = as_array("a", a, tail=(3,), finite=True)
    b = as_array("b", b, tail=(3,), finite=True)
    for name, v in (("a", a), ("b", b)):
        if v.shape != (3,):
            raise ValueError(f"{name}: expected shape (3,), got shape {v.shape}")
    a, b = a / max(np.abs(a).max(), 1e-300), b / max(np.abs(b).max(), 1e-300)  # no overflow
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        raise ValueError("a/b: expected non-zero vectors")
    a, b = a / na, b / nb
    v = np.cross(a, b)
    c = float(a @ b)
    if c < -1 + 1e-12:  # opposite: rotate by pi about any axis orthogonal to a
        axis = np.cross(a, [1.0, 0, 0]) if abs(a[0]) < 0.9 else np.cross(a, [0, 1.0, 0])
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    S = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + S + S @ S / (1 + c)
