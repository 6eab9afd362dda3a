"""Rotated square regions of interest (ROI): from two keypoints, image crops, and back.

Pixel convention: image coordinates are OpenCV's (pixel centres at integers, ``x`` right,
``y`` down). A :class:`Roi` is a square of side ``size`` px centred at ``center`` and turned by
``rotation`` radians (positive turns the ROI's x axis towards the image's y axis, as in
MediaPipe's ``NormalizedRect``). A point with normalised ROI coordinates ``n ∈ [0, 1]²``
(``(0, 0)`` the ROI's top-left corner, ``(1, 1)`` its bottom-right, as a model's output divided
by its input size) is at image pixel ``center + size · R(rotation) · (n − 0.5)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Roi", "roi_from_keypoints", "letterbox_roi", "crop_matrix", "crop_roi",
           "roi_to_image", "image_to_roi"]


@dataclass(frozen=True)
class Roi:
    """``center (2,)`` px, ``size`` px (side of the square), ``rotation`` radians."""

    center: np.ndarray
    size: float
    rotation: float = 0.0

    @property
    def R(self) -> np.ndarray:
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        return np.array([[c, -s], [s, c]])

    def corners(self) -> np.ndarray:
        """``(4, 2)`` image px of the corners: top-left, top-right, bottom-right, bottom-left."""
        return roi_to_image(np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float64), self)


def _wrap(a: float) -> float:
    return float((a + np.pi) % (2 * np.pi) - np.pi)


def roi_from_keypoints(center, scale_point, *, scale: float = 1.25,
                       target_angle: float = np.pi / 2) -> Roi:
    """The ROI of a person from two keypoints in image px (MediaPipe's alignment-points rect
    followed by its rect transformation): ``center`` (BlazePose: the mid-hip), ``scale_point``
    (a point on the circle around the body). The side is ``2 · |scale_point − center| · scale``;
    the rotation turns the ``center → scale_point`` direction to ``target_angle`` (90° = up in
    the ROI): ``rotation = target_angle − atan2(−(y1 − y0), x1 − x0)``, wrapped to
    (−π, π]."""
    c = np.asarray(center, np.float64)
    p = np.asarray(scale_point, np.float64)
    if c.shape != (2,) or p.shape != (2,):
        raise ValueError(f"center, scale_point: expected shape (2,), got {c.shape}, {p.shape}")
    d = p - c
    rot = _wrap(target_angle - np.arctan2(-d[1], d[0]))
    return Roi(center=c, size=float(2.0 * np.hypot(*d) * scale), rotation=rot)


def letterbox_roi(width: int, height: int) -> Roi:
    """The unrotated square around a whole ``width × height`` image (side ``max(w, h)``): cropping
    it is letterboxing (the image scaled to fit, centred, the rest padded)."""
    return Roi(center=np.array([(width - 1) / 2.0, (height - 1) / 2.0]),
               size=float(max(width, height)), rotation=0.0)


def roi_to_image(n, roi: Roi) -> np.ndarray:
    """Normalised ROI coordinates ``n (..., 2)`` → image px ``(..., 2)``."""
    n = np.asarray(n, np.float64)
    return roi.center + roi.size * (n - 0.5) @ roi.R.T


def image_to_roi(x, roi: Roi) -> np.ndarray:
    """Image px ``x (..., 2)`` → normalised ROI coordinates (inverse of :func:`roi_to_image`)."""
    x = np.asarray(x, np.float64)
    return (x - roi.center) @ roi.R / roi.size + 0.5


def crop_matrix(roi: Roi, out_size: int) -> np.ndarray:
    """``(2, 3)`` affine map from output-tensor pixel indices to image pixel indices (for
    ``cv2.warpAffine(..., flags=WARP_INVERSE_MAP)``): tensor pixel ``j`` covers normalised
    ``(j + 0.5) / out_size``."""
    A = roi.R * (roi.size / out_size)
    b = roi.center + roi.R @ np.full(2, roi.size * (0.5 / out_size - 0.5))
    return np.concatenate([A, b[:, None]], 1)


def crop_roi(image, roi: Roi, out_size: int, *, border: str = "replicate") -> np.ndarray:
    """Resample ``roi`` of ``image (H, W, C)`` into ``(out_size, out_size, C)`` (bilinear).
    ``border``: ``"replicate"`` (edge pixels) or ``"zero"`` (black) outside the image."""
    mode = {"replicate": cv2.BORDER_REPLICATE, "zero": cv2.BORDER_CONSTANT}[border]
    M = crop_matrix(roi, out_size)
    if roi.size / out_size > 2.0 and abs(np.sin(2 * roi.rotation)) < 1e-9:
        # strong unrotated downscale (letterboxing a full frame): area-average first
        # (anti-aliasing), then the same affine on the smaller image
        f = out_size / roi.size * 2.0
        small = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        sx = image.shape[1] / small.shape[1]
        sy = image.shape[0] / small.shape[0]
        # small index k covers original indices around (k + 0.5) · s − 0.5
        S = np.array([[1 / sx, 0, 0.5 / sx - 0.5], [0, 1 / sy, 0.5 / sy - 0.5]])
        M = S[:, :2] @ M
        M[:, 2] += S[:, 2]
        image = small
    return cv2.warpAffine(image, M, (out_size, out_size),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=mode,
                          borderValue=0)
