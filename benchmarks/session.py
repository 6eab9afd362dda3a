"""Sessions — one rig, many trials: calibrate once, label every frame (issue: sessions).

Synthetic: a 4-camera Human3.6M-like ring films procedural people (walk, reach, squat, turn,
random) in trials of different lengths; every fourth trial is nearly static (one pose, ±5 mm
sway); 2 px detector noise and 10 % outliers (uniform in the image). Rows: the session path
(:func:`geometry.calibrate_session` + :func:`geometry.triangulate_session`), the per-trial path
(:func:`geometry.reconstruct_rig` on each trial, as a user would run it today), and the
true-camera oracle (the same triangulation with the true cameras). Real: the Pose2Sim balancing
and static trials as one session against the Qualisys calibration, when ../shared/data exists.
"""
from __future__ import annotations

import time

import numpy as np

from ._report import write_report
from .rig import (GROUP_COLUMNS, _nmpjpe, _pair_errors, group_reprojection,
                  load_pose2sim_demo, pose2sim_views)

__all__ = ["run", "make_session"]


def make_session(num_trials: int, frames, *, static_every: int = 4, noise: float = 2.0,
                 outlier_ratio: float = 0.1, seed: int = 0):
    """A synthetic session: ``(rig, [x (C,T,17,2)], [X (T,17,3)], [is_static])``; ``frames`` is
    an int or a per-trial sequence of frame counts."""
    import pose
    from pose.motion import MOTIONS, make_motion
    rng = np.random.default_rng(seed)
    rig = pose.make_people_rig("h36m", 4, seed=seed)
    frames = [int(frames)] * num_trials if np.ndim(frames) == 0 else [int(f) for f in frames]
    xs, Xs, static = [], [], []
    for i, T in enumerate(frames):
        still = static_every > 0 and i % static_every == static_every - 1
        motion = MOTIONS[i % len(MOTIONS)]
        X = make_motion(motion, 1 if still else T, seed=seed * 1000 + i)
        X = X - np.array([*X[:, 0, :2].mean(0), 0.0]) + np.array([*rng.uniform(-1, 1, 2), 0.0])
        if still:
            X = X[[0] * T] + rng.normal(0, 0.005, (T, 1, 3))
        x = rig.project(X)
        x = x + rng.normal(0, noise, x.shape)
        out = rng.random(x.shape[:-1]) < outlier_ratio
        x[out] = rng.uniform((0, 0), rig.image_size, (int(out.sum()), 2))
        xs.append(x)
        Xs.append(X)
        static.append(still)
    return rig, xs, Xs, static


def _session_rows(case, rig, xs, Xs, static, args, rows, notes):
    import geometry as geo
    frames = sum(x.shape[1] for x in xs)
    # warm-up on a slice (compile outside the timings; first-call times are reported separately)
    geo.reconstruct_session([x[:, :60] for x in xs[:2]], rig.K, seed=args.seed)
    t0 = time.perf_counter()
    cal = geo.calibrate_session(xs, rig.K, seed=args.seed)
    t1 = time.perf_counter()
    labels = geo.triangulate_session(xs, cal)
    t2 = time.perf_counter()
    oracle_cal = geo.SessionCalibration(
        R=rig.R, t=rig.t, K=rig.K, focal_std=np.zeros(len(rig.K)),
        camera_valid=np.ones(len(rig.K), bool), metric=True,
        outlier_threshold_px=cal.outlier_threshold_px, valid=True)
    t3 = time.perf_counter()
    oracle = geo.triangulate_session(xs, oracle_cal)
    t4 = time.perf_counter()
    err = _pair_errors(cal.R, rig.R)
    per_trial = []
    for lab, ora, X in zip(labels, oracle, Xs):
        a = _nmpjpe(lab.X, X, lab.point_valid)
        b = _nmpjpe(ora.X, X, ora.point_valid)
        per_trial.append((a, b))
    pt = np.array(per_trial)
    rows.append({"case": case, "method": "epigeo session (calibrate once + label all)",
                 "frames": frames, "seconds": t2 - t0, "frames_per_s": frames / (t2 - t0),
                 "calib_frames_per_s": frames / (t1 - t0),
                 "label_frames_per_s": frames / (t2 - t1),
                 "median_rot_deg": float(np.median(err)), "max_rot_deg": float(np.max(err)),
                 "n_mpjpe_mm": float(np.mean(pt[:, 0])),
                 "vs_oracle": float(np.mean(pt[:, 0]) / np.mean(pt[:, 1])),
                 "worst_trial_vs_oracle": float(np.max(pt[:, 0] / pt[:, 1]))})
    rows.append({"case": case, "method": "oracle: true cameras, same triangulation",
                 "frames": frames, "seconds": t4 - t3, "frames_per_s": frames / (t4 - t3),
                 "label_frames_per_s": frames / (t4 - t3), "median_rot_deg": 0.0,
                 "max_rot_deg": 0.0, "n_mpjpe_mm": float(np.mean(pt[:, 1])), "vs_oracle": 1.0})
    st = np.array(static)
    notes[f"{case}: calibration"] = (f"{t1 - t0:.2f} s on {cal.summary['frames_for_calibration']}"
                                     f" selected of {frames} frames; labelling {t2 - t1:.2f} s")
    if st.any():
        notes[f"{case}: static trials' N-MPJPE / oracle"] = \
            ", ".join(f"{r:.3f}" for r in pt[st, 0] / pt[st, 1])
        notes[f"{case}: moving trials' N-MPJPE / oracle"] = \
            ", ".join(f"{r:.3f}" for r in pt[~st, 0] / pt[~st, 1])
    # the per-trial path, as a user runs it today
    if args.per_trial:
        t0 = time.perf_counter()
        errs, nm = [], []
        for x, X in zip(xs, Xs):
            rec = geo.reconstruct_rig(x, rig.K, seed=args.seed)
            errs.append(float(np.median(_pair_errors(rec.R, rig.R))) if rec.valid else np.inf)
            nm.append(_nmpjpe(rec.X, X, rec.point_valid) if rec.valid else np.nan)
        dt = time.perf_counter() - t0
        rows.append({"case": case, "method": "per-trial reconstruct_rig (each trial alone)",
                     "frames": frames, "seconds": dt, "frames_per_s": frames / dt,
                     "median_rot_deg": float(np.median(errs)), "max_rot_deg": float(np.max(errs)),
                     "n_mpjpe_mm": float(np.nanmean(nm)),
                     "vs_oracle": float(np.nanmean(nm) / np.mean(pt[:, 1]))})
        notes[f"{case}: per-trial median rotation errors (deg)"] = \
            ", ".join(f"{e:.3f}" for e in errs) + f" (best {min(errs):.3f}; session " \
            f"{np.median(err):.3f})"


def _pose2sim(args, rows, notes):
    import geometry as geo
    d = load_pose2sim_demo(notes)
    if d is None:
        return
    K, R_true = d["K"], d["R"]
    xs, confs = zip(*(pose2sim_views(d, k) for k in ("balancing_kp2d", "static_kp2d")))
    xs, confs = list(xs), list(confs)
    case = "Pose2Sim balancing (100 frames) + static (12 frames), real OpenPose, K known"
    names = d["joint_names"]
    for jb in (False, True):
        tag = "" if jb else " (joint_bias=False)"
        t0 = time.perf_counter()
        cal = geo.calibrate_session(xs, K, confidences=confs, min_confidence=0.2,
                                    seed=args.seed, joint_bias=jb)
        labels = geo.triangulate_session(xs, cal, confidences=confs, min_confidence=0.2)
        dt = time.perf_counter() - t0
        err = _pair_errors(cal.R, R_true)
        fin = np.concatenate([lab.residuals[np.isfinite(lab.residuals)] for lab in labels])
        row = {"case": case, "method": "epigeo session" + tag, "frames": 112, "seconds": dt,
               "frames_per_s": 112 / dt, "median_rot_deg": float(np.median(err)),
               "max_rot_deg": float(np.max(err)), "reproj_px": float(np.median(fin))}
        # per joint group, against the raw detections of both trials
        row.update(group_reprojection(
            cal.K, cal.R, cal.t, np.concatenate([lab.X for lab in labels]),
            np.concatenate(xs, axis=1), np.concatenate([lab.inliers for lab in labels], axis=1),
            names))
        rows.append(row)
        rec = geo.reconstruct_rig(xs[0], K, confidence=confs[0], min_confidence=0.2,
                                  seed=args.seed, joint_bias=jb)
        err1 = _pair_errors(rec.R, R_true)
        row = {"case": case, "method": "epigeo reconstruct_rig on balancing alone" + tag,
               "frames": 100, "median_rot_deg": float(np.median(err1)),
               "max_rot_deg": float(np.max(err1)),
               "reproj_px": rec.summary["median_reprojection_px"]}
        row.update(group_reprojection(rec.K, rec.R, rec.t, rec.X, xs[0], rec.inliers, names))
        rows.append(row)
    notes["Pose2Sim"] = ("rotation errors: median over the 6 camera pairs of the relative "
                         "rotation error against the Qualisys calibration; reproj_<group>_px: "
                         "median against the raw detections (the estimated joint bias "
                         "included); reproj_px: against the de-biased detections")


def run(args) -> str:
    args.per_trial = getattr(args, "per_trial", True)
    rows, notes = [], {}
    if args.quick:
        rig, xs, Xs, st = make_session(4, [800, 500, 1200, 600], seed=args.seed)
        _session_rows("synthetic, 4 trials (800/500/1200/600 frames; 1 static), 4 cams", rig,
                      xs, Xs, st, args, rows, notes)
    else:
        rig, xs, Xs, st = make_session(8, [3000, 1500, 4000, 2000, 2500, 1000, 3500, 2500],
                                       seed=args.seed)
        _session_rows("synthetic, 8 trials of 1,000-4,000 frames (2 static), 4 cams", rig, xs,
                      Xs, st, args, rows, notes)
        rig, xs, Xs, st = make_session(20, 5000, seed=args.seed + 1)
        args.per_trial = False
        _session_rows("synthetic, 20 trials x 5,000 frames (100 k frames; 5 static), 4 cams",
                      rig, xs, Xs, st, args, rows, notes)
    _pose2sim(args, rows, notes)
    notes["data"] = ("2 px noise, 10 % outliers uniform in the image; static trials: one pose "
                     "with ±5 mm sway; n_mpjpe_mm: mean over trials (one similarity per trial, "
                     "per-frame scale); vs_oracle: session / true cameras")
    return write_report("session" + ("_quick" if args.quick else ""), rows, args.out,
                        title="Sessions: calibrate once from all trials, label every frame",
                        columns=["case", "method", "frames", "seconds", "frames_per_s",
                                 "calib_frames_per_s", "label_frames_per_s", "median_rot_deg",
                                 "max_rot_deg", "n_mpjpe_mm", "vs_oracle",
                                 "worst_trial_vs_oracle", "reproj_px", *GROUP_COLUMNS],
                        notes=notes)
