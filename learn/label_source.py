"""Where the examples get their 3D training targets.

:func:`pseudo_labels` calls :func:`learn.pseudo_labels.make_pseudo_labels` (multi-view 2D →
per-camera 3D, no 3D labels, no extrinsics). :func:`truth_labels` gives the ground-truth
equivalent (for the "trained on true 3D" reference runs). Both return :class:`Labels`.
There is no other source: pseudo-labels always come from the geometry.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import camera_frame

__all__ = ["Labels", "pseudo_labels", "truth_labels"]


@dataclass(frozen=True)
class Labels:
    """``X_cam (C, T, J, 3)`` float64 targets in each camera's frame (any unit),
    ``weights (C, T, J)`` float64 in [0, 1], ``valid (C, T)`` bool, ``source`` (a short
    description), ``info`` (a dict of scalar diagnostics)."""

    X_cam: np.ndarray
    weights: np.ndarray
    valid: np.ndarray
    source: str
    info: dict


def truth_labels(X, R, t) -> Labels:
    """Ground truth ``X (T, J, 3)`` world joints (metres) in every camera (``R (C,3,3)``,
    ``t (C,3)``): ``X_cam (C, T, J, 3)`` metres, all weights 1, all valid."""
    Xc = camera_frame(X, R, t)
    C, T, J, _ = Xc.shape
    return Labels(X_cam=Xc, weights=np.ones((C, T, J)), valid=np.ones((C, T), dtype=bool),
                  source="ground truth", info={})


def pseudo_labels(x, K, confidence, *, mode: str = "rig", image_size=None, seed: int = 0,
                  **kwargs) -> Labels:
    """Pseudo-labels from multi-view 2D ``x (C, T, J, 2)`` px (undistorted, NaN = missing)
    with ``confidence (C, T, J)`` and intrinsics ``K (C, 3, 3)`` through
    :func:`learn.pseudo_labels.make_pseudo_labels` (``mode`` ``"rig"``, ``"frame"`` or
    ``"window"``; extra keyword arguments are passed on). Targets are scale-normalised
    root-relative poses in each camera's frame; ``info`` holds the reconstruction's scalar
    figures and the median reprojection residual (px)."""
    from .pseudo_labels import make_pseudo_labels
    pl = make_pseudo_labels(np.asarray(x, np.float64), K=K, confidence=confidence, mode=mode,
                            image_size=image_size, seed=seed, **kwargs)
    info = {k: v for k, v in pl.info.items()
            if isinstance(v, (int, float, str, bool, np.floating, np.integer, np.bool_))}
    if pl.residuals is not None and np.isfinite(pl.residuals).any():
        info["median_residual_px"] = float(np.nanmedian(pl.residuals))
    return Labels(X_cam=np.asarray(pl.X_cam, dtype=np.float64),
                  weights=np.asarray(pl.weights, dtype=np.float64),
                  valid=np.asarray(pl.valid, dtype=bool),
                  source=f"make_pseudo_labels(mode={mode!r})", info=info)
