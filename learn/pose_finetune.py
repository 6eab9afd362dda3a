"""Fine-tuning a pretext-initialised pose network on a few 3D labels (the evaluation side of
the self-supervised pretexts, :mod:`learn.sync_pretext`).

- :func:`transfer_backbone`: copy a pretext network's :class:`learn.heatmap_net.Backbone`
  weights into a :class:`learn.heatmap_net.HeatmapNet`.
- :func:`choose_labelled`: the labelled subset of a budget (seeded).
- :func:`finetune_pose`, :func:`evaluate_pose`: train ``forward_3d`` on root-relative,
  scale-normalised camera-frame poses; N-MPJPE / PA-MPJPE (mm) on held-out views.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from pose.metrics import n_mpjpe, pa_mpjpe

from .heatmap_net import HeatmapNet
from .losses import beta_for_labels, weighted_smooth_l1
from .train import predict, seed_everything, to_tensor, train_loop

__all__ = ["transfer_backbone", "choose_labelled", "finetune_pose", "evaluate_pose"]


def transfer_backbone(pretext, net: HeatmapNet) -> HeatmapNet:
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
