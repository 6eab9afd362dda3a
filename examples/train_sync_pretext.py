"""Synchronisation pretext (Jenni & Favaro 2020) on rendered synthetic people, CPU-sized (7.3).

1. Synthetic people (pose.synthetic) filmed by the 4-camera ring; every view rendered by
   :func:`learn.render.render_people` (32×32 crops centred on the person, random
   clothes/backgrounds per image).
2. Diagnosis (:mod:`learn.sync_diagnose`): a small classifier on the 2D keypoints of the two
   views (cropped like the images) tells how separable the pairs are, for the old sampler
   (4–12 frames, every frame) and for this one.
3. Pretexts, no labels: a two-stream siamese :class:`learn.sync_pretext.SyncNet` (late fusion)
   classifies pairs of views of the training subjects as synchronised (same frame, two
   cameras) vs a different instant, and/or flipped (one view mirrored) vs not. Unsynchronised
   offsets are kept only where the 2D detections move vertically by a visible amount, and a
   curriculum goes from large to small offsets. Three pretexts: sync only, flip only, both.
   Every pretext (:mod:`learn.sync_tuples`) re-renders every view at every step (no image
   memorised) and scores all cross-camera pairs of two instants; with the sync task it starts
   with an easy stage (the offset partner is any frame >= 30 apart of the same person) and
   adds a multi-view contrastive term (an instant's cameras against all other views); for the
   flip task views are mirrored at random.
   Accuracies are measured on pairs of the held-out subject, on training pairs, and on the
   same training pairs re-rendered with new clothes and backgrounds (learned pose vs memorised
   images).
4. Fine-tuning: the volumetric 3D network (:class:`learn.heatmap_net.HeatmapNet`) from each
   pretext backbone and from scratch, on a few labelled views (true root-relative,
   scale-normalised 3D), same initialisation of the rest, 3 seeds per budget.
5. Evaluation on the held-out subject (N-MPJPE, PA-MPJPE, mm; mean ± std over the seeds).

    python examples/train_sync_pretext.py --quick --report results/sync_pretext.json --out runs/sp
"""
from __future__ import annotations

import copy
import time

import numpy as np

from _common import base_parser

from learn.data import camera_frame, normalize_scale
from learn.heatmap_net import HeatmapNet
from learn.render import render_people
from learn.sync_diagnose import (accuracy_by, crop_keypoints, keypoint_sync_logits,
                                 train_keypoint_sync)
from learn.sync_pretext import (SyncNet, choose_labelled, evaluate_pose, finetune_pose,
                                pretext_accuracy, sample_pairs, transfer_backbone)
from learn.sync_tuples import train_sync_tuples
from learn.train import get_device, save_checkpoint, seed_everything, set_threads, write_report
from pose.metrics import n_mpjpe
from pose.synthetic import make_people

# sync pretext: "easy" steps whose offset partner is any frame >= 30 apart of the same person,
# then "sync" steps over the offset curriculum; "anchors" per step, every view re-rendered
# with a new appearance at every step, binary cross-entropy plus the multi-view contrastive
# term (learn.sync_tuples). 32-px crops; the embedding keeps the S/4 grid (learn.sync_pretext).
# The full run's wider backbone (32) reached 76 % held out where 16 reached 71–73 % (probes).
QUICK = dict(data=dict(num_subjects=9, frames_per_clip=60),
             model=dict(size=32, width=16, depth=16, embed=256),
             pretext=dict(steps=dict(sync=3000, flip=300, both=0), easy=1500, anchors=8,
                          lr=2e-3, contrastive=1.0, flip_ratio=0.5, temperature=0.2,
                          min_offset=8, max_offset=30, min_motion=0.02, stages=3,
                          test_pairs=2000),
             finetune=dict(budgets=[50, 200], seeds=1, steps=200, batch=32, lr=2e-3,
                           test_views=1200))
FULL = dict(data=dict(num_subjects=12, frames_per_clip=80),
            model=dict(size=32, width=32, depth=16, embed=256),
            pretext=dict(steps=dict(sync=6000, flip=800, both=2000), easy=2000, anchors=8,
                         lr=2e-3, contrastive=1.0, flip_ratio=0.5, temperature=0.2,
                         min_offset=8, max_offset=30, min_motion=0.02, stages=3,
                         test_pairs=4000),
            finetune=dict(budgets=[50, 200, 1000], seeds=3, steps=300, batch=32, lr=2e-3,
                          test_views=1600))
# weights of the heads and of the contrastive term; flip_ratio: mirrored pairs in the evaluation
PRETEXTS = dict(sync=dict(sync_weight=1.0, flip_weight=0.0, contrastive=True, flip_ratio=0.0),
                flip=dict(sync_weight=0.0, flip_weight=1.0, contrastive=False, flip_ratio=0.5),
                both=dict(sync_weight=1.0, flip_weight=1.0, contrastive=True, flip_ratio=0.5))


def render_all(truth_cam, K, frames, size, seed, jitter):
    """Every camera's view of ``frames`` → uint8 ``(C, F, 3, S, S)``."""
    C = truth_cam.shape[0]
    r = render_people(truth_cam[:, frames].reshape(-1, 17, 3), np.repeat(K, len(frames), 0),
                      size=size, seed=seed, jitter=jitter)
    return r.images.reshape(C, len(frames), 3, size, size)


def curriculum(pc):
    """``stages`` (min_offset, min_motion) from large offsets and motions to the final ones."""
    lo, hi, m, n = pc["min_offset"], pc["max_offset"], pc["min_motion"], pc["stages"]
    out = []
    for k in range(n):
        f = 1.0 - k / max(n - 1, 1)                  # 1 → 0
        out.append((int(round(lo + 0.5 * f * (hi - lo))), m * (1.0 + f)))
    return out


def sync_tuples(net, people, truth_tr, tr, kp_tr, stages, steps, pc, size, args, device, heads,
                name):
    """A pretext by :func:`learn.sync_tuples.train_sync_tuples` with the heads' weights of
    ``heads`` (:data:`PRETEXTS`): with the sync task, ``pc["easy"]`` steps whose offset partner is
    any frame >= 30 apart of the same person first; then ``steps`` over the curriculum
    ``stages``; every view rendered anew (jitter 0.05) at every step; binary cross-entropy
    plus ``pc["contrastive"]`` × the multi-view contrastive term where ``heads`` has it; views
    mirrored with probability ``pc["flip_ratio"]`` for the flip task."""
    C, K = people.rig.num_cameras, people.rig.K
    sub, clip = people.subject[tr], people.clip[tr]
    span = int(np.bincount(sub).max())
    kw = dict(num_cameras=C, sync_ratio=0.0, flip_ratio=0.0)
    plan = []
    if pc["easy"] > 0 and heads["sync_weight"] > 0:
        plan.append((sample_pairs(sub, 20000, min_offset=30, max_offset=max(span - 1, 30),
                                  seed=args.seed + 40, **kw), pc["easy"],
                     dict(kind="same person, any frame", min_offset=30)))
    for k, (lo, mm) in enumerate(stages):
        n = steps // len(stages) + (k < steps % len(stages))
        plan.append((sample_pairs(clip, 20000, min_offset=lo, max_offset=pc["max_offset"],
                                  min_motion=mm, keypoints=kp_tr, seed=args.seed + 41 + k, **kw),
                     n, dict(min_offset=lo, max_offset=pc["max_offset"], min_motion=mm)))

    def render(frames, seed):
        return render_all(truth_tr, K, frames, size, seed, jitter=0.05)
    hp = train_sync_tuples(net, render, [(p, n) for p, n, _ in plan],
                           anchors_per_step=pc["anchors"], lr=pc["lr"],
                           sync_weight=heads["sync_weight"], flip_weight=heads["flip_weight"],
                           flip_ratio=pc["flip_ratio"],
                           contrastive_weight=pc["contrastive"] if heads["contrastive"] else 0.0,
                           temperature=pc["temperature"], seed=args.seed,
                           device=device, progress=not args.no_progress, desc=f"pretext {name}")
    acc, info, s0 = hp["step_accuracy"], [], 0
    for (_, n, d), loss in zip(plan, hp["loss"]):
        last = acc[s0 + max(n - 100, 0):s0 + n]
        info.append(dict(d, steps=n, loss=loss, batch_accuracy_last100=float(np.mean(last))
                         if last else None))
        s0 += n
    return hp, info


def diagnose(people, kp_clean, kp_det, tr, te, pc, seed):
    """Keypoint-level sync classifier (clean 2D = what the pixels show) for the old sampler
    and this one: held-out / train accuracy, per motion."""
    C = people.rig.num_cameras
    out = {}
    for name, off in (("old_4_12_all_frames", dict(min_offset=4, max_offset=12)),
                      ("this_sampler", dict(min_offset=pc["min_offset"],
                                            max_offset=pc["max_offset"],
                                            min_motion=pc["min_motion"]))):
        kw = dict(num_cameras=C, flip_ratio=0.0, **off)
        if "min_motion" in off:
            kw_tr, kw_te = dict(keypoints=kp_det[:, tr]), dict(keypoints=kp_det[:, te])
        else:
            kw_tr = kw_te = {}
        ptr = sample_pairs(people.clip[tr], 20000, seed=seed + 50, **kw, **kw_tr)
        pte = sample_pairs(people.clip[te], 2000, seed=seed + 51, **kw, **kw_te)
        net = train_keypoint_sync(kp_clean[:, tr], ptr, steps=800, seed=seed)
        ok = (keypoint_sync_logits(net, kp_clean[:, te], pte) > 0) == pte.sync
        ok_tr = (keypoint_sync_logits(net, kp_clean[:, tr], ptr) > 0) == ptr.sync
        mot = people.motion[te][pte.frame_a]
        out[name] = dict(heldout=float(ok.mean()), train=float(ok_tr.mean()), **off,
                         by_motion={people.motion_names[k]: v for k, v in
                                    accuracy_by(ok, mot).items()})
        print(f"diagnosis, keypoint classifier, {name}: held-out {ok.mean():.1%}, "
              f"train {ok_tr.mean():.1%}")
    return out


def main(argv=None):
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--pretext-steps", type=int, default=None,
                   help="override the sync-only pretext's steps")
    p.add_argument("--easy-steps", type=int, default=None,
                   help="override the sync pretext's easy (same person, any frame) steps")
    p.add_argument("--finetune-steps", type=int, default=None, help="override the config")
    p.add_argument("--budgets", type=int, nargs="+", default=None,
                   help="labelled views for fine-tuning (override the config)")
    p.add_argument("--offsets", type=int, nargs=2, default=None, metavar=("MIN", "MAX"),
                   help="final frames between unsynchronised views (override the config)")
    args = p.parse_args(argv)
    set_threads(args.threads)
    device = get_device(args.device)
    t_start = time.perf_counter()
    cfg = {k: {kk: (dict(vv) if isinstance(vv, dict) else vv) for kk, vv in v.items()}
           for k, v in (QUICK if args.quick else FULL).items()}
    if args.pretext_steps is not None:
        cfg["pretext"]["steps"]["sync"] = args.pretext_steps
    if args.easy_steps is not None:
        cfg["pretext"]["easy"] = args.easy_steps
    if args.finetune_steps is not None:
        cfg["finetune"]["steps"] = args.finetune_steps
    if args.budgets is not None:
        cfg["finetune"]["budgets"] = args.budgets
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
    img_tr = render_all(truth_cam, rig.K, tr, size, args.seed + 10, jitter=0.05)
    img_te = render_all(truth_cam, rig.K, te, size, args.seed + 20, jitter=0.0)
    # the training frames again with new clothes/backgrounds: accuracy on these vs on the
    # training images tells learning the pose from memorising the images
    img_trr = render_all(truth_cam, rig.K, tr, size, args.seed + 30, jitter=0.05)
    t_render = time.perf_counter() - t0
    print(f"rendered {img_tr.shape[0] * img_tr.shape[1]} train + "
          f"{img_te.shape[0] * img_te.shape[1]} held-out views ({size}x{size}) in "
          f"{t_render:.1f} s; device {device}")
    # 2D detections (confident ones), cropped like the images: the sampler's motion measure
    x_det = np.where((people.confidence >= 0.5)[..., None], people.x, np.nan)
    kp_det = crop_keypoints(x_det)
    diag = diagnose(people, crop_keypoints(people.x_clean), kp_det, tr, te, pc, args.seed)

    # --- pretexts: synchronised? flipped? (no labels) ----------------------------------------
    stages = curriculum(pc)
    final = dict(min_offset=pc["min_offset"], max_offset=pc["max_offset"],
                 min_motion=pc["min_motion"], num_cameras=C)
    nets, pre = {}, {}
    for name, steps in pc["steps"].items():
        if steps <= 0:
            continue
        kw = PRETEXTS[name]
        pairs_te = sample_pairs(people.clip[te], pc["test_pairs"], keypoints=kp_det[:, te],
                                flip_ratio=kw["flip_ratio"], seed=args.seed + 2, **final)
        pairs_trev = sample_pairs(people.clip[tr], pc["test_pairs"], keypoints=kp_det[:, tr],
                                  flip_ratio=kw["flip_ratio"], seed=args.seed + 3, **final)
        seed_everything(args.seed)
        net = SyncNet(width=mc["width"], embed=mc["embed"], size=size)
        # fresh renders, all cross-camera pairs of two instants (learn.sync_tuples)
        hp, stage_info = sync_tuples(net, people, truth_cam[:, tr], tr, kp_det[:, tr], stages,
                                     steps, pc, size, args, device, kw, name)
        acc_te = pretext_accuracy(net, img_te, pairs_te, device=device, details=True)
        acc_tr = pretext_accuracy(net, img_tr, pairs_trev, device=device)
        acc_trr = pretext_accuracy(net, img_trr, pairs_trev, device=device)
        ok_s = acc_te.pop("sync_correct")
        acc_te.pop("flip_correct")
        gap = np.abs(pairs_te.offset)
        bins = np.where(pairs_te.sync, "0", np.where(gap < 16, "8-15", "16-30"))
        mot = np.array(people.motion_names)[people.motion[te][pairs_te.frame_a]]
        pre[name] = dict(held_out=acc_te, train=acc_tr, train_rerendered=acc_trr,
                         steps=len(hp["step_loss"]), stages=stage_info, stage_loss=hp["loss"],
                         seconds=hp["seconds"], sync_by_offset=accuracy_by(ok_s, bins),
                         sync_by_motion=accuracy_by(ok_s, mot), **kw)
        heads = [h for h, w in (("sync", kw["sync_weight"]), ("flip", kw["flip_weight"])) if w]
        print(f"pretext {name} ({hp['seconds']:.0f} s, {len(hp['step_loss'])} steps): held-out "
              + ", ".join(f"{h} {acc_te[h]:.1%} (train {acc_tr[h]:.1%}, re-rendered "
                        f"{acc_trr[h]:.1%})" for h in heads)
              + "; chance 50%")
        nets[name] = net
        if args.out:
            save_checkpoint(args.out / f"pretext_{name}.pt", net, config=cfg)

    # --- fine-tuning on a few 3D labels: from each pretext vs from scratch -------------------
    y_tr, _ = normalize_scale(truth_cam[:, tr])                            # (C, F, J, 3)
    y_tr = y_tr.reshape(-1, 17, 3)
    x_tr = img_tr.reshape(-1, 3, size, size)
    ev_idx = np.sort(np.random.default_rng(args.seed + 7).choice(
        C * len(te), min(fc["test_views"], C * len(te)), replace=False))
    x_te = img_te.reshape(-1, 3, size, size)[ev_idx]
    truth_te = truth_cam[:, te].reshape(-1, 17, 3)[ev_idx]
    inits = ["scratch"] + list(nets)
    rows = {}
    for budget in fc["budgets"]:
        runs = {k: [] for k in inits}
        mean_pose = []
        for s in range(fc["seeds"]):
            sd = args.seed + 1000 * s + budget
            lab = choose_labelled(np.arange(len(x_tr)), budget, seed=sd)
            seed_everything(sd)
            init = HeatmapNet(width=mc["width"], depth=mc["depth"])
            for name in inits:
                net = copy.deepcopy(init) if name == "scratch" else \
                    transfer_backbone(nets[name], init)
                finetune_pose(net, x_tr[lab], y_tr[lab], steps=fc["steps"],
                              batch_size=fc["batch"], lr=fc["lr"], seed=sd, device=device,
                              progress=not args.no_progress, desc=f"{name}@{budget}#{s}")
                runs[name].append(evaluate_pose(net, x_te, truth_te, device=device))
            mp = y_tr[lab].mean(0)
            mean_pose.append(float(np.nanmean(n_mpjpe(np.broadcast_to(mp, truth_te.shape),
                                                      truth_te, root=0)) * 1000))
        row = {}
        for name in inits:
            v = np.array([r["n_mpjpe_mm"] for r in runs[name]])
            pa = np.array([r["pa_mpjpe_mm"] for r in runs[name]])
            row[name] = dict(n_mpjpe_mm=float(v.mean()), n_mpjpe_std=float(v.std()),
                             pa_mpjpe_mm=float(pa.mean()), per_seed=v.tolist())
        for name in nets:
            row[f"{name}_over_scratch"] = row[name]["n_mpjpe_mm"] / row["scratch"]["n_mpjpe_mm"]
        row["mean_pose_n_mpjpe_mm"] = float(np.mean(mean_pose))
        rows[str(budget)] = row
        print(f"budget {budget:5d} labelled views, N-MPJPE mm (mean ± std, {fc['seeds']} "
              "seeds): " + ", ".join(f"{k} {row[k]['n_mpjpe_mm']:.1f} ± "
                                     f"{row[k]['n_mpjpe_std']:.1f}" for k in inits)
              + f"; mean pose {row['mean_pose_n_mpjpe_mm']:.1f}")
    top = pre.get("sync", pre.get("both", {})).get("held_out", {})
    topf = pre.get("flip", pre.get("both", {})).get("held_out", {})
    report = dict(example="train_sync_pretext", quick=args.quick, seed=args.seed,
                  device=str(device), config=cfg,
                  sync_accuracy_heldout=top.get("sync"),
                  flip_accuracy_heldout=topf.get("flip"),
                  heads_from=dict(sync="sync" if "sync" in pre else "both",
                                  flip="flip" if "flip" in pre else "both"),
                  data=dict(held_out_subject=S - 1, train_views=len(x_tr),
                            test_views=int(C * len(te)), eval_views=len(x_te),
                            frames=int(people.num_frames)),
                  render_seconds=t_render, diagnosis=diag, pretexts=pre, finetune=rows,
                  summary={f"budget_{b}": {f"{k}_n_mpjpe_mm": r[k]["n_mpjpe_mm"]
                                           for k in inits} for b, r in rows.items()},
                  seconds=time.perf_counter() - t_start)
    if args.report:
        write_report(args.report, report)
        print(f"report: {args.report}")
    print(f"total {report['seconds']:.0f} s")
    return report


if __name__ == "__main__":
    main()
