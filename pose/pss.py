"""Pose Structure Score (PSS; Kocabas et al., "Self-Supervised Learning of 3D Human Pose using
Multi-view Geometry", CVPR 2019).

Ground-truth poses are normalised (root-relative, then divided by their Frobenius norm), clustered
with k-means (k = 50 and 100 in the paper); a prediction scores 1 when its normalised pose falls
in the same cluster as its ground truth. PSS is the mean over poses. Centres are fitted once on
the ground truth (:func:`fit_pss`) and can be saved and reloaded (:meth:`PSSModel.save`,
:func:`load_pss`) so numbers stay comparable across runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["PSSModel", "normalize_poses", "fit_pss", "load_pss", "pss"]


def normalize_poses(X, *, root: int = 0) -> np.ndarray:
    """``X (..., J, 3)`` → root-relative poses of unit Frobenius norm, flattened ``(..., 3J)``."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim < 2 or X.shape[-1] != 3:
        raise ValueError(f"X: expected shape (..., J, 3), got shape {X.shape}")
    P = X - X[..., root:root + 1, :]
    P = P.reshape(P.shape[:-2] + (-1,))
    n = np.linalg.norm(P, axis=-1, keepdims=True)
    return P / np.where(n > 0, n, 1.0)


@dataclass(frozen=True)
class PSSModel:
    """k-means ``centres (k, 3J)`` of normalised poses, and the ``root`` joint used."""

    centres: np.ndarray
    root: int = 0

    @property
    def k(self) -> int:
        return int(self.centres.shape[0])

    def assign(self, X) -> np.ndarray:
        """Cluster label ``(...)`` of each pose ``X (..., J, 3)``."""
        P = normalize_poses(X, root=self.root)
        if P.shape[-1] != self.centres.shape[1]:
            raise ValueError(f"X: expected {self.centres.shape[1] // 3} joints for these centres, "
                             f"got shape {np.shape(X)}")
        flat = P.reshape(-1, P.shape[-1])
        d = ((flat ** 2).sum(1)[:, None] - 2 * flat @ self.centres.T
             + (self.centres ** 2).sum(1)[None])
        return d.argmin(1).reshape(P.shape[:-1])

    def save(self, path) -> None:
        """Write ``centres`` and ``root`` to an ``.npz`` file."""
        np.savez(Path(path), centres=self.centres, root=np.int64(self.root))


def load_pss(path) -> PSSModel:
    """Read a :class:`PSSModel` written by :meth:`PSSModel.save`."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as f:
        for key in ("centres", "root"):
            if key not in f.files:
                raise ValueError(f"{path}: field {key!r} missing (not a PSS model file)")
        c = np.asarray(f["centres"], dtype=np.float64)
        if c.ndim != 2 or c.shape[1] % 3:
            raise ValueError(f"{path}: field 'centres' has shape {c.shape}, expected (k, 3J)")
        return PSSModel(centres=c, root=int(f["root"]))


def fit_pss(gt, k: int = 50, *, root: int = 0, seed: int = 0, iterations: int = 30) -> PSSModel:
    """k-means (``scipy.cluster.vq.kmeans2``, k-means++ init) over normalised poses
    ``gt (N, J, 3)`` → :class:`PSSModel`."""
    from scipy.cluster.vq import kmeans2

    P = normalize_poses(gt, root=root).reshape(-1, 3 * np.shape(gt)[-2])
    P = P[np.isfinite(P).all(1)]
    if P.shape[0] < k:
        raise ValueError(f"gt: need at least k={k} finite poses, got {P.shape[0]}")
    centres, _ = kmeans2(P, int(k), iter=int(iterations), minit="++", seed=int(seed))
    return PSSModel(centres=np.ascontiguousarray(centres), root=root)


def pss(pred, gt, model: PSSModel | int = 50, *, seed: int = 0) -> float:
    """Fraction of poses ``pred (..., J, 3)`` whose cluster matches that of ``gt``.

    ``model``: fitted centres (reuse them to compare runs), or ``k`` to fit them on ``gt`` now.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"pred: expected shape {gt.shape} (like gt), got shape {pred.shape}")
    if not isinstance(model, PSSModel):
        model = fit_pss(gt.reshape((-1,) + gt.shape[-2:]), int(model), seed=seed)
    return float(np.mean(model.assign(pred) == model.assign(gt)))
