"""BVH motion capture: parser, forward kinematics, and a map onto Human3.6M-17.

A BVH file is a ``HIERARCHY`` of joints (``OFFSET`` from the parent in the parent's frame,
``CHANNELS`` — positions and Euler rotations in degrees, in the listed order) and a ``MOTION``
table (one line of channel values per frame). Forward kinematics: a joint's local rotation is the
product of its rotation channels in listed order (``Zrotation Yrotation Xrotation`` →
``Rz Ry Rx``); ``G_j = G_parent R_j`` and ``p_j = p_parent + G_parent (offset_j + position
channels)`` (the root: ``offset + position channels``). End sites become joints named
``<parent>_End``.

:func:`bvh_to_h36m` maps the CMU skeleton (as in ``../shared/data/cmu_mocap_131``, Y up, metres)
onto Human3.6M-17 with z up (``(x, y, z)_out = (x, -z, y)_bvh``), metres.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .motion import euler_to_matrix

__all__ = ["BVHClip", "read_bvh", "bvh_forward_kinematics", "bvh_to_h36m", "CMU_TO_H36M",
           "Y_UP_TO_Z_UP"]

Y_UP_TO_Z_UP = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
"""Rotation taking Y-up BVH coordinates to this project's z-up world (facing -y stays -y)."""


@dataclass(frozen=True)
class BVHClip:
    """A parsed BVH: ``names (J,)``, ``parents (J,)``, ``offsets (J,3)``, per-joint channel
    names, ``motion (T, num_channels)`` raw values, ``frame_time`` seconds."""

    names: tuple
    parents: tuple
    offsets: np.ndarray
    channels: tuple
    motion: np.ndarray
    frame_time: float

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time if self.frame_time > 0 else 0.0

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])


def read_bvh(path) -> BVHClip:
    """Parse a BVH file; a malformed file raises ``ValueError`` naming the file and field."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable text file ({exc})") from None
    tok = text.split()
    if not tok or tok[0] != "HIERARCHY":
        raise ValueError(f"{path}: field 'HIERARCHY' missing at the start")
    names, parents, offsets, channels = [], [], [], []
    stack, i, pending = [], 1, None
    try:
        while tok[i] != "MOTION":
            w = tok[i]
            if w in ("ROOT", "JOINT"):
                pending = tok[i + 1]
                i += 2
            elif w == "End":
                pending = names[stack[-1]] + "_End"
                i += 2
            elif w == "{":
                names.append(pending)
                parents.append(stack[-1] if stack else -1)
                offsets.append(np.zeros(3))
                channels.append(())
                stack.append(len(names) - 1)
                i += 1
            elif w == "}":
                stack.pop()
                i += 1
            elif w == "OFFSET":
                offsets[stack[-1]] = np.array([float(v) for v in tok[i + 1:i + 4]])
                i += 4
            elif w == "CHANNELS":
                n = int(tok[i + 1])
                channels[stack[-1]] = tuple(tok[i + 2:i + 2 + n])
                i += 2 + n
            else:
                raise ValueError(f"{path}: field 'HIERARCHY' has unexpected token {w!r}")
        if tok[i + 1] != "Frames:" or tok[i + 3] != "Frame" or tok[i + 4] != "Time:":
            raise ValueError(f"{path}: field 'Frames:'/'Frame Time:' missing after MOTION")
        T, dt = int(tok[i + 2]), float(tok[i + 5])
        values = np.array(tok[i + 6:], dtype=np.float64)
    except (IndexError, ValueError) as exc:
        if isinstance(exc, ValueError) and str(path) in str(exc):
            raise
        raise ValueError(f"{path}: field 'HIERARCHY'/'MOTION' is malformed ({exc})") from None
    nc = sum(len(c) for c in channels)
    if stack or not names:
        raise ValueError(f"{path}: field 'HIERARCHY' has unbalanced braces")
    if values.size != T * nc:
        raise ValueError(f"{path}: field 'MOTION' has {values.size} values, expected "
                         f"Frames ({T}) × channels ({nc})")
    return BVHClip(names=tuple(names), parents=tuple(parents), offsets=np.stack(offsets),
                   channels=tuple(channels), motion=values.reshape(T, nc), frame_time=dt)


def _axis_rotation(axis: str, deg: np.ndarray) -> np.ndarray:
    a = np.zeros(deg.shape + (3,))
    a[..., "XYZ".index(axis)] = np.deg2rad(deg)
    return euler_to_matrix(a)


def bvh_forward_kinematics(clip: BVHClip) -> np.ndarray:
    """World positions ``(T, J, 3)`` of every joint (the file's units and axes)."""
    T, J = clip.num_frames, len(clip.names)
    P = np.zeros((T, J, 3))
    G = np.zeros((T, J, 3, 3))
    col = 0
    for j in range(J):
        local_R = np.broadcast_to(np.eye(3), (T, 3, 3))
        pos = np.broadcast_to(clip.offsets[j], (T, 3)).copy()
        for ch in clip.channels[j]:
            v = clip.motion[:, col]
            col += 1
            kind, axis = ch[1:], ch[0].upper()
            if kind == "position":
                pos[:, "XYZ".index(axis)] += v
            elif kind == "rotation":
                local_R = local_R @ _axis_rotation(axis, v)
            else:
                raise ValueError(f"channels: unknown channel {ch!r} of joint {clip.names[j]!r}")
        p = clip.parents[j]
        if p < 0:
            P[:, j] = pos
            G[:, j] = local_R
        else:
            P[:, j] = P[:, p] + np.einsum("tij,tj->ti", G[:, p], pos)
            G[:, j] = G[:, p] @ local_R
    return P


CMU_TO_H36M = {"Pelvis": ("Hips",), "RHip": ("RightHip",), "RKnee": ("RightKnee",),
               "RAnkle": ("RightAnkle",), "LHip": ("LeftHip",), "LKnee": ("LeftKnee",),
               "LAnkle": ("LeftAnkle",), "Spine": ("Chest",), "Thorax": ("Chest2",),
               "Nose": ("Neck",), "Head": ("Head",), "LShoulder": ("LeftShoulder",),
               "LElbow": ("LeftElbow",), "LWrist": ("LeftWrist",),
               "RShoulder": ("RightShoulder",), "RElbow": ("RightElbow",),
               "RWrist": ("RightWrist",)}
"""Human3.6M-17 joint → CMU BVH joints averaged for it. Chosen so that every Human3.6M bone is
one rigid CMU segment (constant length): thorax = upper chest, neck/nose = CMU neck, head = CMU
head joint (about 9 cm lower than a Human3.6M head top)."""


def bvh_to_h36m(clip_or_path, *, mapping: dict | None = None, scale: float = 1.0,
                z_up: bool = True) -> np.ndarray:
    """Human3.6M-17 joints ``(T, 17, 3)`` of a BVH clip (default: CMU skeleton, metres, z up).

    ``scale`` multiplies positions (e.g. 0.01 for centimetre files). Raises ValueError naming a
    joint the mapping needs but the file lacks.
    """
    from .skeletons import H36M_17

    clip = clip_or_path if isinstance(clip_or_path, BVHClip) else read_bvh(clip_or_path)
    mapping = CMU_TO_H36M if mapping is None else mapping
    P = bvh_forward_kinematics(clip)
    out = np.empty((clip.num_frames, 17, 3))
    for j, name in enumerate(H36M_17.names):
        idx = []
        for n in mapping[name]:
            if n not in clip.names:
                raise ValueError(f"mapping: joint {n!r} (for {name}) is not in the BVH file")
            idx.append(clip.names.index(n))
        out[:, j] = P[:, idx].mean(1)
    out *= scale
    return out @ Y_UP_TO_Z_UP.T if z_up else out
