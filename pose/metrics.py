"""3D pose metrics, batched over leading dimensions.

All functions take predictions and ground truth ``(..., J, 3)`` in the same unit (metres in this
project: multiply by 1000 for the millimetres papers report) and return one value per pose
``(...)`` (or per joint with ``per_joint=True``). Root-relative handling is explicit: ``root=j``
subtracts joint ``j`` from both poses before comparing (Human3.6M protocol: ``root=0``, the
pelvis); ``root=None`` compares absolute positions. ``mask (..., J)`` (bool) restricts every
metric (and every alignment) to the joints marked True; a pose with no valid joint gives NaN.

- :func:`mpjpe`: mean per-joint position error.
- :func:`n_mpjpe`: MPJPE after the least-squares scale of the prediction (Rhodin et al. 2018).
- :func:`pa_mpjpe`: MPJPE after similarity Procrustes alignment (rotation, translation, scale).
- :func:`pck3d`: fraction of joints within ``threshold`` (150 mm); :func:`auc`: mean PCK over
  thresholds 0–150 mm.
- :func:`bone_length_consistency`: standard deviation of bone lengths over time.
- PSS is in :mod:`pose.pss`.
"""
from __future__ import annotations

import numpy as np

from .skeletons import H36M_17, bone_lengths, get_skeleton

__all__ = ["mpjpe", "n_mpjpe", "pa_mpjpe", "pck3d", "auc", "joint_errors", "procrustes_align",
           "optimal_scale", "bone_length_consistency"]


def _prep(pred, gt, root, mask):
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.ndim < 2 or p.shape[-1] != 3:
        raise ValueError(f"pred: expected shape (..., J, 3), got shape {p.shape}")
    if g.shape != p.shape:
        raise ValueError(f"gt: expected shape {p.shape} (like pred), got shape {g.shape}")
    J = p.shape[-2]
    if mask is None:
        m = np.ones(p.shape[:-1], dtype=bool)
    else:
        m = np.asarray(mask)
        if m.dtype != bool:
            raise ValueError(f"mask: expected a bool array, got dtype {m.dtype}")
        try:
            m = np.broadcast_to(m, p.shape[:-1])
        except ValueError:
            raise ValueError(f"mask: expected shape {p.shape[:-1]}, got shape {m.shape}") from None
    if root is not None:
        r = int(root)
        if not -J <= r < J:
            raise ValueError(f"root: expected a joint index in [0, {J}), got {root}")
        p = p - p[..., r:r + 1, :]
        g = g - g[..., r:r + 1, :]
    m = m & np.isfinite(p).all(-1) & np.isfinite(g).all(-1)
    return np.where(m[..., None], p, 0.0), np.where(m[..., None], g, 0.0), m


def _reduce(err, m, per_joint):
    if per_joint:
        return np.where(m, err, np.nan)
    n = m.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (err * m).sum(-1) / np.maximum(n, 1), np.nan)


def joint_errors(pred, gt, *, root: int | None = None, mask=None) -> np.ndarray:
    """Per-joint Euclidean errors ``(..., J)`` (NaN where masked out)."""
    p, g, m = _prep(pred, gt, root, mask)
    return np.where(m, np.linalg.norm(p - g, axis=-1), np.nan)


def mpjpe(pred, gt, *, root: int | None = None, mask=None, per_joint: bool = False):
    """Mean per-joint position error ``(...)`` (``(..., J)`` with ``per_joint``)."""
    p, g, m = _prep(pred, gt, root, mask)
    return _reduce(np.linalg.norm(p - g, axis=-1), m, per_joint)


def optimal_scale(pred, gt, mask=None) -> np.ndarray:
    """Least-squares scale ``s (...)`` minimising ``Σ |s·pred − gt|²`` over the masked joints."""
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    w = np.ones(p.shape[:-1]) if mask is None else np.asarray(mask, dtype=np.float64)
    num = np.einsum("...j,...jd,...jd->...", w, p, g)
    den = np.einsum("...j,...jd,...jd->...", w, p, p)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)


def n_mpjpe(pred, gt, *, root: int | None = None, mask=None, per_joint: bool = False):
    """MPJPE after scaling ``pred`` by its least-squares optimal scale (Rhodin et al. 2018).

    The scale is fitted about the origin of the (root-relative, with ``root``) coordinates.
    """
    p, g, m = _prep(pred, gt, root, mask)
    s = optimal_scale(p, g, m)
    return _reduce(np.linalg.norm(s[..., None, None] * p - g, axis=-1), m, per_joint)


def procrustes_align(pred, gt, mask=None):
    """Similarity transform aligning ``pred`` to ``gt`` (Umeyama): returns
    ``(aligned (..., J, 3), s (...), R (..., 3, 3), t (..., 3))`` with
    ``aligned = s · pred @ Rᵀ + t``, fitted on the masked joints (a proper rotation, det +1)."""
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    w = np.ones(p.shape[:-1]) if mask is None else np.asarray(mask, dtype=np.float64)
    n = np.maximum(w.sum(-1), 1e-300)[..., None]
    mp = np.einsum("...j,...jd->...d", w, p) / n
    mg = np.einsum("...j,...jd->...d", w, g) / n
    p0, g0 = p - mp[..., None, :], g - mg[..., None, :]
    cov = np.einsum("...j,...ja,...jb->...ab", w, g0, p0)
    U, S, Vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(U @ Vt))
    d = np.where(d == 0, 1.0, d)
    D = np.ones(S.shape)
    D[..., 2] = d
    R = (U * D[..., None, :]) @ Vt
    var = np.einsum("...j,...jd,...jd->...", w, p0, p0)
    s = np.where(var > 0, (S * D).sum(-1) / np.where(var > 0, var, 1.0), 1.0)
    t = mg - s[..., None] * np.einsum("...ij,...j->...i", R, mp)
    aligned = s[..., None, None] * np.einsum("...ij,...nj->...ni", R, p) + t[..., None, :]
    return aligned, s, R, t


def pa_mpjpe(pred, gt, *, root: int | None = None, mask=None, per_joint: bool = False):
    """MPJPE after similarity Procrustes alignment of ``pred`` to ``gt`` (``root`` is accepted
    for symmetry with the other metrics and has no effect: translation is aligned anyway)."""
    p, g, m = _prep(pred, gt, root, mask)
    aligned, *_ = procrustes_align(p, g, m)
    return _reduce(np.linalg.norm(aligned - g, axis=-1), m, per_joint)


def pck3d(pred, gt, *, threshold: float = 0.150, root: int | None = None, mask=None):
    """Fraction ``(...)`` of (masked) joints whose error is below ``threshold`` (default 150 mm
    in metres)."""
    p, g, m = _prep(pred, gt, root, mask)
    ok = (np.linalg.norm(p - g, axis=-1) < threshold) & m
    n = m.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, ok.sum(-1) / np.maximum(n, 1), np.nan)


def auc(pred, gt, *, thresholds=None, root: int | None = None, mask=None):
    """Area under the PCK curve: mean of :func:`pck3d` over ``thresholds`` (default 31 evenly
    spaced values in [0, 0.150] m, as in MPI-INF-3DHP)."""
    th = np.linspace(0.0, 0.150, 31) if thresholds is None else np.asarray(thresholds, float)
    p, g, m = _prep(pred, gt, root, mask)
    e = np.linalg.norm(p - g, axis=-1)
    n = m.sum(-1)
    ok = ((e[..., None] < th) & m[..., None]).sum(-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, ok.mean(-1) / np.maximum(n, 1), np.nan)


def bone_length_consistency(X, skeleton=H36M_17, *, axis: int = -3, relative: bool = False):
    """Standard deviation of each bone length over time: ``X (..., T, J, 3)`` → ``(..., B)``.

    ``axis`` is the time axis of ``X`` (default the one before the joints). NaN frames are
    ignored. With ``relative`` the std is divided by the mean length (coefficient of variation).
    """
    sk = get_skeleton(skeleton)
    X = np.asarray(X, dtype=np.float64)
    ax = axis % X.ndim
    if ax >= X.ndim - 2:
        raise ValueError(f"axis: expected a time axis before the joint axis, got {axis} for "
                         f"X of shape {X.shape}")
    L = bone_lengths(X, sk)
    std = np.nanstd(L, axis=ax)
    if relative:
        return std / np.nanmean(L, axis=ax)
    return std
