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
- :class:`SyncNet`: two-stream siamese network with late fusion (a shared
  :class:`learn.heatmap_net.Backbone` and view encoder per stream, fused embeddings, two heads).
- :func:`pretext_loss`, :func:`train_pretext` (a curriculum of pair sets, large offsets first),
  :func:`pretext_accuracy`.
- :func:`transfer_backbone`, :func:`finetune_pose`, :func:`evaluate_pose`,
  :func:`choose_labelled`: the fine-tuning side, in :mod:`learn.pose_finetune` (re-exported).

Why the pairs are drawn as they are (:mod:`learn.sync_diagnose`, README): in 4–12 frames most
motions move the joints by less than a pixel of a 64-pixel crop, and a turn of the whole body
looks exactly like another camera angle, so a classifier on perfect 2D keypoints only reaches
56 % on such pairs. Offsets are therefore kept only where the pose moves vertically by a
visible amount (``min_motion``, measured on the 2D detections, no 3D labels).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as Fn

from tqdm.auto import tqdm

from .heatmap_net import Backbone, ConvBlock, image_tensor
from .pose_finetune import choose_labelled, evaluate_pose, finetune_pose, transfer_backbone
from .sync_diagnose import offset_motion
from .train import TrainHistory, seed_everything, to_tensor

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
                 keypoints=None, min_motion: float = 0.0, vertical_motion: bool = True,
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
        keypoints: optional ``(C, T, J, 2)`` crop-normalised 2D keypoints
            (:func:`learn.sync_diagnose.crop_keypoints` of the detections; no 3D needed) with
            ``min_motion``: an offset is allowed only where the pose moves by at least
            ``min_motion`` crop sides (median over joints, mean over cameras,
            :func:`learn.sync_diagnose.offset_motion`), so unsynchronised views differ
            visibly. ``vertical_motion``: count the vertical displacement only (a turn of the
            whole body looks like another camera angle and cannot reveal the offset).
            Synchronised and unsynchronised pairs share the same anchors.
        seed: the same seed gives the same pairs.
    Returns:
        :class:`PairSet`. Anchors without any valid partner at the allowed offsets (clips
        shorter than ``min_offset + 1``, near-static frames under ``min_motion``) are never
        drawn.
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
    if keypoints is not None:
        kp = np.asarray(keypoints)
        if kp.ndim != 4 or kp.shape[:2] != (num_cameras, T) or kp.shape[-1] != 2:
            raise ValueError(f"keypoints: expected shape ({num_cameras}, {T}, J, 2), got shape "
                             f"{kp.shape}")
        mot = offset_motion(kp, clip, offs, vertical=vertical_motion)[idx]  # (n, 2K)
        ok &= np.nan_to_num(mot, nan=-1.0) >= min_motion
    anchors_ok = ok.any(1)
    if not anchors_ok.any():
        raise ValueError(f"frames/clip/min_motion: no frame has a partner {min_offset}-"
                         f"{max_offset} frames away in its clip (moving >= {min_motion})")
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
    """Two-stream siamese pair classifier with late fusion (Jenni & Favaro's design).

    Each view ``(B, 3, S, S)`` (uint8, or floats from :func:`image_tensor`) goes through the same
    stream: a :class:`learn.heatmap_net.Backbone` (features ``(B, width, S/4, S/4)``, the part
    that transfers to the pose network), a residual block, a 1×1 convolution to ``channels``
    maps at ``S/4`` and one linear layer over the flattened grid to the view embedding
    ``e (B, embed)``: the embedding keeps *where* in the crop each feature is (synchronised
    views show every joint at about the same crop height). The encoder before it went down to
    an ``S/16`` grid (2×2 cells at 32 px) first; trained the same way (fresh renders, the
    contrastive term of :mod:`learn.sync_tuples`) the two are about equal: 72.6 % vs 74.2 %
    held out (``examples/sync_probes/contrast.py --enc flat16|flat4 --shared 0``). Late fusion:
    ``[e_a + e_b, |e_a − e_b|]`` ``(B, 2·embed)``, then one MLP head per task gives the logits
    ``(B, 2)``: column 0 synchronised, column 1 flipped (one view mirrored). Swapping the two
    views gives the same logits.

    Args:
        width, blocks: backbone size (as :class:`learn.heatmap_net.HeatmapNet`, so its backbone
            transfers). embed: view-embedding size. size: input side ``S`` (multiple of 16).
        channels: feature maps kept at ``S/4`` before the linear layer.
    """

    def __init__(self, width: int = 32, blocks: int = 2, embed: int = 256, size: int = 64,
                 channels: int = 32):
        super().__init__()
        if size % 16:
            raise ValueError(f"size: expected a multiple of 16, got {size}")
        if channels < 1:
            raise ValueError(f"channels: expected >= 1, got {channels}")
        self.size = size
        self.backbone = Backbone(width, blocks)
        self.encoder = nn.Sequential(ConvBlock(width), nn.Conv2d(width, channels, 1, bias=False),
                                     nn.BatchNorm2d(channels), nn.ReLU(), nn.Flatten(),
                                     nn.Linear(channels * (size // 4) ** 2, embed),
                                     nn.BatchNorm1d(embed), nn.ReLU())

        def head():
            return nn.Sequential(nn.Linear(2 * embed, embed), nn.BatchNorm1d(embed), nn.ReLU(),
                                 nn.Linear(embed, 1))
        self.sync_head, self.flip_head = head(), head()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` → backbone features ``(B, width, S/4, S/4)``."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, self.size, self.size):
            raise ValueError(f"x: expected shape (B, 3, {self.size}, {self.size}), got "
                             f"{tuple(x.shape)}")
        return self.backbone(image_tensor(x) if x.dtype == torch.uint8 else x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` → view embeddings ``(B, embed)`` (one stream)."""
        return self.encoder(self.features(x))

    def forward(self, xa: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
        """Views ``xa, xb (B, 3, S, S)`` → logits ``(B, 2)`` (sync, flip)."""
        if xa.shape != xb.shape:
            raise ValueError(f"xb: expected the shape of xa {tuple(xa.shape)}, got "
                             f"{tuple(xb.shape)}")
        B = xa.shape[0]
        e = self.embed(torch.cat([xa, xb], 0))          # one batch: shared BN statistics
        return self.pair_logits(e[:B], e[B:])

    def pair_logits(self, ea: torch.Tensor, eb: torch.Tensor) -> torch.Tensor:
        """Late fusion of view embeddings ``ea, eb (B, embed)`` → logits ``(B, 2)``."""
        z = torch.cat([ea + eb, (ea - eb).abs()], -1)
        return torch.cat([self.sync_head(z), self.flip_head(z)], -1)


def pretext_loss(logits: torch.Tensor, sync: torch.Tensor, flipped: torch.Tensor,
                 flip_weight: float = 1.0, sync_weight: float = 1.0) -> torch.Tensor:
    """``sync_weight`` × the binary cross-entropy of the sync logit ``logits[:, 0]`` against
    ``sync (B,)`` plus ``flip_weight`` × that of ``logits[:, 1]`` against ``flipped (B,)``
    (labels 0/1). A weight of 0 switches that task off (sync-only / flip-only pretexts)."""
    if logits.ndim != 2 or logits.shape[1] != 2:
        raise ValueError(f"logits: expected shape (B, 2), got {tuple(logits.shape)}")
    B = logits.shape[0]
    for name, v in (("sync", sync), ("flipped", flipped)):
        if tuple(v.shape) != (B,):
            raise ValueError(f"{name}: expected shape ({B},), got {tuple(v.shape)}")
    if sync_weight < 0 or flip_weight < 0 or sync_weight + flip_weight <= 0:
        raise ValueError(f"sync_weight/flip_weight: expected >= 0 and not both 0, got "
                         f"{sync_weight}, {flip_weight}")
    bce = Fn.binary_cross_entropy_with_logits
    loss = logits.new_zeros(())
    if sync_weight:
        loss = loss + sync_weight * bce(logits[:, 0], sync.float())
    if flip_weight:
        loss = loss + flip_weight * bce(logits[:, 1], flipped.float())
    return loss


def train_pretext(model: SyncNet, images, pairs, *, batch_size: int = 32, lr: float = 2e-3,
                  sync_weight: float = 1.0, flip_weight: float = 1.0, seed: int = 0,
                  device=None, progress: bool = True, desc: str = "sync") -> TrainHistory:
    """Train ``model`` in place on pairs of ``images (C, T, 3, S, S)`` uint8 (array or tensor)
    with :func:`pretext_loss`.

    ``pairs``: one :class:`PairSet` or a curriculum, a sequence of them trained in order (e.g.
    large offsets first, then smaller ones); each is shuffled and gone through once in full
    batches of ``batch_size`` (so ``Σ len(p) // batch_size`` steps). One Adam optimiser and
    one cosine schedule (to ``lr / 20``) span all of them; gradients are clipped at norm 5.
    Deterministic given ``seed`` (on CPU). Returns a :class:`learn.train.TrainHistory` with
    ``step_loss`` and ``stage_steps`` (steps per curriculum stage)."""
    imgs = _image_stack(images, device)
    if model.size != imgs.shape[-1]:
        raise ValueError(f"images: expected side {model.size} (the model's), got "
                         f"{tuple(imgs.shape)}")
    stages = [pairs] if isinstance(pairs, PairSet) else list(pairs)
    if not stages or not all(isinstance(p, PairSet) for p in stages):
        raise ValueError("pairs: expected a PairSet or a non-empty sequence of PairSets")
    counts = [len(p) // batch_size for p in stages]
    total = sum(counts)
    if total < 1:
        raise ValueError(f"pairs: fewer pairs than one batch of {batch_size}")
    gen = seed_everything(seed)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total, eta_min=lr / 20)
    hist = TrainHistory(loss=[], step_loss=[], stage_steps=counts, seconds=0.0)
    t0 = time.perf_counter()
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=False, mininterval=1.0)
    model.train()
    for stage, n_steps in zip(stages, counts):
        t = stage.tensors(device)
        order = torch.randperm(len(stage), generator=gen).to(t["sync"].device)
        losses = []
        for k in range(n_steps):
            b = {key: v[order[k * batch_size:(k + 1) * batch_size]] for key, v in t.items()}
            xa, xb = gather_pairs(imgs, b)
            loss = pretext_loss(model(xa, xb), b["sync"], torch.maximum(b["flip_a"], b["flip_b"]),
                                flip_weight=flip_weight, sync_weight=sync_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            bar.update(1)
        hist["step_loss"] += losses
        hist["loss"].append(float(np.mean(losses)) if losses else float("nan"))
    bar.close()
    model.eval()
    hist["seconds"] = time.perf_counter() - t0
    return hist


@torch.no_grad()
def pretext_accuracy(model: SyncNet, images, pairs: PairSet, *, batch_size: int = 128,
                     device=None, details: bool = False) -> dict:
    """Accuracies of the two heads on ``pairs`` (threshold 0 on the logits): ``sync``,
    ``flip``, ``sync_on_sync`` / ``sync_on_offset`` (recall of each class), ``flip_on_sync``
    (flip accuracy on the synchronised pairs) and ``num_pairs``. ``details`` adds the per-pair
    ``sync_correct`` and ``flip_correct`` ``(N,)`` bool arrays."""
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
    res = dict(sync=mean(ok_s), flip=mean(ok_f), sync_on_sync=mean(ok_s[pairs.sync]),
               sync_on_offset=mean(ok_s[~pairs.sync]), flip_on_sync=mean(ok_f[pairs.sync]),
               num_pairs=len(pairs))
    if details:
        res.update(sync_correct=ok_s, flip_correct=ok_f)
    return res


def _image_stack(images, device) -> torch.Tensor:
    imgs = to_tensor(images, device, torch.uint8) if not isinstance(images, torch.Tensor) \
        else images.to(device)
    if imgs.ndim != 5 or imgs.shape[2] != 3 or imgs.shape[3] != imgs.shape[4]:
        raise ValueError(f"images: expected shape (C, T, 3, S, S), got {tuple(imgs.shape)}")
    return imgs


