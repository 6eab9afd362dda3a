"""EpipolarPose on rendered synthetic people, CPU-sized (issue 7.2).

1. Synthetic people (pose.synthetic) filmed by a 4-camera ring; every view is rendered by
   :func:`learn.render.render_people` (capsule people, random clothes and backgrounds).
2. A 2D heatmap network is trained on the 2D labels of the training subjects, then frozen.
3. Its 2D predictions on all training views go through the geometry
   (:func:`learn.pseudo_labels.make_pseudo_labels`, ``rig`` mode: no 3D labels, no extrinsics)
   to per-camera 3D pseudo-labels.
4. The volumetric 3D branch (soft-argmax) is trained with smooth-L1 on them; the same network
   from the same initialisation is trained on true 3D for reference.
5. Evaluation on the held-out subjects (N-MPJPE, PA-MPJPE), against a mean-pose baseline.

    python examples/train_epipolarpose.py --quick --report epipolarpose.json --out runs/ep
"""
from __future__ import annotations

import copy
import time

import numpy as np
import torch

from _common import base_parser, get_labels

from learn.data import camera_frame, normalize_scale
from learn.heatmap_net import HeatmapNet
from learn.losses import beta_for_labels, weighted_smooth_l1
from learn.render import render_people
from learn.train import (get_device, predict, save_checkpoint, seed_everything, set_threads,
                         to_tensor, train_loop, write_report)
from pose.metrics import n_mpjpe, pa_mpjpe
from pose.synthetic import make_people


def render_views(Xc, K, idx, size, seed, jitter):
    """Render cameras × frames ``idx`` → images (C·F, 3, S, S), Rendered."""
    C = Xc.shape[0]
    X = Xc[:, idx].reshape(-1, 17, 3)
    Ks = np.repeat(K, len(idx), axis=0)
    return render_people(X, Ks, size=size, seed=seed, jitter=jitter)


def train_3d(init, images, labels, weights, *, cfg, args, device, name):
    gen = seed_everything(args.seed + 1)
    model = copy.deepcopy(init).to(device)
    beta = beta_for_labels(labels)
    tens = {"img": to_tensor(images, device, torch.uint8), "y": to_tensor(labels, device),
            "w": to_tensor(weights, device)}

    def loss_fn(m, b):
        return weighted_smooth_l1(m.forward_3d(b["img"]), b["y"], b["w"], beta)

    hist = train_loop(model, loss_fn, tens, epochs=cfg["epochs3d"], batch_size=cfg["batch"],
                      lr=cfg["lr"], generator=gen, desc=name, progress=not args.no_progress,
                      max_steps=cfg["steps3d"])
    if args.out:
        save_checkpoint(args.out / f"epipolarpose_3d_{name}.pt", model, config=cfg)
    return model, hist


def main(argv=None):
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--mode", default="rig", help="pseudo-label mode: rig, frame or window")
    p.add_argument("--steps", type=int, default=None, help="override the step budgets (dev)")
    args = p.parse_args(argv)
    set_threads(args.threads)
    device = get_device(args.device)
    t_start = time.perf_counter()
    # Held-out generalisation is limited by pose/subject variety more than by steps (measured:
    # 3 training subjects overfit, train 23 mm vs test 62 mm): the full run uses 10 subjects,
    # 2 of them held out, and a longer-trained 2D backbone (which also sharpens the labels).
    if args.quick:
        data_cfg = dict(num_subjects=6, frames_per_clip=30)
        held_out = 1
        cfg = dict(size=64, width=32, depth=16, batch=64, lr=2e-3, epochs2d=100, steps2d=600,
                   epochs3d=100, steps3d=700)
    else:
        data_cfg = dict(num_subjects=10, frames_per_clip=100)
        held_out = 2
        cfg = dict(size=64, width=32, depth=16, batch=64, lr=2e-3, epochs2d=100, steps2d=3000,
                   epochs3d=100, steps3d=4000)
    if args.steps:
        cfg.update(steps2d=args.steps, steps3d=args.steps)
    people = make_people(**data_cfg, seed=args.seed)
    rig = people.rig
    C, S = rig.num_cameras, data_cfg["num_subjects"]
    tr = np.flatnonzero(people.subject < S - held_out)
    te = np.flatnonzero(people.subject >= S - held_out)
    truth_cam = camera_frame(people.X, rig.R, rig.t)                       # (C, T, J, 3)
    t0 = time.perf_counter()
    r_tr = render_views(truth_cam, rig.K, tr, cfg["size"], args.seed + 10, jitter=0.05)
    r_te = render_views(truth_cam, rig.K, te, cfg["size"], args.seed + 20, jitter=0.0)
    t_render = time.perf_counter() - t0
    print(f"rendered {len(r_tr.images)} train + {len(r_te.images)} test views "
          f"({cfg['size']}x{cfg['size']}) in {t_render:.1f} s; device {device}")

    # --- stage 1: 2D network on 2D labels ---------------------------------------------------
    gen = seed_everything(args.seed)
    net = HeatmapNet(width=cfg["width"], depth=cfg["depth"]).to(device)
    size = cfg["size"]
    tens = {"img": to_tensor(r_tr.images, device, torch.uint8),
            "xy": to_tensor(r_tr.joints / size, device)}

    def loss2d(m, b):
        xy, _ = m.forward_2d(b["img"])
        return weighted_smooth_l1(xy / size, b["xy"], None, beta=1.0 / size)

    params2d = list(net.backbone.parameters()) + list(net.head2d.parameters())
    h2 = train_loop(net, loss2d, tens, epochs=cfg["epochs2d"], batch_size=cfg["batch"],
                    lr=cfg["lr"], generator=gen, params=params2d, desc="2d",
                    progress=not args.no_progress, max_steps=cfg["steps2d"])
    net.eval()
    for q in net.parameters():
        q.requires_grad_(False)
    if args.out:
        save_checkpoint(args.out / "epipolarpose_2d.pt", net, config=cfg)

    def run2d(r):
        out = predict(lambda x: torch.cat(list(net.forward_2d(x)[0].unsqueeze(0)) +
                                          [net.forward_2d(x)[1][..., None]], -1),
                      r.images, batch_size=256, device=device)
        return r.to_full(out[..., :2]), out[..., 2]

    x_tr, c_tr = run2d(r_tr)
    x_te, _ = run2d(r_te)
    full_err = lambda x, r: float(np.mean(np.linalg.norm(x - r.to_full(r.joints), axis=-1)))
    err2d = dict(train_px=full_err(x_tr, r_tr), test_px=full_err(x_te, r_te))
    print(f"2D net: {h2['seconds']:.0f} s, error (full-image px) train {err2d['train_px']:.1f}, "
          f"test {err2d['test_px']:.1f}")

    # --- stage 2: pseudo-labels from the frozen 2D network through the geometry -------------
    x2d = x_tr.reshape(C, len(tr), 17, 2)
    conf = np.clip(c_tr.reshape(C, len(tr), 17) / max(np.median(c_tr), 1e-6), 0.05, 1.0)
    t0 = time.perf_counter()
    lab = get_labels(args.mode, x2d, rig.K, conf, rig.image_size, args.seed)
    t_labels = time.perf_counter() - t0
    ok = lab.valid
    lab_err = n_mpjpe(lab.X_cam[ok], truth_cam[:, tr][ok], root=0, mask=lab.weights[ok] > 0) * 1000
    print(f"pseudo-labels ({lab.source}): {t_labels:.1f} s, valid {ok.mean():.1%}, "
          f"N-MPJPE vs truth {np.nanmean(lab_err):.1f} mm")

    # --- stage 3: 3D branch on pseudo-labels and on truth -----------------------------------
    init = copy.deepcopy(net)
    for q in init.parameters():
        q.requires_grad_(True)
    imgs = r_tr.images.reshape(C, len(tr), 3, size, size)
    y_ps, _ = normalize_scale(np.nan_to_num(lab.X_cam), 0, lab.weights)
    w_ps = np.where(ok[..., None], lab.weights, 0.0)
    sel = ok.reshape(-1) & (w_ps.reshape(-1, 17).sum(-1) > 0)
    y_gt, _ = normalize_scale(truth_cam[:, tr])
    truth_te = truth_cam[:, te].reshape(-1, 17, 3)
    results = {}
    for name, y, w, s in (("pseudo", y_ps, w_ps, sel),
                          ("truth", y_gt, np.ones(y_gt.shape[:-1]), np.ones(sel.shape, bool))):
        model, hist = train_3d(init, imgs.reshape(-1, 3, size, size)[s], y.reshape(-1, 17, 3)[s],
                               w.reshape(-1, 17)[s], cfg=cfg, args=args, device=device,
                               name=name)
        pred = predict(model, r_te.images, batch_size=256, device=device)
        nm = float(np.nanmean(n_mpjpe(pred, truth_te, root=0)) * 1000)
        pa = float(np.nanmean(pa_mpjpe(pred, truth_te)) * 1000)
        results[name] = dict(n_mpjpe_mm=nm, pa_mpjpe_mm=pa, train_samples=int(s.sum()),
                             first_loss=hist["loss"][0], final_loss=hist["loss"][-1],
                             train_seconds=hist["seconds"])
        print(f"3D branch on {name:6s}: N-MPJPE {nm:6.1f} mm, PA-MPJPE {pa:6.1f} mm "
              f"({int(s.sum())} samples, {hist['seconds']:.0f} s)")
    # mean-pose baselines: the mean training target (pseudo-labels: no 3D labels used; and,
    # for reference, the mean true training pose), the same for every test view
    def mean_pose_error(y, s):
        mp = y.reshape(-1, 17, 3)[s].mean(0)
        return float(np.nanmean(n_mpjpe(np.broadcast_to(mp, truth_te.shape), truth_te,
                                        root=0)) * 1000)
    base = mean_pose_error(y_ps, sel)
    summary = dict(mean_pose_n_mpjpe_mm=base,
                   mean_true_pose_n_mpjpe_mm=mean_pose_error(y_gt, np.ones(sel.shape, bool)),
                   baseline_over_pseudo=base / results["pseudo"]["n_mpjpe_mm"],
                   pseudo_over_truth=results["pseudo"]["n_mpjpe_mm"]
                   / results["truth"]["n_mpjpe_mm"])
    summary["acceptance_beats_mean_pose_3x"] = bool(summary["baseline_over_pseudo"] >= 3.0)
    summary["acceptance_within_1.3x_truth"] = bool(summary["pseudo_over_truth"] <= 1.3)
    print(f"mean-pose baseline {base:.1f} mm: baseline/pseudo = "
          f"{summary['baseline_over_pseudo']:.2f}x, pseudo/truth = "
          f"{summary['pseudo_over_truth']:.3f}")
    report = dict(example="train_epipolarpose", quick=args.quick, seed=args.seed,
                  device=str(device), data=dict(data_cfg,
                                                held_out_subjects=list(range(S - held_out, S)),
                                                train_views=len(r_tr.images),
                                                test_views=len(r_te.images)),
                  model=cfg, render_seconds=t_render,
                  net2d=dict(err2d, seconds=h2["seconds"], first_loss=h2["loss"][0],
                             final_loss=h2["loss"][-1]),
                  labels=dict(source=lab.source, seconds=t_labels, valid_fraction=float(ok.mean()),
                              n_mpjpe_mm=float(np.nanmean(lab_err)),
                              n_mpjpe_median_mm=float(np.nanmedian(lab_err)),
                              geometry=lab.info),
                  results=results, summary=summary, seconds=time.perf_counter() - t_start)
    if args.report:
        write_report(args.report, report)
        print(f"report: {args.report}")
    return report


if __name__ == "__main__":
    main()
