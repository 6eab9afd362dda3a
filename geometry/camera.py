"""Camera helpers in OpenCV's convention.

A camera maps a world point ``X`` to ``x_cam = R @ X + t`` and to pixels with ``K``:
``x ~ K [R | t] X``; the camera looks down its +z axis, x to the right, y down. Lens distortion is
OpenCV's ``(k1, k2, p1, p2[, k3])``. Every function is vectorised over leading batch dimensions.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from .common.checks import batch_shape
from .common.validate import as_array, as_matrix, as_points

__all__ = [
    "skew",
    "projection_matrix",
    "project_points",
    "distort_normalized",
    "undistort_points",
    "rodrigues_to_matrix",
    "matrix_to_rodrigues",
    "invert_pose",
    "compose_poses",
    "relative_pose",
    "camera_centers",
    "look_at",
    "essential_from_pose",
    "fundamental_from_pose",
    "rotation_error_deg",
    "direction_error_deg",
]


def skew(v) -> np.ndarray:
    """Cross-product matrix ``[v]_x`` of ``v (..., 3)`` → ``(..., 3, 3)`` with ``[v]_x @ w = v × w``."""
    return _skew(as_array("v", v, tail=(3,)))


def _skew(v):
    S = np.zeros(v.shape[:-1] + (3, 3))
    S[..., 0, 1], S[..., 0, 2] = -v[..., 2], v[..., 1]
    S[..., 1, 0], S[..., 1, 2] = v[..., 2], -v[..., 0]
    S[..., 2, 0], S[..., 2, 1] = -v[..., 1], v[..., 0]
    return S


def projection_matrix(K, R, t) -> np.ndarray:
    """``P = K [R | t]``: ``K (..., 3, 3)``, ``R (..., 3, 3)``, ``t (..., 3)`` → ``(..., 3, 4)``."""
    K = as_matrix("K", K, 3, 3)
    R = as_matrix("R", R, 3, 3)
    t = as_array("t", t, tail=(3,), finite=True)
    batch = batch_shape({"K": 2, "R": 2, "t": 1}, K=K, R=R, t=t)
    Rt = np.concatenate([np.broadcast_to(R, batch + (3, 3)),
                         np.broadcast_to(t, batch + (3,))[..., None]], axis=-1)
    return K @ Rt


def distort_normalized(xn, dist) -> np.ndarray:
    """Apply OpenCV lens distortion to normalised coordinates ``xn (..., N, 2)``.

    ``dist`` is ``(..., 4)`` or ``(..., 5)``: ``k1, k2, p1, p2[, k3]`` (broadcast over the batch).
    """
    xn = as_points("xn", xn)
    d = as_array("dist", dist, finite=True)
    if d.shape[-1] not in (4, 5):
        raise ValueError(f"dist: expected shape (..., 4) or (..., 5), got shape {d.shape}")
    d = np.concatenate([d, np.zeros(d.shape[:-1] + (5 - d.shape[-1],))], axis=-1)
    k1, k2, p1, p2, k3 = (d[..., i, None] for i in range(5))
    x, y = xn[..., 0], xn[..., 1]
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([xd, yd], axis=-1)


def project_points(X, K, R=None, t=None, dist=None, *, return_depth: bool = False):
    """Project world points to pixels.

    Args:
        X: ``(..., N, 3)`` world points (metres or any unit).
        K: ``(..., 3, 3)`` intrinsics. R: ``(..., 3, 3)`` and t: ``(..., 3)`` world→camera
            (identity / zero when omitted). dist: optional ``(..., 4|5)`` OpenCV distortion.
        return_depth: also return ``z_cam (..., N)``.
    Returns:
        ``x (..., N, 2)`` pixels (and the depths). Points behind the camera are projected anyway;
        check the depth.
    """
    X = as_points("X", X, 3)
    K = as_matrix("K", K, 3, 3)
    Xc = X
    shapes = {"X": X, "K": K[..., None, :, :]}
    if R is not None:
        shapes["R"] = as_matrix("R", R, 3, 3)[..., None, :, :]
    if t is not None:
        shapes["t"] = as_array("t", t, tail=(3,), finite=True)[..., None, :]
    if dist is not None:
        shapes["dist"] = as_array("dist", dist, finite=True)[..., None, :]
    batch_shape({"X": 1, "K": 2, "R": 2, "t": 1, "dist": 1}, **shapes)
    if R is not None:
        R = as_matrix("R", R, 3, 3)
        Xc = np.einsum("...ij,...nj->...ni", R, Xc)
    if t is not None:
        t = as_array("t", t, tail=(3,), finite=True)
        Xc = Xc + t[..., None, :]
    z = Xc[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        xn = Xc[..., :2] / z[..., None]
    if dist is not None:
        xn = distort_normalized(xn, dist)
    x = np.einsum("...ij,...nj->...ni", K[..., :2, :2], xn) + K[..., None, :2, 2]
    return (x, z) if return_depth else x


def undistort_points(x, K, dist) -> np.ndarray:
    """Remove lens distortion from pixels with ``cv2.undistortPoints``; returns pixels in the same K.

    ``x (N, 2)`` or ``(..., N, 2)`` with a single ``K (3, 3)`` and ``dist (4|5,)``. NaN stays NaN.
    """
    x = as_points("x", x)
    K = as_matrix("K", K, 3, 3)
    if K.ndim != 2:
        raise ValueError(f"K: expected shape (3, 3), got shape {K.shape}")
    d = as_array("dist", dist, finite=True).reshape(-1)
    if d.size not in (4, 5, 8, 12, 14):
        raise ValueError(f"dist: expected 4, 5, 8, 12 or 14 coefficients, got {d.size}")
    flat = x.reshape(-1, 2)
    out = np.full_like(flat, np.nan)
    ok = np.all(np.isfinite(flat), axis=1)
    if ok.any():
        und = cv2.undistortPoints(flat[ok].reshape(-1, 1, 2), K, d, P=K)
        out[ok] = und.reshape(-1, 2)
    return out.reshape(x.shape)


def rodrigues_to_matrix(rvec) -> np.ndarray:
    """Axis-angle ``rvec (..., 3)`` (radians) → rotation matrices ``(..., 3, 3)``."""
    r = as_array("rvec", rvec, tail=(3,), finite=True)
    if r.size == 0:
        return np.zeros(r.shape[:-1] + (3, 3))
    return Rotation.from_rotvec(r.reshape(-1, 3)).as_matrix().reshape(r.shape[:-1] + (3, 3))


def matrix_to_rodrigues(R) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` → axis-angle ``(..., 3)`` (radians)."""
    R = as_matrix("R", R, 3, 3)
    if R.size == 0:
        return np.zeros(R.shape[:-2] + (3,))
    try:
        rv = Rotation.from_matrix(R.reshape(-1, 3, 3)).as_rotvec()
    except ValueError as e:          # scipy: left-handed or null matrices
        raise ValueError(f"R: not a rotation matrix ({e})") from None
    return rv.reshape(R.shape[:-2] + (3,))


def invert_pose(R, t):
    """Inverse of ``X ↦ R X + t``: returns ``(Rᵀ, -Rᵀ t)``."""
    R = as_matrix("R", R, 3, 3)
    t = as_array("t", t, tail=(3,), finite=True)
    batch_shape({"R": 2, "t": 1}, R=R, t=t)
    return _invert_pose(R, t)


def _invert_pose(R, t):
    Rt = np.swapaxes(R, -1, -2)
    return Rt, -np.einsum("...ij,...j->...i", Rt, t)


def compose_poses(R1, t1, R2, t2):
    """``X ↦ R2 (R1 X + t1) + t2``: returns ``(R2 R1, R2 t1 + t2)``."""
    R1, R2 = as_matrix("R1", R1, 3, 3), as_matrix("R2", R2, 3, 3)
    t1 = as_array("t1", t1, tail=(3,), finite=True)
    t2 = as_array("t2", t2, tail=(3,), finite=True)
    batch_shape({"R1": 2, "t1": 1, "R2": 2, "t2": 1}, R1=R1, t1=t1, R2=R2, t2=t2)
    return R2 @ R1, np.einsum("...ij,...j->...i", R2, t1) + t2


def relative_pose(R1, t1, R2, t2, *, normalize: bool = False):
    """Pose of camera 2 relative to camera 1 (``X2 = R X1 + t``) from two world→camera poses.

    Returns ``R = R2 R1ᵀ``, ``t = t2 − R t1``; with ``normalize=True`` ``t`` has unit length.
    """
    R1, R2 = as_matrix("R1", R1, 3, 3), as_matrix("R2", R2, 3, 3)
    t1 = as_array("t1", t1, tail=(3,), finite=True)
    t2 = as_array("t2", t2, tail=(3,), finite=True)
    batch_shape({"R1": 2, "t1": 1, "R2": 2, "t2": 1}, R1=R1, t1=t1, R2=R2, t2=t2)
    Ri, ti = _invert_pose(R1, t1)
    R, t = R2 @ Ri, np.einsum("...ij,...j->...i", R2, ti) + t2
    if normalize:
        t = t / np.linalg.norm(t, axis=-1, keepdims=True)
    return R, t


def camera_centers(R, t) -> np.ndarray:
    """Camera centres in world coordinates, ``C = −Rᵀ t`` → ``(..., 3)``."""
    R = as_matrix("R", R, 3, 3)
    t = as_array("t", t, tail=(3,), finite=True)
    batch_shape({"R": 2, "t": 1}, R=R, t=t)
    return _invert_pose(R, t)[1]


def look_at(center, target, up=(0.0, 0.0, 1.0)):
    """World→camera pose of a camera at ``center (..., 3)`` looking at ``target (..., 3)``.

    OpenCV axes: +z towards the target, +y towards ``-up`` (image y points down). Returns
    ``R (..., 3, 3)``, ``t (..., 3)``. Raises ``ValueError`` when ``up`` is parallel to the view.
    """
    c = as_array("center", center, tail=(3,), finite=True)
    g = as_array("target", target, tail=(3,), finite=True)
    u = as_array("up", up, tail=(3,), finite=True)
    batch_shape({"center": 1, "target": 1, "up": 1}, center=c, target=g, up=u)
    z = g - c
    nz = np.linalg.norm(z, axis=-1, keepdims=True)
    if np.any(nz < 1e-12):
        raise ValueError("center/target: camera centre coincides with its target")
    z = z / nz
    x = np.cross(z, -np.broadcast_to(u, z.shape))
    nx = np.linalg.norm(x, axis=-1, keepdims=True)
    if np.any(nx < 1e-9):
        raise ValueError("up: parallel to the viewing direction")
    x = x / nx
    y = np.cross(z, x)
    R = np.stack([x, y, z], axis=-2)
    t = -np.einsum("...ij,...j->...i", R, c)
    return R, t


def essential_from_pose(R, t) -> np.ndarray:
    """``E = [t]_x R`` for the relative pose ``X2 = R X1 + t`` → ``(..., 3, 3)`` (x2ᵀ E x1 = 0)."""
    R = as_matrix("R", R, 3, 3)
    t = as_array("t", t, tail=(3,), finite=True)
    batch_shape({"R": 2, "t": 1}, R=R, t=t)
    return _skew(t) @ R


def fundamental_from_pose(K1, K2, R, t) -> np.ndarray:
    """``F = K2⁻ᵀ [t]_x R K1⁻¹`` scaled to unit Frobenius norm → ``(..., 3, 3)`` (x2ᵀ F x1 = 0)."""
    K1 = as_matrix("K1", K1, 3, 3)
    K2 = as_matrix("K2", K2, 3, 3)
    R = as_matrix("R", R, 3, 3)
    t = as_array("t", t, tail=(3,), finite=True)
    batch_shape({"K1": 2, "K2": 2, "R": 2, "t": 1}, K1=K1, K2=K2, R=R, t=t)
    for name, K in (("K1", K1), ("K2", K2)):
        if np.any(K[..., 0, 0] * K[..., 1, 1] * K[..., 2, 2] == 0) or np.any(K[..., 2, :2] != 0):
            raise ValueError(f"{name}: expected upper-triangular intrinsics with non-zero "
                             f"diagonal")
    with np.errstate(all="ignore"):
        F = np.swapaxes(np.linalg.inv(K2), -1, -2) @ (_skew(t) @ R) @ np.linalg.inv(K1)
        n = np.linalg.norm(F, axis=(-2, -1), keepdims=True)
        return np.where((n > 0) & np.isfinite(n), F / np.where(n > 0, n, 1.0), 0.0)


def rotation_error_deg(R_est, R_true) -> np.ndarray:
    """Angle of ``R_estᵀ R_true`` in degrees, ``(...)``; NaN where an input is not finite."""
    A = as_array("R_est", R_est, tail=(3, 3))
    B = as_array("R_true", R_true, tail=(3, 3))
    batch_shape({"R_est": 2, "R_true": 2}, R_est=A, R_true=B)
    tr = np.einsum("...ij,...ij->...", A, B)
    return np.degrees(np.arccos(np.clip((tr - 1.0) / 2.0, -1.0, 1.0)))


def direction_error_deg(t_est, t_true, *, sign_invariant: bool = False) -> np.ndarray:
    """Angle between vectors ``(..., 3)`` in degrees (``min(a, 180 − a)`` if ``sign_invariant``)."""
    a = as_array("t_est", t_est, tail=(3,))
    b = as_array("t_true", t_true, tail=(3,))
    batch_shape({"t_est": 1, "t_true": 1}, t_est=a, t_true=b)
    na = np.linalg.norm(a, axis=-1)
    nb = np.linalg.norm(b, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.einsum("...i,...i->...", a, b) / (na * nb)
    if sign_invariant:
        c = np.abs(c)
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))
