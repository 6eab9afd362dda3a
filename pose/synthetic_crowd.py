"""Synthetic multi-person scenes with ground-truth identities (extends :mod:`pose.synthetic`).

:func:`make_crowd_scene` makes ``N`` people (different heights and proportions,
:func:`pose.motion.make_subject`) walking circles that cross each other around the origin, filmed
by a :func:`pose.synthetic.make_people_rig` rig with the detector model of :mod:`pose.noise`, and
then does what a multi-person detector does to them:

- people **enter and leave** (each person after the first two is present over a random interval);
- **occlusion**: a joint of a person that falls inside the (slightly shrunk) image box of a
  person nearer the camera is missing; a person with fewer than ``min_joints`` visible joints in
  a view is not detected there;
- **false detections**: plausible skeletons (another frame's projection of someone, moved to a
  random place in the image) with identity ``-1``;
- **slot order**: shuffled in every camera-frame (``shuffle=True``), or a per-camera detector ID
  order in which two people's IDs swap with probability ``id_swap_rate`` per camera-frame.

Units: metres, z up; pixels in OpenCV's convention (no lens distortion). Deterministic in ``seed``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from geometry.synthetic import Rig

from .motion import make_motion, make_subject
from .noise import DetectorNoise, apply_detector_noise
from .skeletons import H36M_17, Skeleton
from .synthetic import make_people_rig, project_rig

__all__ = ["CrowdScene", "make_crowd_scene", "assignment_accuracy"]


@dataclass(frozen=True)
class CrowdScene:
    """A synthetic crowd filmed by ``C`` cameras over ``T`` frames (``N`` people, ``J = 17``).

    ``x (C,T,P,J,2)`` detections in px (NaN where a slot or joint is empty; ``P`` = most
    detections in any camera-frame); ``confidence (C,T,P,J)`` (0 where missing);
    ``identity (C,T,P)`` int64 true person index ``0..N-1`` of each slot (``-1`` for false
    detections and empty slots); ``points3d (T,N,J,3)`` true joints (metres, z up; defined in
    every frame, ``present`` says when the person is in the scene); ``present (T,N)`` bool;
    ``visible (C,T,N,J)`` bool: a true person's joint was detected; ``rig`` (true ``K, R, t``,
    ``image_size``); ``image_size (width, height)``; ``false_detection (C,T,P)`` bool;
    ``skeleton``; ``fps``; ``noise`` (the detector model applied to every person).
    """

    x: np.ndarray
    confidence: np.ndarray
    identity: np.ndarray
    points3d: np.ndarray
    present: np.ndarray
    visible: np.ndarray
    false_detection: np.ndarray
    rig: Rig
    image_size: tuple
    skeleton: Skeleton
    fps: float
    noise: DetectorNoise

    @property
    def num_people(self) -> int:
        return int(self.points3d.shape[1])

    @property
    def num_frames(self) -> int:
        return int(self.points3d.shape[0])


def _check_rate(name, v):
    v = float(v)
    if not np.isfinite(v) or not 0.0 <= v <= 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1], got {v}")
    return v


def _walkers(num_people, T, fps, spread, rng, seed_seq):
    """``(T, N, 17, 3)`` people walking circles around random centres within ``spread`` m."""
    seeds = seed_seq.generate_state(2 * num_people)
    X = np.empty((T, num_people, 17, 3))
    centres = []
    for n in range(num_people):
        for _ in range(100):            # keep starting points at least 0.6 m apart
            c = rng.uniform(-spread, spread, 2)
            if all(np.linalg.norm(c - d) > 0.6 for d in centres):
                break
        centres.append(c)
        off = make_subject(seed=int(seeds[2 * n]))
        Xn = make_motion("walk", T, fps=fps, offsets=off, seed=int(seeds[2 * n + 1]))
        mid = 0.5 * (Xn[:, 0, :2].max(0) + Xn[:, 0, :2].min(0))
        X[:, n] = Xn + np.array([*(c - mid), 0.0])
    return X


def _presence(num_people, T, rng):
    """``(T, N)`` bool: the first two people stay; others enter late and/or leave early."""
    present = np.ones((T, num_people), bool)
    for n in range(2, num_people):
        if rng.random() < 0.6:
            present[: int(rng.uniform(0.05, 0.3) * T), n] = False
        if rng.random() < 0.6:
            present[int(rng.uniform(0.7, 0.95) * T):, n] = False
    return present


def _occlude(x_clean, depth, visible, shrink=0.15):
    """Hide joints inside the image box of a person nearer the camera (in place on ``visible``).

    ``x_clean (C,T,N,J,2)``, ``depth (C,T,N,J)``, ``visible (C,T,N,J)`` bool."""
    C, T, N = x_clean.shape[:3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)             # people out of view
        lo = np.nanmin(np.where(visible[..., None], x_clean, np.nan), axis=3)   # (C,T,N,2)
        hi = np.nanmax(np.where(visible[..., None], x_clean, np.nan), axis=3)
        d = np.nanmedian(np.where(visible, depth, np.nan), axis=3)                # (C,T,N)
    pad = shrink * (hi - lo)
    lo, hi = lo + pad, hi - pad
    hidden = np.zeros_like(visible)
    for q in range(N):
        for p in range(N):
            if p == q:
                continue
            nearer = (d[:, :, p] < d[:, :, q])[..., None]                        # (C,T,1)
            inside = np.all((x_clean[:, :, q] >= lo[:, :, p, None]) &
                            (x_clean[:, :, q] <= hi[:, :, p, None]), axis=-1)     # (C,T,J)
            hidden[:, :, q] |= nearer & inside
    visible &= ~hidden


def make_crowd_scene(num_people: int = 3, num_cameras: int = 4, num_frames: int = 600, *,
                     noise_px: float = 2.0, outlier_rate: float = 0.1,
                     false_detection_rate: float = 0.05, id_swap_rate: float = 0.01,
                     shuffle: bool = True, missing_rate: float = 0.02, min_joints: int = 4,
                     spread: float = 1.0, rig: Rig | None = None, fps: float = 50.0,
                     seed: int = 0) -> CrowdScene:
    """Several people walking among each other, filmed by a static rig, as a detector sees them.

    Args:
        num_people: ``N`` people (1–10; the issue's scenes use 2–6). num_cameras: ``C`` (ignored
            when ``rig`` is given). num_frames: ``T``.
        noise_px: Gaussian detector noise (px). outlier_rate: fraction of joints moved 20–150 px
            (:class:`pose.noise.DetectorNoise`). missing_rate: fraction of joints dropped.
        false_detection_rate: false detections per true detection (each camera-frame with ``n``
            people gets one with probability ``min(1, rate · n)``), identity ``-1``.
        id_swap_rate: with ``shuffle=False``, probability per camera-frame that two people's
            detector IDs (slot order) swap from then on. shuffle: shuffle the slots in every
            camera-frame (the default; the slot order then carries no identity at all).
        min_joints: a person with fewer visible joints in a view is not detected there.
        spread: people's circle centres are uniform in ``[-spread, spread]²`` m.
        rig: cameras (default :func:`pose.synthetic.make_people_rig` ``("h36m", num_cameras)``).
        fps: frame rate of the walks. seed: everything is deterministic given it.
    Returns:
        :class:`CrowdScene`.
    """
    N, T = int(num_people), int(num_frames)
    if not 1 <= N <= 10:
        raise ValueError(f"num_people: expected 1..10, got {num_people}")
    if T < 1:
        raise ValueError(f"num_frames: expected >= 1, got {num_frames}")
    if rig is None and int(num_cameras) < 2:
        raise ValueError(f"num_cameras: expected >= 2, got {num_cameras}")
    outlier_rate = _check_rate("outlier_rate", outlier_rate)
    false_detection_rate = _check_rate("false_detection_rate", false_detection_rate)
    id_swap_rate = _check_rate("id_swap_rate", id_swap_rate)
    missing_rate = _check_rate("missing_rate", missing_rate)
    if not np.isfinite(noise_px) or noise_px < 0:
        raise ValueError(f"noise_px: expected a finite number >= 0, got {noise_px}")
    ss = np.random.SeedSequence(seed)
    s_walk, s_noise, s_rest = ss.spawn(3)
    rng = np.random.default_rng(s_rest)
    rig = make_people_rig("h36m", int(num_cameras), seed=seed) if rig is None else rig
    C = rig.num_cameras
    X = _walkers(N, T, fps, spread, rng, s_walk)                      # (T,N,J,3)
    present = _presence(N, T, rng)
    x_clean, depth = project_rig(rig, X)                              # (C,T,N,J,2), (C,T,N,J)
    noise = DetectorNoise(sigma_px=noise_px, outlier_ratio=outlier_rate,
                          missing_ratio=missing_rate, swap_ratio=0.0)
    sk = H36M_17
    J = sk.num_joints
    flat = x_clean.transpose(0, 2, 1, 3, 4).reshape(C, N * T, J, 2)
    det = apply_detector_noise(flat, noise, image_size=rig.image_size, symmetry=sk.symmetry,
                               depth=depth.transpose(0, 2, 1, 3).reshape(C, N * T, J),
                               seed=int(s_noise.generate_state(1)[0]))
    xn = det.x.reshape(C, N, T, J, 2).transpose(0, 2, 1, 3, 4)
    conf = det.confidence.reshape(C, N, T, J).transpose(0, 2, 1, 3)
    visible = det.visible.reshape(C, N, T, J).transpose(0, 2, 1, 3) & present[None, :, :, None]
    in_view = np.isfinite(x_clean).all(-1) & (depth > 0) & present[None, :, :, None]
    _occlude(x_clean, depth, in_view)
    visible &= in_view
    detected = visible.sum(-1) >= min_joints                          # (C,T,N)
    visible &= detected[..., None]

    # false detections: someone's projection from another frame and camera, moved in the image
    W, H = rig.image_size
    n_true = detected.sum(-1)                                         # (C,T)
    fd = rng.random((C, T)) < np.minimum(1.0, false_detection_rate * np.maximum(n_true, 1))
    src = np.argwhere(detected)
    P = int((n_true + fd).max()) if T else 0
    P = max(P, 1)
    out_x = np.full((C, T, P, J, 2), np.nan)
    out_c = np.zeros((C, T, P, J))
    ident = np.full((C, T, P), -1, np.int64)
    false = np.zeros((C, T, P), bool)
    ids = np.tile(np.arange(N), (C, 1))                               # per-camera detector order
    for c in range(C):
        for t in range(T):
            if not shuffle and id_swap_rate > 0 and N > 1 and rng.random() < id_swap_rate:
                i, j = rng.choice(N, 2, replace=False)
                ids[c, [i, j]] = ids[c, [j, i]]
            people = [n for n in ids[c] if detected[c, t, n]]
            k = len(people)
            order = rng.permutation(k + int(fd[c, t])) if shuffle else np.arange(k + int(fd[c, t]))
            for s, n in enumerate(people):
                slot = order[s]
                v = visible[c, t, n]
                out_x[c, t, slot][v] = xn[c, t, n][v]
                out_c[c, t, slot][v] = conf[c, t, n][v]
                ident[c, t, slot] = n
            if fd[c, t] and len(src):
                cc, tt, nn = src[rng.integers(len(src))]
                pose2d = x_clean[cc, tt, nn]
                shift = rng.uniform((0, 0), (W, H)) - np.nanmean(pose2d, 0)
                fx = pose2d + shift + rng.normal(0, noise_px, pose2d.shape)
                inside = np.all((fx >= 0) & (fx < (W, H)), -1)
                keep = (rng.random(J) < rng.uniform(0.5, 1.0)) & inside
                slot = order[k]
                out_x[c, t, slot][keep] = fx[keep]
                out_c[c, t, slot][keep] = rng.uniform(0.2, 0.7, int(keep.sum()))
                false[c, t, slot] = keep.any()
    return CrowdScene(x=out_x, confidence=out_c, identity=ident, points3d=X, present=present,
                      visible=visible, false_detection=false, rig=rig,
                      image_size=tuple(rig.image_size), skeleton=sk, fps=float(fps), noise=noise)


def assignment_accuracy(identity, truth, false_detection=None) -> float:
    """Fraction (0–1) of detections given the right person, invariant to how people are numbered.

    ``identity``, ``truth`` ``(C, T, P)`` int (``-1`` = none). Estimated people are matched to
    true ones by the Hungarian assignment maximising agreement; a true detection counts when its
    matched person is its true one, a false detection (``truth == -1`` in a filled slot, given by
    ``false_detection (C, T, P)`` bool) when it is labelled ``-1``. Empty slots do not count."""
    from scipy.optimize import linear_sum_assignment
    identity, truth = np.asarray(identity), np.asarray(truth)
    if identity.shape != truth.shape:
        raise ValueError(f"identity: expected shape {truth.shape}, got shape {identity.shape}")
    fd = np.zeros(truth.shape, bool) if false_detection is None else np.asarray(false_detection)
    real = truth >= 0
    total = int(real.sum() + fd.sum())
    if total == 0:
        return 1.0
    ne = int(identity.max()) + 1 if identity.size and identity.max() >= 0 else 0
    nt = int(truth.max()) + 1 if real.any() else 0
    agree = np.zeros((max(ne, 1), max(nt, 1)))
    m = real & (identity >= 0)
    np.add.at(agree, (identity[m], truth[m]), 1)
    r, c = linear_sum_assignment(-agree)
    right = agree[r, c].sum() + int((fd & (identity < 0)).sum())
    return float(right / total)
