"""Procedural human motion on the Human3.6M-17 skeleton: anthropometry + forward kinematics.

Coordinates are metres, z up; at zero yaw a person faces ``-y`` with their left on ``+x``.

- :func:`make_subject` draws bone offsets from a height (1.55–1.95 m) and per-segment
  proportions (legs, torso, arms, shoulder and hip widths vary ±4 %), symmetric left/right.
- Motions (:data:`MOTIONS`): ``walk`` (on a circle of radius 0.5–1.0 m, so it also turns),
  ``reach`` (alternating arms to random targets, trunk bending), ``squat``, ``turn`` (turning in
  place with small steps) and ``random`` (smoothly interpolated random poses uniformly inside
  :data:`JOINT_LIMITS`). Every motion adds small smooth per-joint wobble.
- :func:`forward_kinematics` is vectorised over frames: 17 batched 3×3 products. Feet are put
  on the floor (the lower ankle 8 cm × scale above ``z = 0``) in every frame.
"""
from __future__ import annotations

import numpy as np

from .skeletons import H36M_17

__all__ = ["MOTIONS", "JOINT_LIMITS", "REST_OFFSETS", "make_subject", "joint_angles",
           "forward_kinematics", "make_motion", "euler_to_matrix"]

MOTIONS = ("walk", "reach", "squat", "turn", "random")

# Rest offsets of every joint from its parent for a 1.72 m person (metres, z up, facing -y).
REST_OFFSETS = np.array([
    [0, 0, 0], [-0.13, 0, -0.02], [0, 0, -0.44], [0, 0, -0.44], [0.13, 0, -0.02], [0, 0, -0.44],
    [0, 0, -0.44], [0, 0.01, 0.23], [0, 0, 0.25], [0, -0.05, 0.10], [0, 0.03, 0.12],
    [0.16, 0, -0.02], [0, 0, -0.28], [0, 0, -0.25], [-0.16, 0, -0.02], [0, 0, -0.28],
    [0, 0, -0.25]], dtype=np.float64)
# Proportion factor per joint offset: 1 leg, 2 torso/head, 3 shoulder width, 4 hip width, 5 arm.
_SEGMENT = np.array([0, 4, 1, 1, 4, 1, 1, 2, 2, 2, 2, 3, 5, 5, 3, 5, 5])

# Anatomical angles (degrees): flexion, abduction, twist → Euler angles about x, y, z of the
# parent frame. Sign tables turn "flexion" into the right rotation for each joint.
_FLEX_SIGN = np.array([1, -1, 1, 0, -1, 1, 0, 1, 1, 1, 0, -1, -1, 0, -1, -1, 0], float)
_ABD_SIGN = np.array([1, 1, 0, 0, -1, 0, 0, 1, 1, 1, 0, -1, 0, 0, 1, 0, 0], float)
_TWIST_SIGN = np.array([1, 1, 0, 0, -1, 0, 0, 1, 1, 1, 0, -1, 0, 0, 1, 0, 0], float)

JOINT_LIMITS = np.array([  # (J, 3 [flex, abd, twist], 2 [lo, hi]) degrees; root handled apart
    [[-10, 10], [-5, 5], [-180, 180]],
    [[-20, 110], [-10, 40], [-30, 30]], [[0, 130], [0, 0], [0, 0]], [[0, 0], [0, 0], [0, 0]],
    [[-20, 110], [-10, 40], [-30, 30]], [[0, 130], [0, 0], [0, 0]], [[0, 0], [0, 0], [0, 0]],
    [[-15, 45], [-20, 20], [-35, 35]], [[-10, 15], [-10, 10], [-10, 10]],
    [[-30, 45], [-30, 30], [-60, 60]], [[0, 0], [0, 0], [0, 0]],
    [[-40, 170], [-20, 150], [-60, 60]], [[0, 145], [0, 0], [0, 0]], [[0, 0], [0, 0], [0, 0]],
    [[-40, 170], [-20, 150], [-60, 60]], [[0, 145], [0, 0], [0, 0]], [[0, 0], [0, 0], [0, 0]],
], dtype=np.float64)
"""Anatomical joint limits ``(17, 3, 2)`` degrees: [flexion, abduction, twist] × [low, high]."""


def make_subject(height: float | None = None, *, seed: int = 0) -> np.ndarray:
    """Bone offsets ``(17, 3)`` (metres) of a person; ``height`` (m) defaults to U(1.55, 1.95)."""
    rng = np.random.default_rng(seed)
    h = rng.uniform(1.55, 1.95) if height is None else float(height)
    seg = np.clip(rng.normal(1.0, 0.04, 6), 0.9, 1.1)
    seg[0] = 1.0
    return REST_OFFSETS * (h / 1.72) * seg[_SEGMENT][:, None]


def euler_to_matrix(angles) -> np.ndarray:
    """Euler angles ``(..., 3)`` radians (about x, y, z) → ``Rz @ Ry @ Rx`` ``(..., 3, 3)``."""
    a = np.asarray(angles, dtype=np.float64)
    cx, cy, cz = np.cos(a[..., 0]), np.cos(a[..., 1]), np.cos(a[..., 2])
    sx, sy, sz = np.sin(a[..., 0]), np.sin(a[..., 1]), np.sin(a[..., 2])
    R = np.empty(a.shape[:-1] + (3, 3))
    R[..., 0, 0] = cz * cy
    R[..., 0, 1] = cz * sy * sx - sz * cx
    R[..., 0, 2] = cz * sy * cx + sz * sx
    R[..., 1, 0] = sz * cy
    R[..., 1, 1] = sz * sy * sx + cz * cx
    R[..., 1, 2] = sz * sy * cx - cz * sx
    R[..., 2, 0] = -sy
    R[..., 2, 1] = cy * sx
    R[..., 2, 2] = cy * cx
    return R


def joint_angles(anatomical) -> np.ndarray:
    """Anatomical angles ``(..., 17, 3)`` degrees [flex, abd, twist] → Euler radians (x, y, z)."""
    a = np.asarray(anatomical, dtype=np.float64)
    e = np.stack([a[..., 0] * _FLEX_SIGN, a[..., 1] * _ABD_SIGN, a[..., 2] * _TWIST_SIGN], -1)
    e[..., 0, :] = a[..., 0, :]  # the root: pitch, roll, yaw as given
    return np.deg2rad(e)


def forward_kinematics(offsets, anatomical, root_xy=None, *, floor: bool = True) -> np.ndarray:
    """Joint positions ``(T, 17, 3)`` (metres) from bone ``offsets (17, 3)`` and anatomical
    angles ``(T, 17, 3)`` degrees (joint 0: pitch, roll, yaw of the whole body).

    ``root_xy (T, 2)`` places the pelvis on the floor plane; with ``floor`` the body is raised so
    the lower ankle is ``0.08 × scale`` m above ``z = 0``.
    """
    off = np.asarray(offsets, dtype=np.float64)
    L = euler_to_matrix(joint_angles(anatomical))
    T = L.shape[0]
    G = np.empty((T, 17, 3, 3))
    P = np.zeros((T, 17, 3))
    G[:, 0] = L[:, 0]
    for j in range(1, 17):
        p = H36M_17.parents[j]
        P[:, j] = P[:, p] + G[:, p] @ off[j]
        G[:, j] = G[:, p] @ L[:, j]
    if floor:
        scale = np.linalg.norm(off[2]) / 0.44
        P[..., 2] += 0.08 * scale - np.minimum(P[:, 3, 2], P[:, 6, 2])[:, None]
    if root_xy is not None:
        P[..., :2] += np.asarray(root_xy, dtype=np.float64)[:, None, :]
    return P


def _wobble(rng, T, fps, amp_deg=3.0, n=3):
    """Smooth random angle perturbations ``(T, 17, 3)``: a few slow sinusoids per channel."""
    t = np.arange(T) / fps
    f = rng.uniform(0.1, 0.8, (n, 17, 3))
    ph = rng.uniform(0, 2 * np.pi, (n, 17, 3))
    a = rng.uniform(0, amp_deg / n, (n, 17, 3))
    w = np.zeros((T, 17, 3))
    for k in range(n):
        w += a[k] * np.sin(2 * np.pi * f[k] * t[:, None, None] + ph[k])
    w[:, 0, 2] = 0.0
    return w


def _smooth_keys(rng, T, fps, period, lo, hi):
    """Random keyframes uniform in [lo, hi] every ``period`` s, cosine-interpolated → (T, ...)."""
    n = int(np.ceil(T / (period * fps))) + 2
    keys = rng.uniform(lo, hi, (n,) + np.shape(lo))
    s = np.arange(T) / (period * fps)
    i = np.floor(s).astype(int)
    u = (0.5 - 0.5 * np.cos(np.pi * (s - i))).reshape((T,) + (1,) * np.ndim(lo))
    return keys[i] * (1 - u) + keys[i + 1] * u


def make_motion(motion: str, num_frames: int, *, fps: float = 50.0, offsets=None,
                seed: int = 0) -> np.ndarray:
    """Joint positions ``(T, 17, 3)`` (metres, z up) of one procedural ``motion`` clip."""
    if motion not in MOTIONS:
        raise ValueError(f"motion: expected one of {MOTIONS}, got {motion!r}")
    T = int(num_frames)
    if T < 1:
        raise ValueError(f"num_frames: expected >= 1, got {num_frames}")
    rng = np.random.default_rng(seed)
    off = make_subject(seed=seed) if offsets is None else np.asarray(offsets, dtype=np.float64)
    t = np.arange(T) / fps
    A = _wobble(rng, T, fps)
    yaw0 = rng.uniform(-180, 180)
    root_xy = np.zeros((T, 2)) + rng.uniform(-0.3, 0.3, 2)
    A[:, 0, 2] = yaw0
    if motion == "walk":
        r, v = rng.uniform(0.5, 1.0), rng.uniform(0.9, 1.4)
        f = v / rng.uniform(1.2, 1.5)  # stride (two steps) frequency, Hz
        phi = 2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)
        th = np.deg2rad(yaw0) + rng.choice([-1, 1]) * v * t / r
        root_xy = np.stack([r * np.cos(th), r * np.sin(th)], -1) - r * np.array(
            [np.cos(th[0]), np.sin(th[0])])
        d = np.sign(th[-1] - th[0]) if T > 1 else 1.0
        A[:, 0, 2] = np.rad2deg(th) + (180.0 if d > 0 else 0.0)
        for hip, knee, sh, el, ph in ((1, 2, 14, 15, 0.0), (4, 5, 11, 12, np.pi)):
            A[:, hip, 0] += 12 + 22 * np.sin(phi + ph)
            A[:, knee, 0] += 8 + 50 * np.clip(np.sin(phi + ph - 2.2), 0, None) ** 2 + 8
            A[:, sh, 0] += -18 * np.sin(phi + ph)
            A[:, el, 0] += 20 + 10 * np.sin(phi + ph)
            A[:, sh, 1] += 8
        A[:, 7, 0] += 5
    elif motion == "reach":
        period = rng.uniform(1.8, 3.0)
        cyc = t / period
        k = np.floor(cyc).astype(int)
        u = np.sin(np.pi * (cyc - k)) ** 2
        targ = rng.uniform([60, 0, -30], [160, 60, 30], (k.max() + 1, 3))
        right = (k + rng.integers(2)) % 2 == 0
        for sh, el, side in ((14, 15, right), (11, 12, ~right)):
            w = u * side
            A[:, sh, 0] += w * targ[k, 0]
            A[:, sh, 1] += w * targ[k, 1] + 5
            A[:, sh, 2] += w * targ[k, 2]
            # the active arm bends on the way out and straightens at the target; both
            # elbows are at rest (15°) where the active arm switches (u = 0): no jump
            A[:, el, 0] += 15 + side * (10 * w + 70 * np.sin(np.pi * (cyc - k)) * (1 - w))
        A[:, 7, 0] += 25 * u * rng.uniform(0.3, 1.0)
        A[:, 7, 2] += 15 * u * np.where(right, -1, 1)
    elif motion == "squat":
        period = rng.uniform(2.5, 3.5)
        depth = rng.uniform(0.6, 1.0)
        u = depth * np.sin(np.pi * t / period) ** 2
        for hip, knee in ((1, 2), (4, 5)):
            A[:, hip, 0] += 100 * u
            A[:, hip, 1] += 12
            A[:, knee, 0] += 120 * u
        A[:, 0, 0] += 0  # keep the pelvis upright; the trunk leans through the spine
        A[:, 7, 0] += 35 * u
        A[:, 11, 0] += 80 * u
        A[:, 14, 0] += 80 * u
        A[:, 12, 0] += 10
        A[:, 15, 0] += 10
    elif motion == "turn":
        w = rng.choice([-1, 1]) * rng.uniform(45, 120)
        A[:, 0, 2] = yaw0 + w * t
        phi = 2 * np.pi * 1.6 * t
        for hip, knee, ph in ((1, 2, 0.0), (4, 5, np.pi)):
            s = np.clip(np.sin(phi + ph), 0, None)
            A[:, hip, 0] += 20 * s
            A[:, knee, 0] += 35 * s
        for sh, el in ((11, 12), (14, 15)):
            A[:, sh, 1] += 10
            A[:, el, 0] += 25
    else:  # random poses within the joint limits
        lo, hi = JOINT_LIMITS[1:, :, 0], JOINT_LIMITS[1:, :, 1]
        A[:, 1:] += _smooth_keys(rng, T, fps, rng.uniform(0.6, 1.2), lo, hi)
        A[:, 0, 2] = yaw0 + _smooth_keys(rng, T, fps, 1.5, -90.0, 90.0)
    lim = JOINT_LIMITS
    A[:, 1:] = np.clip(A[:, 1:], lim[1:, :, 0], lim[1:, :, 1])
    return forward_kinematics(off, A, root_xy)
