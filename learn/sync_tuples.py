"""Sync pretext on fresh renders, all cross-camera pairs of two instants per step (torch).

Why (issue #20, ``examples/sync_probes``): on a fixed set of rendered training images the
image sync head reaches ~88 % on training pairs and stays at chance on an unseen subject: every
image has its own random clothes and background, so the network learns which frame each
*image* is, not the pose. Rendering every view anew at every step (new clothes, background,
light, crop jitter) makes that memorising impossible; what is left to learn is the pose.

One step takes ``A`` anchors ``(t, t + o)`` (frame pairs of a :class:`learn.sync_pretext.PairSet`
whose ``frame_a``/``frame_b`` give the two instants), renders the ``C`` views of both instants
(``2·C·A`` images through the backbone) and scores every cross-camera pair among them:
``C(C−1)`` synchronised pairs (two cameras, same instant, both instants) and ``C(C−1)`` offset
pairs (camera ``i`` at ``t``, camera ``j ≠ i`` at ``t + o``) per anchor, balanced — 24 pairs per
8 images with 4 cameras, against 4 for independent pairs.

- :func:`tuple_pairs`: the pair indices and labels of one anchor.
- :func:`multiview_contrastive_loss`: the views of one instant (its other cameras) against
  every other view of the step, on the view embeddings (multi-positive InfoNCE, as
  time-contrastive networks pull together the cameras of one instant).
- :func:`train_sync_tuples`: the training loop (stages trained in order: e.g. an easy stage
  whose offset partner is any frame of the same person far apart, then large, then small
  offsets), sync head plus the contrastive term.

Why the contrastive term (``examples/sync_probes/contrast.py``, SWEEPS.md there): with the
binary cross-entropy alone the head stayed at chance (loss 0.693, 47–51 % held out) in 4 of 6
runs — its gradient carries no signal until the embedding already separates instants. The
contrastive term gives every view ``2·C·A − 2`` graded comparisons from the first step; all 26
runs with it learned (60–77 % held out; 71–77 % with one appearance per image).
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as Fn
from tqdm.auto import tqdm

from .sync_pretext import PairSet, SyncNet
from .train import TrainHistory, seed_everything

__all__ = ["tuple_pairs", "multiview_contrastive_loss", "train_sync_tuples"]


def tuple_pairs(num_cameras: int):
    """Pairs among the ``2·C`` views of one anchor, view ``v = k·C + c`` = camera ``c`` at
    instant ``k`` (0: ``t``, 1: ``t + o``). Returns ``(va, vb, sync)``, int64 ``(2·C(C−1),)``
    view indices and bool labels: first the ``C(C−1)`` synchronised pairs (``c < c'``, both
    instants), then the ``C(C−1)`` offset pairs (camera ``i`` at ``t``, camera ``j ≠ i`` at
    ``t + o``). Always two different cameras."""
    if num_cameras < 2:
        raise ValueError(f"num_cameras: expected >= 2, got {num_cameras}")
    C = num_cameras
    iu, ju = np.triu_indices(C, 1)
    ii, jj = np.nonzero(~np.eye(C, dtype=bool))
    va = np.concatenate([iu, C + iu, ii])
    vb = np.concatenate([ju, C + ju, C + jj])
    sync = np.arange(va.size) < 2 * iu.size
    return va.astype(np.int64), vb.astype(np.int64), sync


def multiview_contrastive_loss(e: torch.Tensor, temperature: float = 0.2,
                               mask: torch.Tensor | None = None) -> torch.Tensor:
    """Multi-positive InfoNCE over view embeddings ``e (V, G, E)``: ``V`` views (cameras) of
    each of ``G`` instants. Each view's positives are the other views of its instant, its
    negatives every view of the other instants; similarities are cosines divided by
    ``temperature``. ``mask (V, G)`` bool: the views taken part (default all; e.g. leave
    mirrored views out). Returns the mean over the views that have a positive of
    ``−mean_pos log softmax`` (a scalar, 0 when none has; with every view in, its minimum
    ``log(V − 1)`` is reached when each instant's views coincide and differ from all others)."""
    if e.ndim != 3 or e.shape[0] < 2 or e.shape[1] < 2:
        raise ValueError(f"e: expected shape (V >= 2, G >= 2, E), got {tuple(e.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature: expected > 0, got {temperature}")
    V, G = e.shape[:2]
    use = torch.ones(V * G, dtype=torch.bool, device=e.device)
    if mask is not None:
        if tuple(mask.shape) != (V, G):
            raise ValueError(f"mask: expected shape ({V}, {G}), got {tuple(mask.shape)}")
        use = mask.to(device=e.device, dtype=torch.bool).reshape(-1)
    z = Fn.normalize(e.reshape(V * G, -1), dim=-1)
    sim = (z @ z.T) / temperature
    eye = torch.eye(V * G, dtype=torch.bool, device=e.device)
    logp = torch.log_softmax(sim.masked_fill(eye | ~use[None, :], float("-inf")), 1)
    grp = torch.arange(G, device=e.device).repeat(V)
    pos = (grp[:, None] == grp[None, :]) & ~eye & use[None, :] & use[:, None]
    npos = pos.sum(1)
    rows = npos > 0
    if not bool(rows.any()):
        return e.sum() * 0.0
    per = -logp.masked_fill(~pos, 0.0).sum(1)[rows] / npos[rows]
    return per.mean()


def train_sync_tuples(model: SyncNet, render: Callable, stages, *, anchors_per_step: int = 8,
                      lr: float = 2e-3, sync_weight: float = 1.0, flip_weight: float = 0.0,
                      flip_ratio: float = 0.3, contrastive_weight: float = 1.0,
                      temperature: float = 0.2, seed: int = 0, device=None,
                      progress: bool = True, desc: str = "sync tuples") -> TrainHistory:
    """Train ``model``'s sync and/or flip heads (and its streams) in place on fresh renders.

    Args:
        render: ``render(frames (n,) int64, seed: int) -> (C, n, 3, S, S)`` uint8 (array or
            tensor): the ``C`` camera views of each frame, drawn with a new appearance for each
            ``seed`` (e.g. :func:`learn.render.render_people` of the camera-frame poses).
        stages: sequence of ``(anchors, steps)``: a :class:`learn.sync_pretext.PairSet` whose
            ``frame_a``, ``frame_b`` are the two instants of each anchor (``frame_a !=
            frame_b``; sample it with ``sync_ratio=0``), and the number of steps drawn from it
            (anchors with replacement, seeded). Stages are trained in order under one Adam
            optimiser and one cosine schedule (to ``lr / 20``); gradients clipped at norm 5.
        anchors_per_step: ``A``; each step renders ``2·C·A`` images and scores
            ``2·C(C−1)·A`` pairs (:func:`tuple_pairs`) with binary cross-entropy.
        sync_weight: weight of the sync head's binary cross-entropy, on the pairs where
            neither view is mirrored (0: no sync task).
        flip_weight, flip_ratio: with ``flip_weight > 0`` each rendered view is mirrored
            (left–right) with probability ``flip_ratio`` and the flip head learns, on every
            pair, whether exactly one of its two views is mirrored.
        contrastive_weight, temperature: weight of :func:`multiview_contrastive_loss` over the
            ``2·A`` instants of the step, unmirrored views only (0 = binary cross-entropy
            alone).
    Returns:
        :class:`learn.train.TrainHistory` with ``step_loss``, ``step_accuracy`` (training
        batches, before the step: the sync head's, or the flip head's when ``sync_weight`` is
        0), ``step_flip_accuracy`` (when flipping), ``loss`` per stage, ``stage_steps`` and
        ``seconds``.
        Deterministic given ``seed`` and a deterministic ``render`` (on CPU).
    """
    stages = list(stages)
    if not stages or not all(isinstance(p, PairSet) and int(n) >= 0 for p, n in stages):
        raise ValueError("stages: expected a non-empty sequence of (PairSet, steps >= 0)")
    if anchors_per_step < 1:
        raise ValueError(f"anchors_per_step: expected >= 1, got {anchors_per_step}")
    if not (sync_weight >= 0 and flip_weight >= 0 and sync_weight + flip_weight > 0):
        raise ValueError(f"sync_weight/flip_weight: expected >= 0 and not both 0, got "
                         f"{sync_weight}, {flip_weight}")
    if flip_weight > 0 and not 0 < flip_ratio < 1:
        raise ValueError(f"flip_ratio: expected in (0, 1), got {flip_ratio}")
    if not contrastive_weight >= 0:
        raise ValueError(f"contrastive_weight: expected >= 0, got {contrastive_weight}")
    if not temperature > 0:
        raise ValueError(f"temperature: expected > 0, got {temperature}")
    for p, _ in stages:
        if np.any(p.frame_a == p.frame_b):
            raise ValueError("stages: anchors need frame_a != frame_b (sample with "
                             "sync_ratio=0)")
    total = sum(int(n) for _, n in stages)
    if total < 1:
        raise ValueError("stages: no steps to train")
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total, eta_min=lr / 20)
    hist = TrainHistory(loss=[], step_loss=[], step_accuracy=[], step_flip_accuracy=[],
                        stage_steps=[int(n) for _, n in stages], seconds=0.0)
    A = anchors_per_step
    t0 = time.perf_counter()
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=False, mininterval=1.0)
    model.train()
    step = 0
    for anchors, n in stages:
        losses = []
        for _ in range(int(n)):
            k = rng.integers(0, len(anchors), A)
            frames = np.concatenate([anchors.frame_a[k], anchors.frame_b[k]])
            x = torch.as_tensor(np.asarray(render(frames, seed * 1_000_003 + step)))
            C = x.shape[0]
            if x.ndim != 5 or x.shape[1] != 2 * A or x.dtype != torch.uint8:
                raise ValueError(f"render: expected uint8 (C, {2 * A}, 3, S, S), got "
                                 f"{x.dtype} {tuple(x.shape)}")
            va, vb, sync = tuple_pairs(C)
            m = np.zeros((C, 2 * A), bool)             # mirrored views, (camera, instant·A + i)
            if flip_weight > 0:
                m = rng.random((C, 2 * A)) < flip_ratio
                mt = torch.as_tensor(m).reshape(C, 2 * A, 1, 1, 1)
                x = torch.where(mt, x.flip(-1), x)
            # view v = instant·C + camera; x[:, :A] are the anchors' first instants
            ec = model.embed(x.to(device).reshape(-1, *x.shape[2:])).reshape(C, 2 * A, -1)
            # ec: (camera, instant·A + anchor, E); e: (instant·C + camera, anchor, E)
            e = ec.reshape(C, 2, A, -1).permute(1, 0, 2, 3).reshape(2 * C, A, -1)
            ea = e[torch.as_tensor(va, device=e.device)].reshape(-1, e.shape[-1])
            eb = e[torch.as_tensor(vb, device=e.device)].reshape(-1, e.shape[-1])
            mv = m.reshape(C, 2, A).transpose(1, 0, 2).reshape(2 * C, A)
            ma, mb = mv[va].reshape(-1), mv[vb].reshape(-1)
            y = torch.as_tensor(np.repeat(sync, A), dtype=torch.float32, device=e.device)
            yf = torch.as_tensor(ma ^ mb, dtype=torch.float32, device=e.device)
            clean = torch.as_tensor(~(ma | mb), device=e.device)
            logits = model.pair_logits(ea, eb)
            logit = logits[:, 0]
            loss = logits.new_zeros(())
            if sync_weight > 0 and bool(clean.any()):
                loss = loss + sync_weight * Fn.binary_cross_entropy_with_logits(
                    logit[clean], y[clean])
            if flip_weight > 0:
                loss = loss + flip_weight * Fn.binary_cross_entropy_with_logits(
                    logits[:, 1], yf)
            if contrastive_weight > 0:      # cameras × the 2A instants of the step
                loss = loss + contrastive_weight * multiview_contrastive_loss(
                    ec, temperature, mask=torch.as_tensor(~m))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            with torch.no_grad():
                acc_f = float(((logits[:, 1] > 0).float() == yf).float().mean()) \
                    if flip_weight > 0 else float("nan")
                acc_s = float(((logit[clean] > 0).float() == y[clean]).float().mean()) \
                    if bool(clean.any()) else float("nan")
            hist["step_accuracy"].append(acc_s if sync_weight > 0 else acc_f)
            if flip_weight > 0:
                hist["step_flip_accuracy"].append(acc_f)
            step += 1
            bar.update(1)
        hist["step_loss"] += losses
        hist["loss"].append(float(np.mean(losses)) if losses else float("nan"))
    bar.close()
    model.eval()
    hist["seconds"] = time.perf_counter() - t0
    return hist
