"""The pseudo-label dataset file (npz, no pickle): written atomically, read with clear errors."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pose.io_atomic import atomic_path

if TYPE_CHECKING:
    from .pseudo_labels import PseudoLabels

__all__ = ["save_pseudo_labels", "load_pseudo_labels"]


def save_pseudo_labels(path, labels: PseudoLabels, *, x=None, confidence=None) -> Path:
    """Write the dataset file the trainers read (npz, no pickle): every array field of
    :class:`PseudoLabels` (``R_frames``/``t_frames`` when present), optionally the 2D input
    ``x (C, T, J, 2)`` and ``confidence (C, T, J)``. Returns the path."""
    path = Path(path)
    extra = {}
    if x is not None:
        extra["x"] = np.asarray(x, np.float64)
    if confidence is not None:
        extra["confidence"] = np.asarray(confidence, np.float64)
    for k in ("residuals", "R_frames", "t_frames"):
        if getattr(labels, k) is not None:
            extra[k] = getattr(labels, k)
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, X_cam=labels.X_cam, weights=labels.weights, valid=labels.valid,
                            X=labels.X, R=labels.R, t=labels.t, K=labels.K,
                            mode=np.array(labels.mode), units=np.array(labels.units),
                            root=np.array(labels.root, np.int64), **extra)
    return path


def load_pseudo_labels(path) -> tuple[PseudoLabels, dict]:
    """Read a file written by :func:`save_pseudo_labels` → ``(labels, extras)`` (``x``,
    ``confidence`` when saved). A missing field or unreadable file raises ``ValueError`` naming
    the file (and the field)."""
    from .pseudo_labels import PseudoLabels   # (that module re-exports this one's functions)
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable npz file ({exc})") from None
    with z:
        need = ("X_cam", "weights", "valid", "X", "R", "t", "K", "mode", "units", "root")
        for k in need:
            if k not in z.files:
                raise ValueError(f"{path}: field '{k}' is missing (not a pseudo-label file?)")
        opt = {k: z[k] for k in ("residuals", "R_frames", "t_frames") if k in z.files}
        labels = PseudoLabels(X_cam=z["X_cam"], weights=z["weights"], valid=z["valid"], X=z["X"],
                              R=z["R"], t=z["t"], K=z["K"], mode=str(z["mode"]),
                              units=str(z["units"]), root=tuple(int(r) for r in z["root"]),
                              **opt)
        extras = {k: z[k] for k in ("x", "confidence") if k in z.files}
    return labels, extras
