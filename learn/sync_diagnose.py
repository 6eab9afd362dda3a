"""Is synchronisation decidable? Keypoint-level diagnosis of the sync pretext (NumPy + torch).

The image pretext (:mod:`learn.sync_pretext`) asks a network whether two views from two cameras
show the same instant. Before blaming the network, ask the same question of the 2D keypoints
of the two views, cropped and normalised exactly like the image crops: if a small classifier on
keypoints cannot separate synchronised from unsynchronised pairs, the pair sampler (offsets,
static frames) is the problem, not the image model.

- :func:`crop_keypoints`: 2D keypoints ``(..., J, 2)`` → crop-normalised coordinates (the pose's
  bounding-box centre at 0, divided by the crop side, as :func:`learn.render.crop_boxes`).
- :func:`offset_motion`: per frame and offset, the median 2D displacement of the crop-normalised
  keypoints between frame ``t`` and ``t + o`` (mean over cameras): how visible an offset is.
- :class:`KeypointSyncNet`: a symmetric two-stream MLP on the two views' keypoints (late
  fusion), :func:`train_keypoint_sync`, :func:`keypoint_sync_logits`.
- :func:`accuracy_by`: accuracy per group (offset bin, motion, ...).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as Fn

from .train import seed_everything

__all__ = ["crop_keypoints", "offset_motion", "KeypointSyncNet", "pair_keypoints",
           "train_keypoint_sync", "keypoint_sync_logits", "accuracy_by"]


def crop_keypoints(x, margin: float = 0.2) -> np.ndarray:
    """Pixels ``x (..., J, 2)`` (NaN = missing) → crop-normalised ``(..., J, 2)``: minus the
    centre of the pose's 2D bounding box, divided by the crop side ``(1 + 2·margin)`` × the
    larger box side (so the crop spans ``[-0.5, 0.5]``, as :func:`learn.render.crop_boxes`
    with no jitter). Missing joints stay NaN; a pose with no joint gives all NaN."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2 or x.shape[-1] != 2:
        raise ValueError(f"x: expected shape (..., J, 2), got shape {x.shape}")
    if margin < 0:
        raise ValueError(f"margin: expected >= 0, got {margin}")
    with np.errstate(invalid="ignore"), _nan_ok():
        lo, hi = np.nanmin(x, -2), np.nanmax(x, -2)
    side = np.maximum((hi - lo).max(-1), 1e-9) * (1 + 2 * margin)
    return (x - 0.5 * (lo + hi)[..., None, :]) / side[..., None, None]


class _nan_ok:
    """Silence the all-NaN-slice warnings of nanmin/nanmax/nanmean (missing poses stay NaN)."""

    def __enter__(self):
        import warnings
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


def offset_motion(kp, clip, offsets, *, vertical: bool = False) -> np.ndarray:
    """How much the pose moves between frame ``t`` and ``t + o`` in the images.

    Args:
        kp: ``(C, T, J, 2)`` crop-normalised keypoints (:func:`crop_keypoints`; NaN missing).
        clip: ``(T,)`` clip ids; partners outside ``t``'s clip count as missing.
        offsets: ``(K,)`` integer frame offsets (any sign).
        vertical: measure the vertical (image ``y``) displacement only. A turn of the whole
            body about the vertical axis moves the keypoints sideways, and is the same as
            seeing the person from another camera angle, so it cannot tell two instants apart
            across cameras; vertical displacement comes from articulation (limbs lifted,
            knees bent), which every camera sees at the same height.
    Returns:
        ``(T, K)`` median joint displacement in crop sides (robust to outlying detections),
        averaged over the cameras (NaN where ``t + o`` is outside the clip or no joint is
        seen in both frames).
    """
    kp = np.asarray(kp, dtype=np.float64)
    if kp.ndim != 4 or kp.shape[-1] != 2:
        raise ValueError(f"kp: expected shape (C, T, J, 2), got shape {kp.shape}")
    T = kp.shape[1]
    clip = np.asarray(clip)
    if clip.shape != (T,):
        raise ValueError(f"clip: expected shape ({T},), got shape {clip.shape}")
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1)
    out = np.full((T, offsets.size), np.nan)
    t = np.arange(T)
    for k, o in enumerate(offsets):
        u = t + o
        ok = (u >= 0) & (u < T)
        ok[ok] &= clip[u[ok]] == clip[t[ok]]
        if not ok.any():
            continue
        diff = kp[:, u[ok]] - kp[:, t[ok]]                                  # (C, n, J, 2)
        d = np.abs(diff[..., 1]) if vertical else np.sqrt(np.sum(diff ** 2, -1))
        with _nan_ok():
            out[ok, k] = np.nanmean(_nanmedian_last(d), 0)
    return out


def _nanmedian_last(a) -> np.ndarray:
    """``np.nanmedian(a, -1)`` by one sort (NaNs sort last), much faster on many short rows."""
    s = np.sort(a, -1)
    n = np.isfinite(s).sum(-1)
    lo = np.take_along_axis(s, np.maximum((n - 1) // 2, 0)[..., None], -1)[..., 0]
    hi = np.take_along_axis(s, np.minimum(n // 2, s.shape[-1] - 1)[..., None], -1)[..., 0]
    return np.where(n > 0, 0.5 * (lo + hi), np.nan)


def pair_keypoints(kp, pairs) -> tuple:
    """The crop-normalised keypoints ``(N, J, 2)`` of views a and b of ``pairs``
    (:class:`learn.sync_pretext.PairSet`) from ``kp (C, T, J, 2)``, mirrored (``x → −x``) where
    the pair flags a flip; NaN → 0."""
    kp = np.asarray(kp, dtype=np.float64)
    a = kp[pairs.cam_a, pairs.frame_a].copy()
    b = kp[pairs.cam_b, pairs.frame_b].copy()
    a[pairs.flip_a, :, 0] *= -1
    b[pairs.flip_b, :, 0] *= -1
    return np.nan_to_num(a), np.nan_to_num(b)


class KeypointSyncNet(nn.Module):
    """Two-stream siamese MLP on keypoints: each view ``(B, J, 2)`` → shared MLP → ``e (B, H)``;
    late fusion ``[e_a + e_b, |e_a − e_b|]`` → MLP → sync logit ``(B,)``. Symmetric in the two
    views."""

    def __init__(self, num_joints: int = 17, hidden: int = 128):
        super().__init__()
        self.num_joints = num_joints
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(2 * num_joints, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, ka: torch.Tensor, kb: torch.Tensor) -> torch.Tensor:
        for name, k in (("ka", ka), ("kb", kb)):
            if k.ndim != 3 or tuple(k.shape[1:]) != (self.num_joints, 2):
                raise ValueError(f"{name}: expected shape (B, {self.num_joints}, 2), got "
                                 f"{tuple(k.shape)}")
        ea, eb = self.enc(ka), self.enc(kb)
        return self.head(torch.cat([ea + eb, (ea - eb).abs()], -1))[:, 0]


def train_keypoint_sync(kp, pairs, *, steps: int = 1500, batch_size: int = 256,
                        lr: float = 2e-3, hidden: int = 128, seed: int = 0) -> KeypointSyncNet:
    """Train a :class:`KeypointSyncNet` on ``pairs`` of views of ``kp (C, T, J, 2)``
    (crop-normalised) with binary cross-entropy on ``pairs.sync`` (Adam, cosine schedule,
    ``steps`` mini-batches drawn with replacement). Deterministic given ``seed``."""
    gen = seed_everything(seed)
    a, b = (torch.as_tensor(v, dtype=torch.float32) for v in pair_keypoints(kp, pairs))
    y = torch.as_tensor(pairs.sync, dtype=torch.float32)
    net = KeypointSyncNet(a.shape[1], hidden)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.05)
    net.train()
    for _ in range(steps):
        i = torch.randint(0, len(y), (min(batch_size, len(y)),), generator=gen)
        loss = Fn.binary_cross_entropy_with_logits(net(a[i], b[i]), y[i])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


@torch.no_grad()
def keypoint_sync_logits(net: KeypointSyncNet, kp, pairs) -> np.ndarray:
    """Sync logits ``(N,)`` of ``pairs`` (> 0: synchronised)."""
    a, b = (torch.as_tensor(v, dtype=torch.float32) for v in pair_keypoints(kp, pairs))
    return net.eval()(a, b).numpy()


def accuracy_by(correct, groups) -> dict:
    """Mean of ``correct (N,)`` bool per value of ``groups (N,)``: ``{group: (accuracy, n)}``."""
    correct = np.asarray(correct, bool)
    groups = np.asarray(groups)
    if correct.shape != groups.shape:
        raise ValueError(f"groups: expected shape {correct.shape}, got shape {groups.shape}")
    return {g.item() if hasattr(g, "item") else g: (float(correct[groups == g].mean()),
                                                    int((groups == g).sum()))
            for g in np.unique(groups)}
