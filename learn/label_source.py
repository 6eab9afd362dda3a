"""Where the examples get their 3D training targets.

:func:`pseudo_labels` calls :func:`learn.pseudo_labels.make_pseudo_labels` (multi-view 2D →
per-camera 3D, no 3D labels, no extrinsics). :func:`truth_labels` gives the ground-truth
equivalent (for the "trained on true 3D" reference runs). Both return :class:`Labels`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import camera_frame

__all__ = ["Labels", "pseudo_labels", "truth_labels"]


@dataclass(frozen=True)
class Labels:
    """``X_cam (C, T, J, 3)`` targets in each camera's frame (any unit), ``weights (C, T, J)``,
    ``valid (C, T)``, ``source`` (a short description), ``info`` (a dict of diagnostics)."""

    X_cam: np.ndarray
    weights: np.ndarray
    valid: np.ndarray
    source: str
    info: dict


def truth_labels(X, R, t) -> Labels:
    """Ground truth ``X (T, J, 3)`` world joints in every camera (``R (C,3,3)``, ``t (C,3)``)."""
    Xc = camera_frame(X, R, t)
    C, T, J, _ = Xc.shape
    return Labels(X_cam=Xc, weights=np.ones((C, T, J)), valid=np.ones((C, T), dtype=bool),
                  source="ground truth", info={})


def pseudo_labels(x, K, confidence, *, mode: str = "rig", image_size=None, seed: int = 0,
                  **kwargs) -> Labels:
    """Pseudo-labels from multi-view 2D ``x (C, T, J, 2)`` px with ``confidence (C, T, J)`` and
    intrinsics ``K (C, 3, 3)`` through :func:`learn.pseudo_labels.make_pseudo_labels`
    (``mode`` ``"rig"``, ``"frame"`` or ``"window"``; extra keyword arguments are passed on)."""
    from .pseudo_labels import make_pseudo_labels
    pl = make_pseudo_labels(np.asarray(x, np.float64), K=K, confidence=confidence, mode=mode,
                            image_size=image_size, seed=seed, **kwargs)
    Xc = np.asarray(pl.X_cam, dtype=np.float64)
    w = np.asarray(pl.weights, dtype=np.float64)
    v = np.asarray(pl.valid, dtype=bool)
    info = {}
    for name in ("scale", "reproj_error", "num_views", "info", "stats"):
        val = getattr(pl, name, None)
        if isinstance(val, dict):
            info.update({k: val[k] for k in val if np.isscalar(val[k])})
        elif val is not None and np.size(val) > 0 and np.issubdtype(np.asarray(val).dtype,
                                                                    np.number):
            info[f"median_{name}"] = float(np.nanmedian(val))
    return Labels(X_cam=Xc, weights=w, valid=v, source=f"make_pseudo_labels(mode={mode!r})",
                  info=info)
