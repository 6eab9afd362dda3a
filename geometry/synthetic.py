"""Synthetic multi-view scenes with known truth, shared by tests and benchmarks.

Noise model (all seeded):
- Gaussian pixel noise with standard deviation ``noise`` px on every observation;
- gross outliers: a fraction ``outlier_ratio`` of observations (chosen per camera independently)
  replaced by a uniformly random pixel inside the image (``outlier_model="uniform"``) or displaced
  by 20–150 px in a random direction (``"local"``, like a detector picking the wrong limb);
- missing observations: a fraction ``missing_ratio`` set to NaN.

The point sets are "human-like": 17 points laid out like a Human3.6M skeleton (metres, z up),
articulated at random and moved about the rig centre. Realistic people live in ``pose.synthetic``;
this module depends on nothing but numpy.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from .camera import fundamental_from_pose, look_at, project_points, relative_pose
from .common.checks import check_choice, check_int, check_real, check_seed
from .common.validate import as_array

_MAX_ITEMS = 10 ** 6   # frames, points, problems: a guard against memory exhaustion

__all__ = [
    "Rig",
    "MultiViewScene",
    "TwoViewScene",
    "make_ring_rig",
    "make_random_rig",
    "human_like_points",
    "make_multiview_scene",
    "make_two_view_scene",
    "two_view_from_multiview",
]

# A Human3.6M-17 layout in metres, z up, facing -y: pelvis, R hip/knee/ankle, L hip/knee/ankle,
# spine, thorax, neck/nose, head, L shoulder/elbow/wrist, R shoulder/elbow/wrist.
_TEMPLATE = np.array([
    [0.00, 0.00, 1.00], [-0.13, 0.00, 0.98], [-0.14, 0.02, 0.55], [-0.14, 0.05, 0.10],
    [0.13, 0.00, 0.98], [0.14, 0.02, 0.55], [0.14, 0.05, 0.10], [0.00, 0.00, 1.23],
    [0.00, 0.00, 1.48], [0.00, -0.06, 1.58], [0.00, 0.00, 1.72], [0.18, 0.00, 1.45],
    [0.22, 0.00, 1.17], [0.24, -0.05, 0.92], [-0.18, 0.00, 1.45], [-0.22, 0.00, 1.17],
    [-0.24, -0.05, 0.92]])
# Joints that move with articulation noise (limbs) and how much (metres).
_ARTICULATION = np.array([0, .03, .12, .2, .03, .12, .2, .02, .03, .04, .05, .04, .15, .25, .04,
                          .15, .25])


@dataclass(frozen=True)
class Rig:
    """A static rig of ``C`` cameras: ``K (C,3,3)``, world→camera ``R (C,3,3)``, ``t (C,3)``,
    ``image_size`` ``(width, height)`` px. World units are metres, z up."""

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    image_size: tuple

    @property
    def num_cameras(self) -> int:
        return int(self.K.shape[0])

    def project(self, X, *, return_depth: bool = False):
        """World points ``X (..., N, 3)`` → pixels ``(C, ..., N, 2)`` in every camera."""
        X = np.asarray(X, dtype=np.float64)
        extra = (1,) * (X.ndim - 2)
        K = self.K.reshape((-1,) + extra + (3, 3))
        R = self.R.reshape((-1,) + extra + (3, 3))
        t = self.t.reshape((-1,) + extra + (3,))
        return project_points(X[None], K, R, t, return_depth=return_depth)


@dataclass(frozen=True)
class MultiViewScene:
    """``X (T,J,3)`` world points; ``x (C,T,J,2)`` observed pixels (noise, outliers, NaN where
    missing); ``x_clean`` the exact projections; ``outlier`` and ``missing`` ``(C,T,J)`` bool."""

    rig: Rig
    X: np.ndarray
    x: np.ndarray
    x_clean: np.ndarray
    outlier: np.ndarray
    missing: np.ndarray


@dataclass(frozen=True)
class TwoViewScene:
    """``B`` independent two-view problems of ``N`` points.

    ``x1, x2 (B,N,2)`` observed pixels; ``K1, K2 (B,3,3)``; true relative pose ``R (B,3,3)``,
    ``t (B,3)`` with ``|t| = 1`` (``X2 = R X1 + t``); ``F (B,3,3)`` true fundamental matrix (unit
    Frobenius norm); ``X1 (B,N,3)`` points in camera 1 (scaled like ``t``); ``inlier (B,N)``:
    neither view is an outlier nor missing.
    """

    x1: np.ndarray
    x2: np.ndarray
    K1: np.ndarray
    K2: np.ndarray
    R: np.ndarray
    t: np.ndarray
    F: np.ndarray
    X1: np.ndarray
    inlier: np.ndarray


def _image_size(image_size) -> tuple:
    size = as_array("image_size", image_size, finite=True)
    if size.shape != (2,) or np.any(size <= 0):
        raise ValueError(f"image_size: expected positive (width, height), got {image_size!r}")
    return tuple(int(v) if float(v).is_integer() else float(v) for v in size)


def _range(name, value, *, positive=True) -> tuple:
    r = as_array(name, value, finite=True)
    if r.shape != (2,) or r[0] > r[1] or (positive and r[0] <= 0):
        raise ValueError(f"{name}: expected a range (low, high) with "
                         f"{'0 < ' if positive else ''}low <= high, got {value!r}")
    return float(r[0]), float(r[1])


def _intrinsics(focal, image_size) -> np.ndarray:
    w, h = image_size
    return np.array([[focal, 0.0, w / 2.0], [0.0, focal, h / 2.0], [0.0, 0.0, 1.0]])


def make_ring_rig(num_cameras: int = 4, *, radius: float = 5.0, height: float = 1.6,
                  target=(0.0, 0.0, 1.0), focal: float = 1150.0, image_size=(1000, 1000),
                  jitter_deg: float = 0.0, seed: int = 0) -> Rig:
    """Cameras evenly spaced on a horizontal circle (Human3.6M-like for 4 cameras, 45° offset),
    all looking at ``target``; ``jitter_deg`` perturbs each camera's azimuth at random."""
    num_cameras = check_int("num_cameras", num_cameras, 1, 10 ** 4)
    radius = check_real("radius", radius, 0.0, lo_open=True)
    height = check_real("height", height)
    target = as_array("target", target, finite=True)
    if target.shape != (3,):
        raise ValueError(f"target: expected shape (3,), got shape {target.shape}")
    focal = check_real("focal", focal, 0.0, lo_open=True)
    image_size = _image_size(image_size)
    jitter_deg = check_real("jitter_deg", jitter_deg, 0.0, 360.0)
    rng = np.random.default_rng(check_seed("seed", seed))
    az = np.deg2rad(45.0 + 360.0 * np.arange(num_cameras) / num_cameras
                    + rng.uniform(-jitter_deg, jitter_deg, num_cameras))
    centers = np.stack([radius * np.cos(az), radius * np.sin(az), np.full(num_cameras, height)], -1)
    try:
        R, t = look_at(centers, np.broadcast_to(target, centers.shape))
    except ValueError as e:
        raise ValueError(f"target/radius/height: no camera pose looks at the target ({e})") \
            from None
    K = np.broadcast_to(_intrinsics(focal, image_size), (num_cameras, 3, 3)).copy()
    return Rig(K=K, R=R, t=t, image_size=tuple(image_size))


def make_random_rig(num_cameras: int = 4, *, distance=(3.5, 7.0), height=(0.5, 2.5),
                    focal=(1100.0, 1700.0), image_size=(1000, 1000), seed: int = 0) -> Rig:
    """Cameras at random azimuths, distances (m), heights (m) and focal lengths (px), looking at
    a point near the subject's middle (about 1 m above the floor)."""
    num_cameras = check_int("num_cameras", num_cameras, 1, 10 ** 4)
    distance = _range("distance", distance)
    height = _range("height", height, positive=False)
    focal = _range("focal", focal)
    image_size = _image_size(image_size)
    rng = np.random.default_rng(check_seed("seed", seed))
    az = rng.uniform(0, 2 * np.pi, num_cameras)
    d = rng.uniform(*distance, num_cameras)
    centers = np.stack([d * np.cos(az), d * np.sin(az), rng.uniform(*height, num_cameras)], -1)
    targets = np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.2, (num_cameras, 3))
    try:
        R, t = look_at(centers, targets)
    except ValueError as e:
        raise ValueError(f"distance/height: no camera pose looks at the subject ({e})") from None
    f = rng.uniform(*focal, num_cameras)
    K = np.stack([_intrinsics(fi, image_size) for fi in f])
    return Rig(K=K, R=R, t=t, image_size=tuple(image_size))


def human_like_points(num_frames: int, num_points: int = 17, *, spread: float = 1.0,
                      seed: int = 0) -> np.ndarray:
    """``(T, J, 3)`` human-sized point sets (metres, z up), articulated at random, turned about
    the vertical axis and moved within ``±spread`` m of the origin. ``J > 17`` adds random points
    inside the body's bounding box."""
    num_frames = check_int("num_frames", num_frames, 0, _MAX_ITEMS)
    num_points = check_int("num_points", num_points, 0, _MAX_ITEMS)
    spread = check_real("spread", spread, 0.0)
    rng = np.random.default_rng(check_seed("seed", seed))
    base = _TEMPLATE
    if num_points > 17:
        lo, hi = base.min(0), base.max(0)
        base = np.concatenate([base, rng.uniform(lo, hi, (num_points - 17, 3))])
    base = base[:num_points]
    art = np.resize(_ARTICULATION, num_points)
    P = base[None] + rng.normal(size=(num_frames, num_points, 3)) * art[None, :, None]
    yaw = rng.uniform(0, 2 * np.pi, num_frames)
    c, s = np.cos(yaw), np.sin(yaw)
    Rz = np.zeros((num_frames, 3, 3))
    Rz[:, 0, 0], Rz[:, 0, 1], Rz[:, 1, 0], Rz[:, 1, 1], Rz[:, 2, 2] = c, -s, s, c, 1.0
    shift = np.concatenate([rng.uniform(-spread, spread, (num_frames, 2)),
                            np.zeros((num_frames, 1))], -1)
    return np.einsum("tij,tnj->tni", Rz, P) + shift[:, None, :]


def _corrupt(x_clean, image_size, noise, outlier_ratio, missing_ratio, outlier_model, rng):
    x = x_clean + rng.normal(0.0, noise, x_clean.shape) if noise > 0 else x_clean.copy()
    shape = x.shape[:-1]
    outlier = rng.random(shape) < outlier_ratio
    k = int(outlier.sum())
    if outlier_model == "uniform":
        x[outlier] = rng.uniform((0, 0), image_size, (k, 2))
    elif outlier_model == "local":
        ang = rng.uniform(0, 2 * np.pi, k)
        r = rng.uniform(20.0, 150.0, k)
        x[outlier] += np.stack([r * np.cos(ang), r * np.sin(ang)], -1)
    else:
        raise ValueError(f"outlier_model: expected 'uniform' or 'local', got {outlier_model!r}")
    missing = rng.random(shape) < missing_ratio
    x[missing] = np.nan
    return x, outlier & ~missing, missing


def make_multiview_scene(num_frames: int = 100, num_points: int = 17, *, rig: Rig | None = None,
                         noise: float = 2.0, outlier_ratio: float = 0.1,
                         missing_ratio: float = 0.0, outlier_model: str = "uniform",
                         seed: int = 0) -> MultiViewScene:
    """A static rig (default: 4-camera ring) filming human-like points for ``num_frames`` frames."""
    num_frames = check_int("num_frames", num_frames, 1, _MAX_ITEMS)
    num_points = check_int("num_points", num_points, 1, _MAX_ITEMS)
    if rig is not None and not isinstance(rig, Rig):
        raise TypeError(f"rig: expected a geometry.Rig, got {type(rig).__name__}")
    noise = check_real("noise", noise, 0.0)
    outlier_ratio = check_real("outlier_ratio", outlier_ratio, 0.0, 1.0)
    missing_ratio = check_real("missing_ratio", missing_ratio, 0.0, 1.0)
    check_choice("outlier_model", outlier_model, ("uniform", "local"))
    rig = make_ring_rig() if rig is None else rig
    rng = np.random.default_rng(check_seed("seed", seed))
    X = human_like_points(num_frames, num_points, seed=int(rng.integers(2**31)))
    x_clean = rig.project(X)
    x, outlier, missing = _corrupt(x_clean, rig.image_size, noise, outlier_ratio, missing_ratio,
                                   outlier_model, rng)
    return MultiViewScene(rig=rig, X=X, x=x, x_clean=x_clean, outlier=outlier, missing=missing)


def two_view_from_multiview(scene: MultiViewScene, pairs=None) -> TwoViewScene:
    """Every frame of every camera pair as an independent problem: ``B = len(pairs) * T``,
    ordered pair-major. ``pairs`` defaults to all ``(i, j)`` with ``i < j``."""
    if not isinstance(scene, MultiViewScene):
        raise TypeError(f"scene: expected a geometry.MultiViewScene, got {type(scene).__name__}")
    rig = scene.rig
    C = rig.num_cameras
    if pairs is None:
        pairs = list(combinations(range(C), 2))
        if not pairs:
            raise ValueError(f"scene: needs at least 2 cameras, has {C}")
    else:
        p = np.asarray(pairs) if not isinstance(pairs, np.ndarray) else pairs
        if p.dtype.kind not in "iu" or p.ndim != 2 or p.shape[0] == 0 or p.shape[1] != 2 \
                or np.any(p < 0) or np.any(p >= C) or np.any(p[:, 0] == p[:, 1]):
            raise ValueError(f"pairs: expected a non-empty (P, 2) array of distinct camera "
                             f"indices in [0, {C}), got {pairs!r}")
        pairs = [(int(i), int(j)) for i, j in p]
    T = scene.X.shape[0]
    x1, x2, K1, K2, R, t, X1, inl = [], [], [], [], [], [], [], []
    for i, j in pairs:
        Rij, tij = relative_pose(rig.R[i], rig.t[i], rig.R[j], rig.t[j])
        s = np.linalg.norm(tij)
        x1.append(scene.x[i]), x2.append(scene.x[j])
        K1.append(np.broadcast_to(rig.K[i], (T, 3, 3)))
        K2.append(np.broadcast_to(rig.K[j], (T, 3, 3)))
        R.append(np.broadcast_to(Rij, (T, 3, 3)))
        t.append(np.broadcast_to(tij / s, (T, 3)))
        X1.append((scene.X @ rig.R[i].T + rig.t[i]) / s)
        inl.append(~(scene.outlier[i] | scene.outlier[j] | scene.missing[i] | scene.missing[j]))
    cat = lambda a: np.ascontiguousarray(np.concatenate(a))  # noqa: E731
    K1, K2, R, t = cat(K1), cat(K2), cat(R), cat(t)
    return TwoViewScene(x1=cat(x1), x2=cat(x2), K1=K1, K2=K2, R=R, t=t,
                        F=fundamental_from_pose(K1, K2, R, t), X1=cat(X1), inlier=cat(inl))


def make_two_view_scene(num_problems: int = 1, num_points: int = 17, *, noise: float = 0.0,
                        outlier_ratio: float = 0.0, structure: str = "human",
                        focal: float = 1150.0, image_size=(1000, 1000),
                        angle_deg=(30.0, 150.0), outlier_model: str = "uniform",
                        seed: int = 0) -> TwoViewScene:
    """Independent random two-view problems.

    Camera 1 sits 4–7 m from the subject; camera 2 on a circle about the subject at an angle of
    ``angle_deg`` (degrees, range) from camera 1, 0.5–2.5 m high. ``structure``: ``"human"``
    (human-like points), ``"random"`` (uniform in a 1 m box) or ``"planar"`` (a vertical plane,
    degenerate for F).
    """
    B = check_int("num_problems", num_problems, 1, _MAX_ITEMS)
    N = check_int("num_points", num_points, 1, _MAX_ITEMS)
    check_choice("structure", structure, ("human", "random", "planar"))
    noise = check_real("noise", noise, 0.0)
    outlier_ratio = check_real("outlier_ratio", outlier_ratio, 0.0, 1.0)
    focal = check_real("focal", focal, 0.0, lo_open=True)
    image_size = _image_size(image_size)
    angle_deg = _range("angle_deg", angle_deg, positive=False)
    check_choice("outlier_model", outlier_model, ("uniform", "local"))
    rng = np.random.default_rng(check_seed("seed", seed))
    if structure == "human":
        X = human_like_points(B, N, spread=0.3, seed=int(rng.integers(2**31)))
    elif structure == "random":
        X = rng.uniform(-0.5, 0.5, (B, N, 3)) + np.array([0, 0, 1.0])
    elif structure == "planar":
        X = np.concatenate([rng.uniform(-0.5, 0.5, (B, N, 1)), np.zeros((B, N, 1)),
                            rng.uniform(0.2, 1.8, (B, N, 1))], -1)
    else:
        raise ValueError(f"structure: expected 'human', 'random' or 'planar', got {structure!r}")
    az1 = rng.uniform(0, 2 * np.pi, B)
    az2 = az1 + np.deg2rad(rng.uniform(*angle_deg, B)) * rng.choice([-1.0, 1.0], B)
    d1, d2 = rng.uniform(4, 7, B), rng.uniform(4, 7, B)
    c1 = np.stack([d1 * np.cos(az1), d1 * np.sin(az1), rng.uniform(0.5, 2.5, B)], -1)
    c2 = np.stack([d2 * np.cos(az2), d2 * np.sin(az2), rng.uniform(0.5, 2.5, B)], -1)
    tgt = np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.1, (B, 3))
    R1, t1 = look_at(c1, tgt)
    R2, t2 = look_at(c2, tgt)
    K = np.broadcast_to(_intrinsics(focal, image_size), (B, 3, 3)).copy()
    Rr, tr = relative_pose(R1, t1, R2, t2)
    s = np.linalg.norm(tr, axis=-1)
    X1 = (np.einsum("bij,bnj->bni", R1, X) + t1[:, None]) / s[:, None, None]
    xs = np.stack([project_points(X, K, R1, t1), project_points(X, K, R2, t2)])
    x, outlier, _ = _corrupt(xs, image_size, noise, outlier_ratio, 0.0, outlier_model, rng)
    tn = tr / s[:, None]
    return TwoViewScene(x1=x[0], x2=x[1], K1=K, K2=K.copy(), R=Rr, t=tn,
                        F=fundamental_from_pose(K, K, Rr, tn), X1=X1,
                        inlier=~(outlier[0] | outlier[1]))
