"""Multi-view synchronisation pretext (Jenni & Favaro, ACCV 2020), CPU-sized.

A siamese network sees two views of a multi-camera rig and classifies the pair twice:

- *synchronised*: both images were taken at the same instant (by two different cameras) vs a
  nearby instant (``min_offset``–``max_offset`` frames apart, same clip, different cameras).
  Only synchronised views are related by a rigid transformation, so telling them apart from
  views a few frames apart needs the 3D structure of the pose, not its appearance.
- *flipped*: one of the two images was mirrored horizontally (left–right) vs neither.

The features learned this way initialise a 3D pose network that is then fine-tuned on a small
label budget (:func:`finetune_pose`), to be compared with the same network from scratch.

Data layout: images of every view ``(C, T, 3, S, S)`` uint8 (camera, frame), pairs are indices
into it (:class:`PairSet`). Units of the 3D targets: root-relative, scale-normalised camera-frame
poses (:func:`learn.data.normalize_scale`: RMS joint distance from the pelvis = 1).

- :func:`sample_pairs`: balanced pairs with their labels (NumPy, seeded).
- :func:`flip_images`, :func:`gather_pairs`: the two image batches of a set of pairs (torch).
- :class:`SyncNet`: shared :class:`learn.heatmap_net.Backbone`, an embedding, two pair heads.
- :func:`pretext_loss`, :func:`train_pretext`, :func:`pretext_accuracy`.
- :func:`transfer_backbone`, :func:`finetune_pose`, :func:`evaluate_pose`,
  :func:`choose_labelled`: the fine-tuning side.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as Fn

from pose.metrics import n_mpjpe, pa_mpjpe

from .heatmap_net import Backbone, HeatmapNet, image_tensor
from .losses import beta_for_labels, weighted_smooth_l1
from .train import predict, seed_everything, to_tensor, train_loop

__all__ = ["PairSet", "sample_pairs", "flip_images", "gather_pairs", "SyncNet", "pretext_loss",
           "train_pretext", "pretext_accuracy", "transfer_backbone", "choose_labelled",
           "finetune_pose", "evaluate_pose"]


@dataclass(frozen=True)
class PairSet:
    """``N`` pairs of views: view a = (``cam_a``, ``frame_a``), view b = (``cam_b``,
    ``frame_b``), all ``(N,)`` int64 (``cam_a != cam_b`` always); ``sync (N,)`` bool (same
    frame); ``flip_a``, ``flip_b`` ``(N,)`` bool (that view is mirrored; never both).
    ``offset = frame_b − frame_a`` (0 for synchronised pairs)."""

    cam_a: np.ndarray
    frame_a: np.ndarray
    cam_b: np.ndarray
    frame_b: np.ndarray
    sync: np.ndarray
    flip_a: np.ndarray
    flip_b: np.ndarray

    @property
    def flipped(self) -> np.ndarray:
        """``(N,)`` bool: one of the two views is mirrored (the flip label)."""
        return self.flip_a | self.flip_b

    @property
    def offset(self) -> np.ndarray:
        return self.frame_b - self.frame_a

    def __len__(self) -> int:
        return int(self.cam_a.shape[0])

    def tensors(self, device=None) -> dict:
        """The fields as a dict of ``(N,)`` tensors (int64 indices, float labels) for
        :func:`learn.train.train_loop`."""
        out = {k: to_tensor(getattr(self, k), device, torch.int64)
               for k in ("cam_a", "frame_a", "cam_b", "frame_b")}
        for k in ("sync", "flip_a", "flip_b"):
            out[k] = to_tensor(getattr(self, k), device, torch.float32)
        return out


def sample_pairs(clip, num_pairs: int, *, num_cameras: int, frames=None, min_offset: int = 4,
                 max_offset: int = 12, sync_ratio: float = 0.5, flip_ratio: float = 0.5,
                 seed: int = 0) -> PairSet:
    """Sample ``num_pairs`` labelled pairs of views.

    Args:
        clip: ``(T,)`` clip id of every frame (contiguous clips); unsynchronised partners are
            taken inside the anchor's clip only.
        num_cameras: ``C ≥ 2``; the two views of a pair always come from different cameras.
        frames: ``(T,)`` bool mask or index array of the frames allowed for both views (e.g.
            the training subjects); default all.
        min_offset, max_offset: ``1 ≤ min ≤ max`` frames between the two views of an
            unsynchronised pair (either direction).
        sync_ratio: fraction of synchronised pairs; flip_ratio: fraction of pairs with one
            (random) view mirrored, drawn independently of ``sync``.
        seed: the same seed gives the same pairs.
    Returns:
        :class:`PairSet`. Anchors without any valid partner at the allowed offsets (clips
        shorter than ``min_offset + 1``) are never drawn.
    """
    clip = np.asarray(clip)
    if clip.ndim != 1 or clip.shape[0] < 1:
        raise ValueError(f"clip: expected shape (T,) with T >= 1, got shape {clip.shape}")
    T = clip.shape[0]
    if num_cameras < 2:
        raise ValueError(f"num_cameras: expected >= 2 (pairs of different views), got "
                         f"{num_cameras}")
    if not 1 <= min_offset <= max_offset:
        raise ValueError(f"min_offset/max_offset: expected 1 <= min <= max, got {min_offset}, "
                         f"{max_offset}")
    if num_pairs < 1:
        raise ValueError(f"num_pairs: expected >= 1, got {num_pairs}")
    for name, v in (("sync_ratio", sync_ratio), ("flip_ratio", flip_ratio)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name}: expected a fraction in [0, 1], got {v}")
    allowed = np.ones(T, bool)
    if frames is not None:
        f = np.asarray(frames)
        if f.dtype == bool:
            if f.shape != (T,):
                raise ValueError(f"frames: expected a bool mask of shape ({T},), got shape "
                                 f"{f.shape}")
            allowed = f.copy()
        else:
            if f.ndim != 1 or (f.size and (f.min() < 0 or f.max() >= T)):
                raise ValueError(f"frames: expected indices in [0, {T}) shaped (n,), got shape "
                                 f"{f.shape}")
            allowed = np.zeros(T, bool)
            allowed[f.astype(np.int64)] = True
    k = np.arange(min_offset, max_offset + 1)
    offs = np.concatenate([-k[::-1], k])                                   # (2K,)
    idx = np.flatnonzero(allowed)
    cand = idx[:, None] + offs[None, :]                                    # (n, 2K)
    inside = (cand >= 0) & (cand < T)
    cc = np.clip(cand, 0, T - 1)
    ok = inside & allowed[cc] & (clip[cc] == clip[idx][:, None])
    anchors_ok = ok.any(1)
    if not anchors_ok.any():
        raise ValueError(f"frames/clip: no frame has a partner {min_offset}-{max_offset} frames "
                         "away in its clip")
    anchors, ok = idx[anchors_ok], ok[anchors_ok]
    rng = np.random.default_rng(seed)
    a = rng.integers(0, len(anchors), num_pairs)
    frame_a = anchors[a]
    sync = rng.random(num_pairs) < sync_ratio
    # a uniformly chosen valid offset per anchor: argmax of random keys over the valid ones
    keys = np.where(ok[a], rng.random((num_pairs, len(offs))), -1.0)
    frame_b = np.where(sync, frame_a, frame_a + offs[keys.argmax(1)])
    cam_a = rng.integers(0, num_cameras, num_pairs)
    cam_b = (cam_a + rng.integers(1, num_cameras, num_pairs)) % num_cameras
    flip = rng.random(num_pairs) < flip_ratio
    which = rng.random(num_pairs) < 0.5
    return PairSet(cam_a=cam_a.astype(np.int64), frame_a=frame_a.astype(np.int64),
                   cam_b=cam_b.astype(np.int64), frame_b=frame_b.astype(np.int64), sync=sync,
                   flip_a=flip & which, flip_b=flip & ~which)


def flip_images(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror horizontally (along the last, width axis) the images ``(B, ch, H, W)`` where
    ``mask (B,)`` (bool or 0/1) is set; the others are returned unchanged."""
    if images.ndim != 4:
        raise ValueError(f"images: expected shape (B, ch, H, W), got {tuple(images.shape)}")
    if mask.shape != images.shape[:1]:
        raise ValueError(f"mask: expected shape ({images.shape[0]},), got {tuple(mask.shape)}")
    m = mask.bool().reshape(-1, 1, 1, 1)
    return torch.where(m, images.flip(-1), images)


def gather_pairs(images: torch.Tensor, batch: dict):
    """The two image batches ``(B, 3, S, S)`` of the pairs in ``batch`` (a slice of
    :meth:`PairSet.tensors`) from ``images (C, T, 3, S, S)``, mirrored where flagged."""
    if images.ndim != 5:
        raise ValueError(f"images: expected shape (C, T, 3, S, S), got {tuple(images.shape)}")
    xa = flip_images(images[batch["cam_a"], batch["frame_a"]], batch["flip_a"])
    xb = flip_images(images[batch["cam_b"], batch["frame_b"]], batch["flip_b"])
    return xa, xb


class SyncNet(nn.Module):
    """Siamese pair classifier on a shared :class:`learn.heatmap_net.Backbone`.

    Each view ``(B, 3, S, S)`` (uint8, or floats from :func:`image_tensor`) → backbone features
    ``(B, width, S/4, S/4)`` with the same weights for both views. The two feature maps are
    fused symmetrically and position by position, ``[f_a + f_b, |f_a − f_b|]`` ``(B, 2·width,
    S/4, S/4)``, so the head can compare the same image rows of both views (the rig's cameras
    share the vertical: synchronised views show every joint at about the same crop height).
    A fusion head (two stride-2 conv blocks, a linear layer) gives a pair embedding and two
    linear heads the logits ``(B, 2)``: column 0 synchronised, column 1 flipped (one view
    mirrored). Swapping the two views gives the same logits.

    Args:
        width, blocks: backbone size (as :class:`learn.heatmap_net.HeatmapNet`, so its backbone
            transfers). embed: pair-embedding size. size: input side ``S`` (multiple of 16).
    """

    def __init__(self, width: int = 32, blocks: int = 2, embed: int = 128, size: int = 64):
        super().__init__()
        if size % 16:
            raise ValueError(f"size: expected a multiple of 16, got {size}")
        self.size = size
        self.backbone = Backbone(width, blocks)
        w2 = 2 * width

        def down(cin, cout):
            return [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(cout), nn.ReLU()]
        self.fuse = nn.Sequential(*down(w2, w2), *down(w2, w2), nn.Flatten(),
                                  nn.Linear(w2 * (size // 16) ** 2, embed),
                                  nn.BatchNorm1d(embed), nn.ReLU())
        rows = size // 4
        self.fuse_rows = nn.Sequential(nn.Conv1d(w2, w2, 3, padding=1, bias=False),
                                       nn.BatchNorm1d(w2), nn.ReLU(), nn.Flatten(),
                                       nn.Linear(w2 * rows, embed), nn.BatchNorm1d(embed),
                                       nn.ReLU())
        self.heads = nn.Linear(2 * embed, 2)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` → backbone features ``(B, width, S/4, S/4)``."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, self.size, self.size):
            raise ValueError(f"x: expected shape (B, 3, {self.size}, {self.size}), got "
                             f"{tuple(x.shape)}")
        return self.backbone(image_tensor(x) if x.dtype == torch.uint8 else x)

    def forward(self, xa: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
        """Views ``xa, xb (B, 3, S, S)`` → logits ``(B, 2)`` (sync, flip)."""
        if xa.shape != xb.shape:
            raise ValueError(f"xb: expected the shape of xa {tuple(xa.shape)}, got "
                             f"{tuple(xb.shape)}")
        B = xa.shape[0]
        f = self.features(torch.cat([xa, xb], 0))       # one batch: shared BN statistics
        fa, fb = f[:B], f[B:]
        ra, rb = fa.mean(-1), fb.mean(-1)                # row profiles (B, width, S/4)
        z = torch.cat([self.fuse(torch.cat([fa + fb, (fa - fb).abs()], 1)),
                       self.fuse_rows(torch.cat([ra + rb, (ra - rb).abs()], 1))], -1)
        return self.heads(z)


def pretext_loss(logits: torch.Tensor, sync: torch.Tensor, flipped: torch.Tensor,
                 flip_weight: float = 1.0) -> torch.Tensor:
    """Binary cross-entropy of the sync logit ``logits[:, 0]`` against ``sync (B,)`` plus
    ``flip_weight`` × that of ``logits[:, 1]`` against ``flipped (B,)`` (labels 0/1)."""
    if logits.ndim != 2 or logits.shape[1] != 2:
        raise ValueError(f"logits: expected shape (B, 2), got {tuple(logits.shape)}")
    B = logits.shape[0]
    for name, v in (("sync", sync), ("flipped", flipped)):
        if tuple(v.shape) != (B,):
            raise ValueError(f"{name}: expected shape ({B},), got {tuple(v.shape)}")
    bce = Fn.binary_cross_entropy_with_logits
    return bce(logits[:, 0], sync.float()) + flip_weight * bce(logits[:, 1], flipped.float())


def train_pretext(model: SyncNet, images, pairs: PairSet, *, epochs: int = 1,
                  batch_size: int = 32, lr: float = 2e-3, max_steps: int | None = None,
                  seed: int = 0, device=None, progress: bool = True, desc: str = "sync"):
    """Train ``model`` in place on ``pairs`` of ``images (C, T, 3, S, S)`` uint8 (array or
    tensor) with :func:`pretext_loss` (Adam, cosine schedule, :func:`learn.train.train_loop`).
    Returns the :class:`learn.train.TrainHistory`."""
    imgs = _image_stack(images, device)
    if model.size != imgs.shape[-1]:
        raise ValueError(f"images: expected side {model.size} (the model's), got "
                         f"{tuple(imgs.shape)}")
    gen = seed_everything(seed)
    model.to(device)

    def loss_fn(m, b):
        xa, xb = gather_pairs(imgs, b)
        return pretext_loss(m(xa, xb), b["sync"], torch.maximum(b["flip_a"], b["flip_b"]))

    return train_loop(model, loss_fn, pairs.tensors(device), epochs=epochs,
                      batch_size=batch_size, lr=lr, generator=gen, desc=desc,
                      progress=progress, max_steps=max_steps)


@torch.no_grad()
def pretext_accuracy(model: SyncNet, images, pairs: PairSet, *, batch_size: int = 128,
                     device=None) -> dict:
    """Accuracies of the two heads on ``pairs`` (threshold 0 on the logits): ``sync``,
    ``flip``, ``sync_on_sync`` / ``sync_on_offset`` (recall of each class), ``flip_on_sync``
    (flip accuracy on the synchronised pairs) and ``num_pairs``."""
    imgs = _image_stack(images, device)
    model.eval()
    t = pairs.tensors(device)
    out = []
    for s in range(0, len(pairs), batch_size):
        b = {k: v[s:s + batch_size] for k, v in t.items()}
        out.append(model(*gather_pairs(imgs, b)).cpu())
    logits = torch.cat(out).numpy()
    ps, pf = logits[:, 0] > 0, logits[:, 1] > 0
    ok_s, ok_f = ps == pairs.sync, pf == pairs.flipped

    def mean(v):
        return float(v.mean()) if v.size else float("nan")
    return dict(sync=mean(ok_s), flip=mean(ok_f), sync_on_sync=mean(ok_s[pairs.sync]),
                sync_on_offset=mean(ok_s[~pairs.sync]), flip_on_sync=mean(ok_f[pairs.sync]),
                num_pairs=len(pairs))


def _image_stack(images, device) -> torch.Tensor:
    imgs = to_tensor(images, device, torch.uint8) if not isinstance(images, torch.Tensor) \
        else images.to(device)
    if imgs.ndim != 5 or imgs.shape[2] != 3 or imgs.shape[3] != imgs.shape[4]:
        raise ValueError(f"images: expected shape (C, T, 3, S, S), got {tuple(imgs.shape)}")
    return imgs


def transfer_backbone(pretext: SyncNet, net: HeatmapNet) -> HeatmapNet:
    """A copy of ``net`` whose backbone holds the weights of ``pretext``'s (same width/blocks
    required); its 2D/3D heads keep their own initialisation."""
    out = copy.deepcopy(net)
    try:
        out.backbone.load_state_dict(pretext.backbone.state_dict())
    except RuntimeError as e:
        raise ValueError(f"pretext: backbone does not match the pose network's ({e})") from e
    return out


def choose_labelled(candidates, budget: int, seed: int = 0) -> np.ndarray:
    """``budget`` distinct indices drawn from ``candidates (n,)`` (sorted; seeded)."""
    c = np.asarray(candidates)
    if c.ndim != 1:
        raise ValueError(f"candidates: expected shape (n,), got shape {c.shape}")
    if not 1 <= budget <= c.size:
        raise ValueError(f"budget: expected 1..{c.size}, got {budget}")
    return np.sort(np.random.default_rng(seed).choice(c, budget, replace=False))


def finetune_pose(net: HeatmapNet, images, targets, *, steps: int, batch_size: int = 32,
                  lr: float = 2e-3, freeze_backbone: bool = False, seed: int = 0,
                  device=None, progress: bool = True, desc: str = "finetune"):
    """Train ``net.forward_3d`` in place on ``images (N, 3, S, S)`` uint8 with ``targets
    (N, J, 3)`` (root-relative, scale-normalised camera-frame poses) by smooth-L1
    (:func:`learn.losses.weighted_smooth_l1`, β from :func:`learn.losses.beta_for_labels`),
    for ``steps`` optimiser steps (Adam, cosine schedule). ``freeze_backbone`` trains the 3D
    head only (a linear-probe-like check of the features). Returns the
    :class:`learn.train.TrainHistory`."""
    y = np.asarray(targets, dtype=np.float64)
    n = len(images)
    if y.shape != (n, net.num_joints, 3):
        raise ValueError(f"targets: expected shape ({n}, {net.num_joints}, 3), got shape "
                         f"{y.shape}")
    gen = seed_everything(seed)
    net.to(device)
    beta = beta_for_labels(y)
    tens = {"img": to_tensor(images, device, torch.uint8), "y": to_tensor(y, device)}
    params = [p for name, p in net.named_parameters()
              if not (freeze_backbone and name.startswith("backbone."))]

    def loss_fn(m, b):
        return weighted_smooth_l1(m.forward_3d(b["img"]), b["y"], None, beta)

    bs = min(batch_size, n)
    epochs = -(-steps // max(1, n // bs)) + 1        # train_loop drops the last partial batch
    return train_loop(net, loss_fn, tens, epochs=epochs, batch_size=bs, lr=lr,
                      generator=gen, params=params, desc=desc, progress=progress,
                      max_steps=steps)


def evaluate_pose(net: HeatmapNet, images, truth, *, device=None) -> dict:
    """N-MPJPE and PA-MPJPE (mm, means over poses) of ``net.forward_3d`` on ``images
    (N, 3, S, S)`` against ``truth (N, J, 3)`` (camera frame, metres; root joint 0)."""
    truth = np.asarray(truth, dtype=np.float64)
    if truth.shape != (len(images), net.num_joints, 3):
        raise ValueError(f"truth: expected shape ({len(images)}, {net.num_joints}, 3), got "
                         f"shape {truth.shape}")
    net.eval()
    # predict() hands float32 copies of the uint8 pixels: normalise them as image_tensor does
    pred = predict(lambda x: net.forward_3d(x / 127.5 - 1.0), images, batch_size=256,
                   device=device)
    return dict(n_mpjpe_mm=float(np.nanmean(n_mpjpe(pred, truth, root=0)) * 1000),
                pa_mpjpe_mm=float(np.nanmean(pa_mpjpe(pred, truth)) * 1000))
