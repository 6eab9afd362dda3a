"""Train the 2D→3D lifter on multi-view pseudo-labels and compare with true 3D (issue 7.1).

Synthetic people (pose.synthetic: several subjects and motions, a Human3.6M-like 4-camera
ring, detector noise); the last subject is held out. The same lifter (same seed, same steps)
is trained on targets from: ground truth, ``rig``-mode pseudo-labels, ``frame``-mode
pseudo-labels — each without and with the 3D-to-2D correction term — and evaluated with
N-MPJPE / MPJPE-after-Procrustes on the held-out subject's noisy detections.

    python examples/train_lifter.py --quick --report lifter.json --out runs/lifter
    torchrun --nproc_per_node=2 examples/train_lifter.py --quick --threads 1   # data-parallel

Under torchrun every rank builds the same data (same seed), the training is data-parallel
(:mod:`learn.distributed`: DDP, a DistributedSampler, the global batch split over the ranks) and
only rank 0 prints, writes checkpoints and the report.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from _common import base_parser, get_labels

from learn.data import camera_frame, make_lifting_set
from learn.distributed import (global_weighted_mean, init_distributed, is_main_process,
                               shutdown)
from learn.label_source import truth_labels
from learn.lifter import Lifter
from learn.losses import beta_for_labels, projection_consistency, weighted_smooth_l1
from learn.train import (get_device, predict, save_checkpoint, seed_everything, set_threads,
                         to_tensor, train_loop, write_report)
from pose.metrics import n_mpjpe, pa_mpjpe
from pose.synthetic import make_people


def train_one(train, test, *, correction: float, args, cfg, device, name):
    gen = seed_everything(args.seed)
    dtype = getattr(torch, cfg.get("dtype", "float32"))
    model = Lifter(window=cfg["window"], hidden=cfg["hidden"], num_blocks=cfg["blocks"],
                   dropout=cfg["dropout"]).to(device=device, dtype=dtype)
    beta = beta_for_labels(train.target)
    tens = {k: to_tensor(getattr(train, k), device, dtype) for k in
            ("inputs", "x_norm", "confidence", "target", "weights")}

    def loss_fn(m, b):
        # global_weighted_mean: under torchrun each rank's Σw·ℓ/Σw becomes its share of the
        # global batch's weighted mean (identity in a single process)
        pred = m(b["inputs"])
        loss = global_weighted_mean(weighted_smooth_l1(pred, b["target"], b["weights"], beta),
                                    b["weights"].sum())
        if correction > 0:
            loss = loss + correction * global_weighted_mean(
                projection_consistency(pred, b["x_norm"], b["confidence"], beta=0.02),
                b["confidence"].sum())
        return loss

    hist = train_loop(model, loss_fn, tens, epochs=cfg["epochs"], batch_size=cfg["batch"],
                      lr=cfg["lr"], generator=gen, desc=name, progress=not args.no_progress,
                      max_steps=cfg.get("max_steps"))
    model.eval()
    pred = predict(model, test.inputs, device=device, dtype=dtype)
    if args.out:
        save_checkpoint(args.out / f"lifter_{name}.pt", model, config=cfg, name=name)
    return pred, hist, model


def _log(*a, **k):
    if is_main_process():
        print(*a, **k)


def main(argv=None):
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--window", type=int, default=1, help="temporal window (odd)")
    p.add_argument("--correction", type=float, default=0.1, help="weight of the 3D-to-2D term")
    args = p.parse_args(argv)
    set_threads(args.threads)
    env = init_distributed(args.device)            # torchrun: process group; else unchanged
    device = env.device if env.distributed else get_device(args.device)
    t_start = time.perf_counter()
    if args.quick:
        data_cfg = dict(num_subjects=4, frames_per_clip=80)
        cfg = dict(hidden=512, blocks=2, dropout=0.25, epochs=12, batch=128, lr=1e-3)
    else:
        data_cfg = dict(num_subjects=6, frames_per_clip=300)
        cfg = dict(hidden=1024, blocks=2, dropout=0.25, epochs=40, batch=256, lr=1e-3)
    cfg["window"] = args.window
    people = make_people(**data_cfg, seed=args.seed)
    rig = people.rig
    S = data_cfg["num_subjects"]
    train_frames = people.subject < S - 1
    test_frames = people.subject == S - 1
    truth_cam = camera_frame(people.X, rig.R, rig.t)
    common = dict(clip=people.clip, window=args.window, dist=people.dist)
    test = make_lifting_set(people.x, rig.K, people.confidence, test_frames, truth=truth_cam,
                            **common)
    _log(f"data: {S} subjects x {len(people.motion_names)} motions x "
         f"{data_cfg['frames_per_clip']} frames, {rig.num_cameras} cameras; "
         f"train {int(train_frames.sum())} frames, test {int(test_frames.sum())} frames "
         f"(held-out subject {S - 1}), device {device}")

    sources = {"truth": truth_labels(people.X, rig.R, rig.t)}
    label_err = {}
    for mode in ("rig", "frame"):
        t0 = time.perf_counter()
        sources[mode] = get_labels(mode, people.x, rig.K, people.confidence, rig.image_size,
                                   args.seed)
        lab = sources[mode]
        ok = lab.valid & train_frames[None]
        err = n_mpjpe(lab.X_cam[ok], truth_cam[ok], root=0, mask=lab.weights[ok] > 0) * 1000
        label_err[mode] = dict(source=lab.source, seconds=time.perf_counter() - t0,
                               valid_fraction=float(lab.valid[:, train_frames].mean()),
                               label_n_mpjpe_mm=float(np.nanmean(err)),
                               label_n_mpjpe_median_mm=float(np.nanmedian(err)),
                               geometry=lab.info)
        _log(f"{mode} labels: {lab.source}, N-MPJPE vs truth {np.nanmean(err):.1f} mm, "
             f"valid {label_err[mode]['valid_fraction']:.1%}")

    mean_pose = None
    results = {}
    runs = [("truth", 0.0), ("rig", 0.0), ("rig", args.correction), ("frame", 0.0),
            ("frame", args.correction)]
    for src, corr in runs:
        lab = sources[src]
        train = make_lifting_set(people.x, rig.K, people.confidence, train_frames,
                                 labels=lab.X_cam, label_weights=lab.weights,
                                 label_valid=lab.valid, truth=truth_cam, **common)
        if mean_pose is None:
            mean_pose = train.target.mean(0)
        name = f"{src}" + ("+correction" if corr > 0 else "")
        pred, hist, _ = train_one(train, test, correction=corr, args=args, cfg=cfg,
                                  device=device, name=name.replace("+", "_"))
        nm = float(np.nanmean(n_mpjpe(pred, test.truth, root=0)) * 1000)
        pa = float(np.nanmean(pa_mpjpe(pred, test.truth)) * 1000)
        results[name] = dict(n_mpjpe_mm=nm, pa_mpjpe_mm=pa, train_samples=len(train),
                             correction_weight=corr, final_loss=hist["loss"][-1],
                             first_loss=hist["loss"][0], train_seconds=hist["seconds"])
        _log(f"{name:18s} N-MPJPE {nm:6.1f} mm  PA-MPJPE {pa:6.1f} mm  "
             f"({len(train)} samples, {hist['seconds']:.0f} s)")
    base = np.broadcast_to(mean_pose, test.truth.shape).astype(np.float64)
    base_nm = float(np.nanmean(n_mpjpe(base, test.truth, root=0)) * 1000)
    t = results["truth"]["n_mpjpe_mm"]
    summary = {
        "rig_over_truth": results["rig"]["n_mpjpe_mm"] / t,
        "frame_over_truth": results["frame"]["n_mpjpe_mm"] / t,
        "rig_correction_effect_mm": results["rig+correction"]["n_mpjpe_mm"]
        - results["rig"]["n_mpjpe_mm"],
        "frame_correction_effect_mm": results["frame+correction"]["n_mpjpe_mm"]
        - results["frame"]["n_mpjpe_mm"],
        "mean_pose_baseline_n_mpjpe_mm": base_nm,
        "acceptance_rig_within_1.15x_truth": bool(results["rig"]["n_mpjpe_mm"] <= 1.15 * t),
    }
    _log(f"mean-pose baseline N-MPJPE {base_nm:.1f} mm; rig/truth = "
         f"{summary['rig_over_truth']:.3f}, frame/truth = {summary['frame_over_truth']:.3f}; "
         f"correction effect: rig {summary['rig_correction_effect_mm']:+.1f} mm, frame "
         f"{summary['frame_correction_effect_mm']:+.1f} mm")
    report = dict(example="train_lifter", quick=args.quick, seed=args.seed, device=str(device),
                  data=dict(data_cfg, held_out_subject=S - 1, test_samples=len(test)),
                  model=cfg, labels=label_err, results=results, summary=summary,
                  seconds=time.perf_counter() - t_start)
    if args.report:
        write_report(args.report, report)
        _log(f"report: {args.report}")
    shutdown()
    return report


if __name__ == "__main__":
    main()
