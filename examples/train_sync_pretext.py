"""Synchronisation pretext (Jenni & Favaro 2020) on rendered synthetic people, CPU-sized (7.3).

1. Synthetic people (pose.synthetic) filmed by the 4-camera ring; every view rendered by
   :func:`learn.render.render_people` (64×64 crops, random clothes/backgrounds per image).
2. Pretext, no labels: a siamese :class:`learn.sync_pretext.SyncNet` classifies pairs of views
   of the training subjects as synchronised (same frame, two cameras) vs a nearby instant
   (a few frames apart), and flipped (one view mirrored) vs not. Accuracies are measured on
   pairs of the held-out subject.
3. Fine-tuning: the volumetric 3D network (:class:`learn.heatmap_net.HeatmapNet`, soft-argmax)
   with the pretext backbone, trained on a small budget of labelled views (true root-relative,
   scale-normalised camera-frame 3D) vs the same network from scratch with the same labels,
   steps and seed; at each budget.
4. Evaluation on the held-out subject (N-MPJPE, PA-MPJPE, mm), beside a mean-pose baseline.

    python examples/train_sync_pretext.py --quick --report results/sync_pretext.json --out runs/sp
"""
from __future__ import annotations

import copy
import time

import numpy as np
import torch

from _common import base_parser

from learn.data import camera_frame, normalize_scale
from learn.heatmap_net import HeatmapNet
from learn.render import render_people
from learn.sync_pretext import (SyncNet, choose_labelled, evaluate_pose, finetune_pose,
                                pretext_accuracy, sample_pairs, train_pretext,
                                transfer_backbone)
from learn.train import get_device, save_checkpoint, seed_everything, set_threads, write_report
from pose.metrics import n_mpjpe
from pose.synthetic import make_people

QUICK = dict(data=dict(num_subjects=5, frames_per_clip=40),
             model=dict(size=64, width=32, depth=16, embed=128),
             pretext=dict(steps=500, batch=32, lr=2e-3, min_offset=4, max_offset=12,
                          test_pairs=2000),
             finetune=dict(budgets=[50, 200], steps=250, batch=32, lr=2e-3))
FULL = dict(data=dict(num_subjects=8, frames_per_clip=120),
            model=dict(size=64, width=32, depth=16, embed=128),
            pretext=dict(steps=6000, batch=64, lr=2e-3, min_offset=4, max_offset=12,
                         test_pairs=4000),
            finetune=dict(budgets=[50, 200, 1000], steps=1500, batch=32, lr=2e-3))


def render_all(truth_cam, K, frames, size, seed, jitter, person=None):
    """Every camera's view of ``frames`` → uint8 ``(C, F, 3, S, S)``; ``person (T,)``: ids of
    every frame's person, whose clothes stay the same in every camera and frame (default: new
    clothes per image)."""
    C = truth_cam.shape[0]
    r = render_people(truth_cam[:, frames].reshape(-1, 17, 3), np.repeat(K, len(frames), 0),
                      size=size, seed=seed, jitter=jitter,
                      appearance=None if person is None else np.tile(person[frames], C))
    return r.images.reshape(C, len(frames), 3, size, size)


def _above_chance(acc):
    """Per head: accuracy more than 2 binomial standard errors above 50 % on held-out pairs."""
    se = 0.5 / np.sqrt(acc["num_pairs"])
    return {k: bool(acc[k] > 0.5 + 2 * se) for k in ("sync", "flip")}


def main(argv=None):
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--pretext-steps", type=int, default=None, help="override the config")
    p.add_argument("--finetune-steps", type=int, default=None, help="override the config")
    p.add_argument("--budgets", type=int, nargs="+", default=None,
                   help="labelled views for fine-tuning (override the config)")
    p.add_argument("--clothes", choices=("subject", "image"), default="image",
                   help="subject: each person keeps their clothes in every camera and frame "
                        "(as in real footage); image: new random clothes in every image")
    p.add_argument("--offsets", type=int, nargs=2, default=None, metavar=("MIN", "MAX"),
                   help="frames between unsynchronised views (override the config)")
    args = p.parse_args(argv)
    set_threads(args.threads)
    device = get_device(args.device)
    t_start = time.perf_counter()
    cfg = {k: dict(v) for k, v in (QUICK if args.quick else FULL).items()}
    for key, sect, name in (("pretext_steps", "pretext", "steps"),
                            ("finetune_steps", "finetune", "steps"),
                            ("budgets", "finetune", "budgets")):
        if getattr(args, key) is not None:
            cfg[sect][name] = getattr(args, key)
    if args.offsets is not None:
        cfg["pretext"]["min_offset"], cfg["pretext"]["max_offset"] = args.offsets
    mc, pc, fc = cfg["model"], cfg["pretext"], cfg["finetune"]
    S = cfg["data"]["num_subjects"]
    people = make_people(**cfg["data"], seed=args.seed)
    rig = people.rig
    C, size = rig.num_cameras, mc["size"]
    tr = np.flatnonzero(people.subject < S - 1)
    te = np.flatnonzero(people.subject == S - 1)
    truth_cam = camera_frame(people.X, rig.R, rig.t)                       # (C, T, J, 3)
    t0 = time.perf_counter()
    person = people.subject if args.clothes == "subject" else None
    img_tr = render_all(truth_cam, rig.K, tr, size, args.seed + 10, jitter=0.05, person=person)
    img_te = render_all(truth_cam, rig.K, te, size, args.seed + 20, jitter=0.0, person=person)
    t_render = time.perf_counter() - t0
    print(f"rendered {img_tr.shape[0] * img_tr.shape[1]} train + "
          f"{img_te.shape[0] * img_te.shape[1]} held-out views ({size}x{size}) in "
          f"{t_render:.1f} s; device {device}")

    # --- pretext: synchronised? flipped? (no labels) -----------------------------------------
    off = dict(min_offset=pc["min_offset"], max_offset=pc["max_offset"])
    pairs_tr = sample_pairs(people.clip[tr], pc["steps"] * pc["batch"], num_cameras=C,
                            seed=args.seed + 1, **off)
    pairs_te = sample_pairs(people.clip[te], pc["test_pairs"], num_cameras=C,
                            seed=args.seed + 2, **off)
    seed_everything(args.seed)
    sync_net = SyncNet(width=mc["width"], embed=mc["embed"], size=size)
    hp = train_pretext(sync_net, img_tr, pairs_tr, batch_size=pc["batch"], lr=pc["lr"],
                       seed=args.seed, device=device, progress=not args.no_progress)
    acc_te = pretext_accuracy(sync_net, img_te, pairs_te, device=device)
    acc_tr = pretext_accuracy(sync_net, img_tr, sample_pairs(
        people.clip[tr], pc["test_pairs"], num_cameras=C, seed=args.seed + 3, **off),
        device=device)
    print(f"pretext ({hp['seconds']:.0f} s, loss {hp['step_loss'][0]:.3f} -> "
          f"{np.mean(hp['step_loss'][-20:]):.3f}): held-out sync {acc_te['sync']:.1%}, "
          f"flip {acc_te['flip']:.1%} (train pairs: sync {acc_tr['sync']:.1%}, "
          f"flip {acc_tr['flip']:.1%}; chance 50%)")
    if args.out:
        save_checkpoint(args.out / "sync_pretext.pt", sync_net, config=cfg)

    # --- fine-tuning on a few 3D labels vs from scratch --------------------------------------
    y_tr, _ = normalize_scale(truth_cam[:, tr])                            # (C, F, J, 3)
    y_tr = y_tr.reshape(-1, 17, 3)
    x_tr = img_tr.reshape(-1, 3, size, size)
    x_te = img_te.reshape(-1, 3, size, size)
    truth_te = truth_cam[:, te].reshape(-1, 17, 3)
    rows = {}
    for budget in fc["budgets"]:
        lab = choose_labelled(np.arange(len(x_tr)), budget, seed=args.seed + budget)
        seed_everything(args.seed + 100)
        init = HeatmapNet(width=mc["width"], depth=mc["depth"])
        row = {}
        for name in ("scratch", "pretext"):
            net = transfer_backbone(sync_net, init) if name == "pretext" else copy.deepcopy(init)
            h = finetune_pose(net, x_tr[lab], y_tr[lab], steps=fc["steps"],
                              batch_size=fc["batch"], lr=fc["lr"], seed=args.seed + budget,
                              device=device, progress=not args.no_progress,
                              desc=f"{name}@{budget}")
            ev = evaluate_pose(net, x_te, truth_te, device=device)
            row[name] = dict(ev, first_loss=h["step_loss"][0],
                             final_loss=float(np.mean(h["step_loss"][-10:])),
                             seconds=h["seconds"])
            if args.out:
                save_checkpoint(args.out / f"pose_{name}_{budget}.pt", net, config=cfg)
        mean_pose = y_tr[lab].mean(0)
        row["mean_pose_n_mpjpe_mm"] = float(np.nanmean(n_mpjpe(
            np.broadcast_to(mean_pose, truth_te.shape), truth_te, root=0)) * 1000)
        row["pretext_over_scratch"] = row["pretext"]["n_mpjpe_mm"] / row["scratch"]["n_mpjpe_mm"]
        rows[str(budget)] = row
        print(f"budget {budget:5d} labelled views: N-MPJPE scratch "
              f"{row['scratch']['n_mpjpe_mm']:6.1f} mm, from pretext "
              f"{row['pretext']['n_mpjpe_mm']:6.1f} mm (ratio {row['pretext_over_scratch']:.3f}); "
              f"mean pose {row['mean_pose_n_mpjpe_mm']:.1f} mm")
    report = dict(example="train_sync_pretext", quick=args.quick, seed=args.seed,
                  device=str(device), config=dict(cfg, clothes=args.clothes),
                  data=dict(held_out_subject=S - 1, train_views=len(x_tr),
                            test_views=len(x_te), frames=int(people.num_frames)),
                  render_seconds=t_render,
                  pretext=dict(held_out=acc_te, train=acc_tr, seconds=hp["seconds"],
                               first_loss=hp["step_loss"][0],
                               final_loss=float(np.mean(hp["step_loss"][-20:])),
                               chance=0.5, above_chance=_above_chance(acc_te)),
                  finetune=rows,
                  summary={f"budget_{b}": dict(scratch_n_mpjpe_mm=r["scratch"]["n_mpjpe_mm"],
                                               pretext_n_mpjpe_mm=r["pretext"]["n_mpjpe_mm"],
                                               pretext_helps=bool(r["pretext_over_scratch"] < 1))
                           for b, r in rows.items()},
                  seconds=time.perf_counter() - t_start)
    if args.report:
        write_report(args.report, report)
        print(f"report: {args.report}")
    print(f"total {report['seconds']:.0f} s")
    return report


if __name__ == "__main__":
    main()
