"""Arrays for training on multi-view 2D and (pseudo-)3D labels (NumPy).

Conventions: cameras ``C``, frames ``T``, joints ``J``; 2D pixels ``(C, T, J, 2)`` (NaN where
missing) with confidences ``(C, T, J)``; 3D in each camera's frame ``x_cam = R X + t``
``(C, T, J, 3)``; joint ``root`` (0, the pelvis) is the origin of root-relative poses.

- :func:`camera_frame`, :func:`root_relative`, :func:`normalize_scale`: 3D targets.
- :func:`normalized_coordinates`: pixels → ``K⁻¹·x`` (undistorted when ``dist`` is given).
- :func:`lifter_features`: per-joint ``(u, v, confidence)`` centred on the root and divided by
  the pose's 2D size — what :class:`learn.lifter.Lifter` eats.
- :func:`temporal_window`: gather ``W`` frames around each frame, clamped inside its clip.
- :func:`make_lifting_set`: everything above for one set of frames → :class:`LiftingSet`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["camera_frame", "root_relative", "normalize_scale", "normalized_coordinates",
           "lifter_features", "temporal_window", "LiftingSet", "make_lifting_set"]


def camera_frame(X, R, t) -> np.ndarray:
    """World joints ``X (T, J, 3)`` → every camera's frame ``(C, T, J, 3)`` with ``R (C,3,3)``,
    ``t (C,3)``."""
    X = np.asarray(X, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if X.ndim != 3 or X.shape[-1] != 3:
        raise ValueError(f"X: expected shape (T, J, 3), got shape {X.shape}")
    if R.ndim != 3 or R.shape[1:] != (3, 3) or t.shape != (R.shape[0], 3):
        raise ValueError(f"R/t: expected shapes (C, 3, 3)/(C, 3), got {R.shape}/{t.shape}")
    return np.einsum("cij,tnj->ctni", R, X) + t[:, None, None, :]


def root_relative(X, root: int = 0) -> np.ndarray:
    """``X (..., J, 3)`` minus its joint ``root``."""
    X = np.asarray(X, dtype=np.float64)
    return X - X[..., root:root + 1, :]


def normalize_scale(X, root: int = 0, weights=None):
    """Root-relative ``X (..., J, 3)`` divided by its RMS joint distance from the root
    (weighted by ``weights (..., J)``). Returns ``(X_normalised, scale (...))``; a degenerate
    pose keeps scale 1."""
    Y = root_relative(X, root)
    w = np.ones(Y.shape[:-1]) if weights is None else np.asarray(weights, dtype=np.float64)
    d2 = np.where(np.isfinite(Y).all(-1), np.sum(Y ** 2, -1), 0.0)
    n = w.sum(-1)
    s = np.sqrt(np.where(n > 0, (w * d2).sum(-1) / np.maximum(n, 1e-12), 0.0))
    s = np.where(s > 1e-9, s, 1.0)
    return Y / s[..., None, None], s


def normalized_coordinates(x, K, dist=None) -> np.ndarray:
    """Pixels ``x (C, ..., J, 2)`` → normalised image coordinates ``K⁻¹ x`` (NaN kept), per
    camera ``K (C, 3, 3)``; with ``dist (C, 4|5)`` OpenCV distortion is removed first."""
    x = np.asarray(x, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    C = x.shape[0]
    if K.shape != (C, 3, 3):
        raise ValueError(f"K: expected shape ({C}, 3, 3), got shape {K.shape}")
    out = np.empty_like(x)
    for c in range(C):
        xc = x[c]
        if dist is not None and np.any(dist[c]):
            from geometry.camera import undistort_points
            flat = xc.reshape(-1, 2)
            ok = np.isfinite(flat).all(-1)
            u = np.full_like(flat, np.nan)
            if ok.any():
                u[ok] = undistort_points(flat[ok], K[c], dist[c])
            xc = u.reshape(xc.shape)
        Ki = np.linalg.inv(K[c])
        out[c] = xc @ Ki[:2, :2].T + Ki[:2, 2]
    return out


def lifter_features(xn, confidence=None, root: int = 0) -> np.ndarray:
    """Per-joint lifter inputs ``(..., J, 3)`` = ``(u, v, confidence)``.

    ``xn (..., J, 2)`` normalised image coordinates (NaN = missing); the pose is centred on the
    root joint (on the confidence-weighted mean of the visible joints when the root is missing)
    and divided by its RMS 2D size, so the input carries shape, not distance. Missing joints
    are ``(0, 0, 0)``.
    """
    xn = np.asarray(xn, dtype=np.float64)
    ok = np.isfinite(xn).all(-1)
    c = np.ones(xn.shape[:-1]) if confidence is None else np.asarray(confidence, np.float64)
    c = np.where(ok, c, 0.0)
    x0 = np.where(ok[..., None], xn, 0.0)
    n = np.maximum(c.sum(-1), 1e-12)
    mean = (c[..., None] * x0).sum(-2) / n[..., None]
    root_ok = ok[..., root] & (c[..., root] > 0)
    centre = np.where(root_ok[..., None], x0[..., root, :], mean)
    d = np.where(ok[..., None], x0 - centre[..., None, :], 0.0)
    size = np.sqrt((c * np.sum(d ** 2, -1)).sum(-1) / n)
    size = np.where(size > 1e-9, size, 1.0)
    return np.concatenate([d / size[..., None, None], c[..., None]], -1)


def temporal_window(a, clip, window: int, axis: int = 1) -> np.ndarray:
    """Stack ``window`` (odd) frames centred on each frame along a new axis after ``axis``:
    ``a (..., T, ...)`` → ``(..., T, W, ...)``; frames outside the clip (``clip (T,)`` ids) are
    replaced by the clip's first/last frame."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window: expected an odd number >= 1, got {window}")
    a = np.asarray(a)
    clip = np.asarray(clip)
    T = a.shape[axis]
    if clip.shape != (T,):
        raise ValueError(f"clip: expected shape ({T},), got shape {clip.shape}")
    starts = np.zeros(T, dtype=np.int64)
    ends = np.zeros(T, dtype=np.int64)
    for cid in np.unique(clip):
        where = np.flatnonzero(clip == cid)
        starts[where], ends[where] = where.min(), where.max()
    offs = np.arange(window) - window // 2
    idx = np.clip(np.arange(T)[:, None] + offs, starts[:, None], ends[:, None])
    return np.take(a, idx, axis=axis)


@dataclass(frozen=True)
class LiftingSet:
    """Samples for the lifter, one per (camera, frame), ``N`` of them.

    ``inputs (N, W, J, 3)`` :func:`lifter_features` of ``W`` frames; ``x_norm (N, J, 2)``
    normalised image coordinates of the centre frame (0 where missing) and ``confidence
    (N, J)`` for the 3D-to-2D term; ``target (N, J, 3)`` scale-normalised root-relative labels
    in the camera frame and ``weights (N, J)``; ``truth (N, J, 3)`` root-relative ground truth
    (metres) for evaluation (zeros when unknown); ``camera``, ``frame`` ``(N,)`` indices.
    """

    inputs: np.ndarray
    x_norm: np.ndarray
    confidence: np.ndarray
    target: np.ndarray
    weights: np.ndarray
    truth: np.ndarray
    camera: np.ndarray
    frame: np.ndarray

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


def make_lifting_set(x, K, confidence, frames, *, labels=None, label_weights=None,
                     label_valid=None, truth=None, clip=None, window: int = 1, dist=None,
                     root: int = 0) -> LiftingSet:
    """Build a :class:`LiftingSet` from multi-view detections.

    Args:
        x: ``(C, T, J, 2)`` pixels (NaN missing); K: ``(C, 3, 3)``; confidence: ``(C, T, J)``.
        frames: ``(T,)`` bool or index array: the frames to use (e.g. the training subjects).
        labels: ``(C, T, J, 3)`` 3D targets in each camera's frame (pseudo-labels or truth, any
            unit: they are scale-normalised); ``label_weights (C, T, J)``; ``label_valid (C, T)``
            drops samples. Without labels, targets are zeros with weight 0.
        truth: ``(C, T, J, 3)`` ground truth in each camera frame (metres), for evaluation.
        clip: ``(T,)`` clip ids for the temporal window (default one clip). window: odd ``W``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4 or x.shape[-1] != 2:
        raise ValueError(f"x: expected shape (C, T, J, 2), got shape {x.shape}")
    C, T, J, _ = x.shape
    if np.shape(confidence) != (C, T, J):
        raise ValueError(f"confidence: expected shape {(C, T, J)}, got shape "
                         f"{np.shape(confidence)}")
    if labels is not None and np.shape(labels) != (C, T, J, 3):
        raise ValueError(f"labels: expected shape {(C, T, J, 3)}, got shape {np.shape(labels)}")
    conf = np.asarray(confidence, dtype=np.float64) * np.isfinite(x).all(-1)
    xn = normalized_coordinates(x, K, dist)
    feats = lifter_features(xn, conf, root)                               # (C,T,J,3)
    clip = np.zeros(T, dtype=np.int64) if clip is None else np.asarray(clip)
    feats = temporal_window(feats, clip, window, axis=1)                  # (C,T,W,J,3)
    fr = np.asarray(frames)
    fr = np.flatnonzero(fr) if fr.dtype == bool else fr.astype(np.int64)
    keep = np.zeros((C, T), dtype=bool)
    keep[:, fr] = True
    if labels is not None:
        lab = np.asarray(labels, dtype=np.float64)
        lw = np.ones((C, T, J)) if label_weights is None else np.asarray(label_weights, float)
        lw = np.where(np.isfinite(lab).all(-1), lw, 0.0)
        if label_valid is not None:
            keep &= np.asarray(label_valid, dtype=bool)
        keep &= lw.sum(-1) > 0
        tgt, _ = normalize_scale(np.nan_to_num(lab), root, lw)
    else:
        tgt, lw = np.zeros((C, T, J, 3)), np.zeros((C, T, J))
    gt = np.zeros((C, T, J, 3)) if truth is None else root_relative(truth, root)
    cam, frm = np.nonzero(keep)
    return LiftingSet(inputs=feats[cam, frm].astype(np.float32),
                      x_norm=np.nan_to_num(xn[cam, frm]).astype(np.float32),
                      confidence=conf[cam, frm].astype(np.float32),
                      target=tgt[cam, frm].astype(np.float32),
                      weights=lw[cam, frm].astype(np.float32), truth=gt[cam, frm],
                      camera=cam, frame=frm)
