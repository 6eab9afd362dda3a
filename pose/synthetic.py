"""Synthetic people filmed by a camera rig: the default data for demos, tests and training.

:func:`make_people` makes a dataset of several subjects (different heights and proportions,
:func:`pose.motion.make_subject`) each doing several procedural motions
(:data:`pose.motion.MOTIONS`), concatenated into one sequence of ``T`` frames, filmed by a
:class:`geometry.synthetic.Rig` (default: a Human3.6M-like 4-camera ring) with optional OpenCV
lens distortion, and corrupted by the detector model of :mod:`pose.noise`.

Rigs: :func:`make_people_rig` gives the ring (``"h36m"``), random rigs (``"random"``: focal
1100–1700 px, 1000×1000) and portrait random rigs (``"portrait"``: 1088×1920, like phones).
Units: metres, z up; pixels in OpenCV's convention.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from geometry.camera import project_points
from geometry.synthetic import Rig, make_random_rig, make_ring_rig

from .motion import MOTIONS, make_motion, make_subject
from .noise import DetectorNoise, apply_detector_noise
from .skeletons import H36M_17, Skeleton, get_skeleton
from .skeletons import bone_lengths as _bone_lengths

__all__ = ["SyntheticPeople", "make_people", "film_motion", "make_people_rig", "random_distortion",
           "project_rig"]


@dataclass(frozen=True)
class SyntheticPeople:
    """A synthetic multi-camera dataset (``C`` cameras, ``T`` frames, ``J = 17`` H36M joints).

    Fields: ``X (T,J,3)`` metres, z up; ``rig`` (``K, R, t``, ``image_size``); ``dist (C,5)``
    OpenCV distortion (zeros when none); ``x_clean (C,T,J,2)`` exact (distorted) projections;
    ``x (C,T,J,2)`` detections (NaN where missing); ``confidence (C,T,J)`` (0 where missing);
    ``visible``, ``outlier``, ``swapped`` ``(C,T,J)`` bool; ``time_offset (C,)`` frames;
    ``subject``, ``motion``, ``clip`` ``(T,)`` int; ``motion_names``; ``bone_lengths (S,B)`` per
    subject (``(1, B)`` for :func:`film_motion`); ``skeleton``; ``fps``; ``noise`` (the model).
    """

    X: np.ndarray
    rig: Rig
    dist: np.ndarray
    x_clean: np.ndarray
    x: np.ndarray
    confidence: np.ndarray
    visible: np.ndarray
    outlier: np.ndarray
    swapped: np.ndarray
    time_offset: np.ndarray
    subject: np.ndarray
    motion: np.ndarray
    clip: np.ndarray
    motion_names: tuple
    bone_lengths: np.ndarray
    skeleton: Skeleton
    fps: float
    noise: DetectorNoise

    @property
    def keypoints(self) -> np.ndarray:
        """Detections as OpenPose-style ``(C, T, J, 3)`` ``[u, v, confidence]`` (0 if missing)."""
        kp = np.concatenate([np.nan_to_num(self.x, nan=0.0), self.confidence[..., None]], -1)
        kp[~self.visible] = 0.0
        return kp

    @property
    def num_frames(self) -> int:
        return int(self.X.shape[0])


def random_distortion(num_cameras: int, *, strength: float = 1.0, seed: int = 0) -> np.ndarray:
    """OpenCV ``(k1, k2, p1, p2, k3)`` ``(C, 5)`` of typical lenses: ``k1 ∈ ±0.15·strength``,
    ``k2 ∈ ±0.05·strength``, tangential ``±0.002·strength``, ``k3 = 0``."""
    rng = np.random.default_rng(seed)
    d = np.zeros((num_cameras, 5))
    d[:, 0] = rng.uniform(-0.15, 0.15, num_cameras) * strength
    d[:, 1] = rng.uniform(-0.05, 0.05, num_cameras) * strength
    d[:, 2:4] = rng.uniform(-0.002, 0.002, (num_cameras, 2)) * strength
    return d


def make_people_rig(kind: str = "h36m", num_cameras: int = 4, *, seed: int = 0) -> Rig:
    """A rig for filming people around the origin.

    ``"h36m"``: 4-camera ring like Human3.6M (radius 5 m, 1.6 m high, f = 1150 px, 1000×1000);
    ``"random"``: random azimuths, 4.5–7 m away, 0.5–2.5 m high, f ∈ [1100, 1700] px, 1000×1000;
    ``"portrait"``: the same with 1088×1920 (width × height) images.
    """
    if kind == "h36m":
        return make_ring_rig(num_cameras, seed=seed)
    if kind == "random":
        return make_random_rig(num_cameras, distance=(4.5, 7.0), seed=seed)
    if kind == "portrait":
        return make_random_rig(num_cameras, distance=(4.5, 7.0), image_size=(1088, 1920),
                               seed=seed)
    raise ValueError(f"kind: expected 'h36m', 'random' or 'portrait', got {kind!r}")


def project_rig(rig: Rig, X, dist=None):
    """World points ``X (..., J, 3)`` → pixels ``(C, ..., J, 2)`` and depths ``(C, ..., J)``
    in every camera of ``rig``, with optional distortion ``dist (C, 4|5)``."""
    X = np.asarray(X, dtype=np.float64)
    extra = (1,) * (X.ndim - 2)
    C = rig.num_cameras
    K = rig.K.reshape((C,) + extra + (3, 3))
    R = rig.R.reshape((C,) + extra + (3, 3))
    t = rig.t.reshape((C,) + extra + (3,))
    d = None if dist is None else np.asarray(dist, np.float64).reshape((C,) + extra + (-1,))
    return project_points(X[None], K, R, t, d, return_depth=True)


def make_people(num_subjects: int = 3, motions=MOTIONS, frames_per_clip: int = 100, *,
                rig: Rig | None = None, dist=None, noise: DetectorNoise | None = None,
                fps: float = 50.0, heights=None, seed: int = 0) -> SyntheticPeople:
    """Subjects × motions clips filmed by ``rig`` with detector noise.

    Args:
        num_subjects: people with different anthropometry (``heights`` (m) or random).
        motions: names from :data:`pose.motion.MOTIONS`; every subject does each once.
        frames_per_clip: frames per (subject, motion) clip; ``T = S · M · frames_per_clip``,
            subject-major then motion.
        rig: cameras (default :func:`make_people_rig` ``("h36m")``). dist: ``(C, 4|5)`` OpenCV
            distortion applied in projection (default none).
        noise: :class:`pose.noise.DetectorNoise` (default: its defaults: 2 px, 2 % outliers,
            2 % missing, 0.5 % swaps, no time offsets).
        fps: frame rate of the motions. seed: everything is deterministic given it.
    """
    if num_subjects < 1 or frames_per_clip < 1 or len(motions) < 1:
        raise ValueError(f"num_subjects/frames_per_clip/motions: expected >= 1, got "
                         f"{num_subjects}, {frames_per_clip}, {len(motions)}")
    for m in motions:
        if m not in MOTIONS:
            raise ValueError(f"motions: {m!r} is not one of {MOTIONS}")
    ss = np.random.SeedSequence(seed)
    seeds = ss.generate_state(2 + num_subjects * (1 + len(motions)))
    Xs, subj, mot, clip, bl = [], [], [], [], []
    k = 2
    for s in range(num_subjects):
        h = None if heights is None else heights[s]
        off = make_subject(h, seed=int(seeds[k]))
        k += 1
        for mi, m in enumerate(motions):
            Xs.append(make_motion(m, frames_per_clip, fps=fps, offsets=off, seed=int(seeds[k])))
            k += 1
            subj.append(np.full(frames_per_clip, s))
            mot.append(np.full(frames_per_clip, MOTIONS.index(m)))
            clip.append(np.full(frames_per_clip, len(clip)))
        bl.append(_bone_lengths(Xs[-1][0], H36M_17))
    return film_motion(np.concatenate(Xs), rig, dist=dist, noise=noise, fps=fps,
                       clip=np.concatenate(clip), subject=np.concatenate(subj),
                       motion=np.concatenate(mot), bone_lengths=np.stack(bl), seed=int(seeds[0]))


def film_motion(X, rig: Rig | None = None, *, dist=None, noise: DetectorNoise | None = None,
                fps: float = 50.0, center: bool = False, skeleton=H36M_17, clip=None,
                subject=None, motion=None, bone_lengths=None, seed: int = 0) -> SyntheticPeople:
    """Film any motion ``X (T, J, 3)`` (metres, z up; e.g. :func:`pose.bvh.bvh_to_h36m`) with
    ``rig`` (default: the Human3.6M-like ring), optional ``dist (C, 4|5)``, and detector
    ``noise`` (default :class:`DetectorNoise` ()).

    ``center`` moves the mean root position (joint 0) onto the origin in x and y, where the
    default rigs look. ``clip``, ``subject``, ``motion`` ``(T,)`` label the frames (default 0;
    ``clip`` must be non-decreasing); ``bone_lengths`` defaults to those of the first frame.
    """
    sk = get_skeleton(skeleton)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3 or X.shape[1:] != (sk.num_joints, 3):
        raise ValueError(f"X: expected shape (T, {sk.num_joints}, 3), got shape {X.shape}")
    T = X.shape[0]
    if center:
        X = X - np.concatenate([X[:, 0, :2].mean(0), [0.0]])
    rig = make_people_rig("h36m") if rig is None else rig
    noise = DetectorNoise() if noise is None else noise
    C = rig.num_cameras
    dist = np.zeros((C, 5)) if dist is None else np.asarray(dist, dtype=np.float64)
    if dist.shape not in ((C, 4), (C, 5)):
        raise ValueError(f"dist: expected shape ({C}, 4) or ({C}, 5), got shape {dist.shape}")
    labels = []
    for name, v in (("clip", clip), ("subject", subject), ("motion", motion)):
        v = np.zeros(T, np.int64) if v is None else np.asarray(v, np.int64)
        if v.shape != (T,):
            raise ValueError(f"{name}: expected shape ({T},), got shape {v.shape}")
        labels.append(v)
    if np.any(np.diff(labels[0]) < 0):
        raise ValueError("clip: expected non-decreasing clip labels (clips are contiguous)")
    bl = (_bone_lengths(X[:1], sk) if bone_lengths is None
          else np.asarray(bone_lengths, np.float64))
    x_clean, depth = project_rig(rig, X, dist if np.any(dist) else None)
    det = apply_detector_noise(x_clean, noise, image_size=rig.image_size,
                               symmetry=sk.symmetry, depth=depth, clip_id=labels[0], seed=seed)
    return SyntheticPeople(X=X, rig=rig, dist=dist, x_clean=x_clean, x=det.x,
                           confidence=det.confidence, visible=det.visible, outlier=det.outlier,
                           swapped=det.swapped, time_offset=det.time_offset,
                           subject=labels[1], motion=labels[2], clip=labels[0],
                           motion_names=MOTIONS, bone_lengths=bl, skeleton=sk,
                           fps=float(fps), noise=noise)
