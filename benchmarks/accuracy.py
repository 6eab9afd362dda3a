"""3D accuracy past the calibrated oracle (issue #19): the skeleton- and time-aware robust step
(:func:`geometry.refine_skeleton`) beside the true-camera oracle with plain robust DLT.

Cases:

- **ring**: the synthetic Human3.6M-like 4-camera ring of ``epigeo demo``
  (:func:`learn.demo.make_synthetic_case`: 2 subjects × 5 motions, 2 px noise, 10 % outliers,
  50 fps), and the same with 5 % left/right swaps (each camera, frame and left/right pair swapped
  with probability 0.05).
- **CMU mocap** 131_01 (real motion, 120 fps → 60 fps) filmed by a virtual random 4-camera
  rig with detector noise (3 px, 5 % outliers, 2 % missing, 1 % swaps).
- **Pose2Sim balancing** (real OpenPose BODY_25B, Qualisys calibration): no 3D ground truth;
  median reprojection error per joint group against the raw detections (all observations with
  confidence > 0.2), and the per-(camera, joint) bias/noise estimates.

Methods: ``oracle`` = true cameras + robust DLT (:func:`learn.pseudo_labels.make_pseudo_labels`
``mode="calibrated"``, as ``epigeo demo``); ``refine_skeleton`` with every prior, and with each
prior switched off (the ablation shows each prior's effect); the self-calibrated rig
(:func:`geometry.reconstruct_rig`) + ``refine_skeleton``. N-MPJPE (mm): per camera, the
root-relative pose in that camera's frame with a per-pose optimal scale (as ``epigeo demo``),
mean over poses. ``median_rot_deg``: median relative-rotation error of the camera pairs
(0 for true cameras). ``frames_per_s``: frames / wall seconds of the 3D step alone.

Offsets: rows from :mod:`benchmarks.accuracy_offsets` (``offset_rows(quick)``) when present.
"""
from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np

from benchmarks._report import write_report
from benchmarks.rig import (GROUP_COLUMNS, _pair_errors, group_reprojection,
                            load_pose2sim_demo, pose2sim_views)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

ABLATIONS = [("refine_skeleton (all priors)", {}),
             ("refine_skeleton, no bone prior", dict(bone_weight=0.0)),
             ("refine_skeleton, no smoothness", dict(smooth_weight=0.0)),
             ("refine_skeleton, no view rejection", dict(reject=False)),
             ("refine_skeleton, no swap repair", dict(swap_pairs=None)),
             ("refine_skeleton, all priors off", dict(bone_weight=0.0, smooth_weight=0.0,
                                                      reject=False, swap_pairs=None))]


def _n_mpjpe(X, valid, X_true, R_est, t_est, R_true, t_true) -> float:
    """Mean per-pose N-MPJPE (mm) of the per-camera root-relative targets."""
    import pose
    from learn.demo import camera_targets
    pred = camera_targets(X, R_est, t_est)
    gt = camera_targets(X_true, R_true, t_true)
    m = np.broadcast_to(valid & valid[:, :1], pred.shape[:-1])
    return 1000.0 * float(np.nanmean(pose.n_mpjpe(pred, gt, mask=m)))


def _oracle(x, K, R, t, conf):
    from learn.pseudo_labels import make_pseudo_labels
    lab = make_pseudo_labels(x, K, conf, mode="calibrated", cameras=(R, t))
    return lab.X, (lab.weights > 0).any(0)


def _refine(x, K, R, t, conf, skeleton, segments, **extra):
    import geometry as geo
    kw = dict(bones=skeleton.bone_array, swap_pairs=np.array(skeleton.flip_pairs),
              segments=segments, confidence=conf)
    kw.update(extra)
    t0 = time.perf_counter()
    res = geo.refine_skeleton(x, K, R, t, **kw)
    return res, time.perf_counter() - t0


def _truth_case(case, people, rows, notes, *, self_calibrate=True, ablate=True):
    """Rows for one synthetic case with ground truth: oracle, ablations, self-calibrated rig."""
    import geometry as geo
    rig, x, conf = people.rig, people.x, people.confidence
    T = x.shape[1]
    seg = people.clip
    t0 = time.perf_counter()
    Xo, vo = _oracle(x, rig.K, rig.R, rig.t, conf)
    so = time.perf_counter() - t0
    base = _n_mpjpe(Xo, vo, people.X, rig.R, rig.t, rig.R, rig.t)
    rows.append({"case": case, "method": "oracle: true cameras, robust DLT", "n_mpjpe_mm": base,
                 "vs_oracle": 1.0, "median_rot_deg": 0.0, "valid_%": 100.0 * vo.mean(),
                 "frames_per_s": T / so})
    full = None
    for name, extra in (ABLATIONS if ablate else ABLATIONS[:1]):
        res, sec = _refine(x, rig.K, rig.R, rig.t, conf, people.skeleton, seg, **extra)
        e = _n_mpjpe(res.X, res.valid, people.X, rig.R, rig.t, rig.R, rig.t)
        row = {"case": case, "method": f"true cameras + {name}", "n_mpjpe_mm": e,
               "vs_oracle": e / base, "median_rot_deg": 0.0,
               "valid_%": 100.0 * res.valid.mean(), "swaps_repaired": int(res.swaps.sum()),
               "frames_per_s": T / sec}
        if people.swapped.any() and res.swaps.size:
            pairs = np.array(people.skeleton.flip_pairs)
            true = people.swapped[:, :, pairs[:, 0]]
            row["swap_precision"] = float((res.swaps & true).sum() / max(1, res.swaps.sum()))
        rows.append(row)
        full = res if full is None else full
    if full is not None:
        nz = full.noise
        notes[f"{case}: noise estimate"] = (
            f"per-(camera, joint) noise from the final residuals: median {np.median(nz.noise):.2f}"
            f" px (range {nz.noise.min():.2f}–{nz.noise.max():.2f}; detector σ = "
            f"{people.noise.sigma_px} px, residuals of a fit are smaller by the dof), |bias| "
            f"max {np.abs(nz.bias).max():.2f} px (none injected)")
    if self_calibrate:
        t0 = time.perf_counter()
        rec = geo.reconstruct_rig(x, rig.K, confidence=conf)
        rsec = time.perf_counter() - t0
        rot = float(np.median(_pair_errors(rec.R, rig.R)))
        e0 = _n_mpjpe(rec.X, rec.point_valid, people.X, rec.R, rec.t, rig.R, rig.t)
        rows.append({"case": case, "method": "self-calibrated rig (reconstruct_rig's 3D)",
                     "n_mpjpe_mm": e0, "vs_oracle": e0 / base, "median_rot_deg": rot,
                     "valid_%": 100.0 * rec.point_valid.mean(), "frames_per_s": T / rsec})
        res, sec = _refine(x, rec.K, rec.R, rec.t, conf, people.skeleton, seg)
        e = _n_mpjpe(res.X, res.valid, people.X, rec.R, rec.t, rig.R, rig.t)
        rows.append({"case": case, "method": "self-calibrated rig + refine_skeleton",
                     "n_mpjpe_mm": e, "vs_oracle": e / base, "median_rot_deg": rot,
                     "valid_%": 100.0 * res.valid.mean(),
                     "swaps_repaired": int(res.swaps.sum()), "frames_per_s": T / sec})
        t0 = time.perf_counter()
        loop = geo.refine_rig_skeleton(x, rec.K, rec.R, rec.t, bones=people.skeleton.bone_array,
                                       swap_pairs=np.array(people.skeleton.flip_pairs),
                                       segments=seg, confidence=conf)
        sec2 = time.perf_counter() - t0
        res2, R2, t2 = loop.refinement, loop.R, loop.t
        e2 = _n_mpjpe(res2.X, res2.valid, people.X, R2, t2, rig.R, rig.t)
        rows.append({"case": case, "method": "self-calibrated rig + refine_rig_skeleton "
                     "(bundle adjustment on the repaired inliers, skeleton again)",
                     "n_mpjpe_mm": e2, "vs_oracle": e2 / base,
                     "median_rot_deg": float(np.median(_pair_errors(R2, rig.R))),
                     "valid_%": 100.0 * res2.valid.mean(),
                     "swaps_repaired": int(res2.swaps.sum()), "frames_per_s": T / sec2})


def _ring(args, rows, notes):
    import pose
    from learn.demo import make_synthetic_case
    fpc = 20 if args.quick else 100
    people = make_synthetic_case(2, fpc, seed=args.seed)
    T = people.x.shape[1]
    _truth_case(f"ring 4 cams, {T} frames, 2 px, 10 % outliers", people, rows, notes)
    noise = pose.DetectorNoise(sigma_px=2.0, outlier_ratio=0.1, missing_ratio=0.0,
                               swap_ratio=0.05)
    swapped = pose.make_people(2, pose.MOTIONS, fpc, noise=noise, seed=args.seed,
                               rig=pose.make_people_rig("h36m", 4, seed=args.seed))
    _truth_case(f"ring 4 cams, {T} frames, 2 px, 10 % outliers, 5 % L/R swaps", swapped, rows,
                notes)


def _cmu(args, rows, notes):
    import pose
    from pose.bvh import bvh_to_h36m
    path = SHARED / "cmu_mocap_131" / "scaled_131_01.bvh"
    if not path.exists():
        notes["CMU"] = "skipped: ../shared/data absent"
        return
    X = bvh_to_h36m(path)[::2]                                   # 120 → 60 fps
    X = X[:200] if args.quick else X
    noise = pose.DetectorNoise(sigma_px=3.0, outlier_ratio=0.05, missing_ratio=0.02,
                               swap_ratio=0.01)
    people = pose.film_motion(X, pose.make_people_rig("random", 4, seed=args.seed), noise=noise,
                              fps=60.0, center=True, seed=args.seed)
    _truth_case(f"CMU 131_01, {len(X)} frames at 60 fps, random rig, 3 px, 5 % outliers, "
                "2 % missing, 1 % swaps", people, rows, notes, ablate=not args.quick)


def _pose2sim(args, rows, notes):
    import geometry as geo
    import pose
    d = load_pose2sim_demo(notes)
    if d is None:
        return
    K, R, t = d["K"], d["R"], d["t"]
    x, conf = pose2sim_views(d, "balancing_kp2d")
    conf = np.where(conf > 0.2, conf, 0.0)
    names = [str(n) for n in d["joint_names"]]
    sk = pose.skeletons.BODY_25B
    if list(sk.names) != names:
        notes["Pose2Sim"] = "skipped: joint order differs from BODY_25B"
        return
    case = "Pose2Sim balancing (real OpenPose), Qualisys cameras, 100 frames"
    T = x.shape[1]
    use = conf > 0
    t0 = time.perf_counter()
    Xo, vo = _oracle(x, K, R, t, conf)
    so = time.perf_counter() - t0
    Xo = np.where(vo[..., None], Xo, np.nan)
    rows.append({"case": case, "method": "oracle: Qualisys cameras, robust DLT",
                 "median_rot_deg": 0.0, "valid_%": 100.0 * vo.mean(), "frames_per_s": T / so,
                 **group_reprojection(K, R, t, Xo, x, use, names)})
    res = None
    for name, extra in ABLATIONS:
        r, sec = _refine(x, K, R, t, conf, sk, None, **extra)
        Xr = np.where(r.valid[..., None], r.X, np.nan)
        rows.append({"case": case, "method": f"Qualisys cameras + {name}", "median_rot_deg": 0.0,
                     "valid_%": 100.0 * r.valid.mean(), "swaps_repaired": int(r.swaps.sum()),
                     "frames_per_s": T / sec, **group_reprojection(K, R, t, Xr, x, use, names)})
        res = r if res is None else res
    rec = geo.reconstruct_rig(x, K, confidence=conf, min_confidence=0.2, seed=args.seed)
    rot = float(np.median(_pair_errors(rec.R, R)))
    r, sec = _refine(x, rec.K, rec.R, rec.t, conf, sk, None)
    Xr = np.where(r.valid[..., None], r.X, np.nan)
    rows.append({"case": case, "method": "self-calibrated rig + refine_skeleton",
                 "median_rot_deg": rot, "valid_%": 100.0 * r.valid.mean(),
                 "swaps_repaired": int(r.swaps.sum()), "frames_per_s": T / sec,
                 **group_reprojection(rec.K, rec.R, rec.t, Xr, x, use, names)})
    nz = res.noise
    groups = {"hips": (11, 12), "shoulders": (5, 6), "wrists": (9, 10), "ankles": (15, 16)}
    notes["Pose2Sim per-(camera, joint) estimates"] = "; ".join(
        f"{g}: |bias| " + ", ".join(f"cam{c + 1} {np.linalg.norm(nz.bias[c, list(j)], axis=-1).mean():.1f}"
                                    for c in range(len(K)))
        + " px, noise " + ", ".join(f"{nz.noise[c, list(j)].mean():.1f}" for c in range(len(K)))
        + " px" for g, j in groups.items())


def offset_rows(quick: bool) -> list[dict]:
    """Time-offset rows from :mod:`benchmarks.accuracy_offsets` (written by another module;
    empty when it is absent)."""
    if importlib.util.find_spec("benchmarks.accuracy_offsets") is None:
        return []
    from benchmarks import accuracy_offsets
    return accuracy_offsets.offset_rows(quick)


def speed_row(args, rows):
    """Frames per second of ``refine_skeleton`` on a 1000-frame, 4-camera, 17-joint trial."""
    from learn.demo import make_synthetic_case
    people = make_synthetic_case(2, 100, seed=args.seed + 1)
    rig = people.rig
    res, sec = _refine(people.x, rig.K, rig.R, rig.t, people.confidence, people.skeleton,
                       people.clip)
    cpu0 = time.process_time()
    _refine(people.x, rig.K, rig.R, rig.t, people.confidence, people.skeleton, people.clip)
    cpu = time.process_time() - cpu0
    rows.append({"case": "speed: 1000 frames, 4 cams, 17 joints", "method":
                 "refine_skeleton (all priors)", "frames_per_s": people.x.shape[1] / sec,
                 "cpu_frames_per_s": people.x.shape[1] / cpu, "rounds": res.rounds,
                 "gn_iterations": res.iterations})


def run(args) -> str:
    rows, notes = [], {}
    _ring(args, rows, notes)
    _cmu(args, rows, notes)
    _pose2sim(args, rows, notes)
    if not args.quick:
        speed_row(args, rows)
    try:
        rows.extend(offset_rows(args.quick))
    except Exception as exc:      # another module's failure must not hide these rows
        notes["offsets"] = f"offset_rows failed: {type(exc).__name__}: {exc}"
    notes["targets"] = ("ring: N-MPJPE ≤ 0.8× the oracle (≤ 0.85× with 5 % swaps), camera "
                        "rotation ≤ 0.05°; noise-free parity with the plain solve (tests)")
    notes["N-MPJPE"] = ("per camera, root-relative, per-pose optimal scale (as epigeo demo); "
                        "Pose2Sim has no 3D truth: reprojection medians per joint group instead")
    return write_report(
        "accuracy", rows, args.out, title="3D accuracy: skeleton/time priors vs the oracle",
        columns=["case", "method", "n_mpjpe_mm", "vs_oracle", "median_rot_deg", "valid_%",
                 "swaps_repaired", "swap_precision", *GROUP_COLUMNS, "max_offset_err_frames",
                 "frames_per_s", "cpu_frames_per_s"],
        notes=notes, plot=None)
