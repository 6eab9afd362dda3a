"""Several people (#17): association across cameras, calibration from the crowd, 3D per person.

Synthetic: :func:`pose.synthetic_crowd.make_crowd_scene` — a 4-camera Human3.6M-like ring, 3 or
6 people walking crossing circles (people entering/leaving, mutual occlusion), 2 px detector
noise, 10 % outliers (20–150 px), 5 % false detections, detection slots shuffled in every
camera-frame. Rows: :func:`geometry.reconstruct_people` (cameras unknown, identities unknown) and
the oracle (true cameras, true identities, the same robust triangulation: multi-view DLT
dropping views over the same outlier threshold, confidence-weighted). ``assignment_accuracy``
is identity-permutation invariant over true detections, false detections counting as right when
left unassigned; ``n_mpjpe_mm`` is per person and frame (root-relative, per-frame optimal scale)
after one similarity for the whole scene, averaged over people.

Real, when ../shared/data is present: the Pose2Sim multi-person trial
(``S00_P01_T02_Participants1-2``, every OpenPose detection read with
:func:`pose.read_openpose_cameras` ``(all_people=True)``) and the balancing trial with all its
people (a bystander in cam01/cam02), camera rotation errors against the Qualisys calibration
(used only for intrinsics and lens distortion), next to the largest-person path
(:func:`geometry.reconstruct_rig` on the largest-box detections).
"""
from __future__ import annotations

import os
import time

import numpy as np

from ._report import write_report
from .rig import SHARED, _pair_errors, pose2sim_views

__all__ = ["run", "scene_nmpjpe"]

MULTI = ("raw/Pose2Sim/S00_Demo_BatchSession/S00_P01_MultiParticipants/"
         "S00_P01_T02_Participants1-2/pose")


def _match_people(identity, truth):
    """Estimated person → true person (Hungarian on detection agreement), ``-1`` if unmatched."""
    from scipy.optimize import linear_sum_assignment
    ne = int(identity.max()) + 1 if identity.max() >= 0 else 0
    nt = int(truth.max()) + 1
    agree = np.zeros((max(ne, 1), nt))
    m = (identity >= 0) & (truth >= 0)
    np.add.at(agree, (identity[m], truth[m]), 1)
    r, c = linear_sum_assignment(-agree)
    out = np.full(max(ne, 1), -1)
    out[r] = c
    return out[:ne]


def scene_nmpjpe(X, valid, X_true, present):
    """N-MPJPE (mm) of ``X (T, N, J, 3)`` against ``X_true (T, N, J, 3)`` (same person order):
    one similarity (Umeyama) for the whole scene, then per person and frame root-relative
    (joint 0) with the per-frame optimal scale; mean over frames, then over people."""
    import pose
    from geometry.alignment import apply_similarity, umeyama
    T, N, J = valid.shape
    m = valid & present[..., None] & np.isfinite(X).all(-1)
    sim = umeyama(np.nan_to_num(X).reshape(-1, 3), X_true.reshape(-1, 3), m.reshape(-1))
    A = apply_similarity(sim, np.nan_to_num(X).reshape(-1, 3)).reshape(T, N, J, 3)
    per = []
    for n in range(N):
        mm = m[:, n] & m[:, n, :1]
        if mm.any():
            per.append(1000.0 * float(np.nanmean(pose.n_mpjpe(A[:, n], X_true[:, n], root=0,
                                                                mask=mm))))
    return float(np.mean(per)) if per else float("nan")


def _oracle(sc, threshold):
    """True cameras + true identities, the same robust triangulation → ``(T,N,J,3)``, valid."""
    import geometry as geo
    C, T, P, J, _ = sc.x.shape
    N = sc.num_people
    xs = np.full((C, N, T, J, 2), np.nan)
    ws = np.zeros((C, N, T, J))
    c, t, p = np.nonzero(sc.identity >= 0)
    xs[c, sc.identity[c, t, p], t] = sc.x[c, t, p]
    ws[c, sc.identity[c, t, p], t] = sc.confidence[c, t, p]
    obs = np.isfinite(xs).all(-1) & (ws > 0)
    tri = geo.triangulate_multiview(geo.projection_matrix(sc.rig.K, sc.rig.R, sc.rig.t),
                                    xs.reshape(C, -1, 2), mask=obs.reshape(C, -1),
                                    weights=ws.reshape(C, -1), method="dlt", threshold=threshold)
    v = (tri.valid & (tri.num_views >= 2)).reshape(N, T, J).transpose(1, 0, 2)
    X = np.where(v[..., None], tri.X.reshape(N, T, J, 3).transpose(1, 0, 2, 3), np.nan)
    return X, v


def _synthetic(args, rows, notes, num_people, T):
    import geometry as geo
    from pose.synthetic_crowd import assignment_accuracy, make_crowd_scene
    sc = make_crowd_scene(num_people, 4, T, noise_px=2.0, outlier_rate=0.1,
                          false_detection_rate=0.05, seed=args.seed)
    case = (f"synthetic, 4 cams, {num_people} people, {T} frames, 2 px, 10 % outliers, "
            f"5 % false detections")
    geo.reconstruct_people(sc.x[:, :120], sc.confidence[:, :120], sc.rig.K, seed=args.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    rec = geo.reconstruct_people(sc.x, sc.confidence, sc.rig.K, seed=args.seed)
    sec, cpu = time.perf_counter() - t0, time.process_time() - c0
    acc = assignment_accuracy(rec.identity, sc.identity, sc.false_detection)
    err = _pair_errors(rec.R, sc.rig.R)
    match = _match_people(rec.identity, sc.identity)
    X = np.full(sc.points3d.shape, np.nan)
    v = np.zeros(sc.points3d.shape[:3], bool)
    for n, k in enumerate(match):
        if k >= 0:
            X[:, k], v[:, k] = rec.points3d[:, n], rec.valid3d[:, n]
    nm = scene_nmpjpe(X, v, sc.points3d, sc.present)
    thr = rec.summary["calibration"]["outlier_threshold_px"]
    Xo, vo = _oracle(sc, thr)
    no = scene_nmpjpe(Xo, vo, sc.points3d, sc.present)
    rows.append({"case": case, "method": "epigeo reconstruct_people", "people": rec.num_people,
                 "true_people": num_people, "assignment_accuracy": acc,
                 "median_rot_deg": float(np.median(err)), "max_rot_deg": float(np.max(err)),
                 "n_mpjpe_mm": nm, "vs_oracle": nm / no, "seconds": sec, "cpu_seconds": cpu,
                 "frames_per_s": T / sec})
    rows.append({"case": case, "method": "oracle: true cameras + identities, same triangulation",
                 "people": num_people, "true_people": num_people, "assignment_accuracy": 1.0,
                 "median_rot_deg": 0.0, "max_rot_deg": 0.0, "n_mpjpe_mm": no, "vs_oracle": 1.0})
    s = rec.summary
    notes[case] = (f"{s['detections']} detections ({int(sc.false_detection.sum())} false), "
                   f"{s['unassigned']} left unassigned; 3D tracks {s['tracks3d']}, people found "
                   f"{rec.num_people}; track lengths {rec.track_length.tolist()}; "
                   f"{s['track_switches_repaired']} 2D-track person changes repaired; "
                   f"{s['person_frames_one_camera']} person-frames seen by one camera")


def _pose2sim(args, rows, notes):
    import geometry as geo
    import pose
    root = SHARED / "pose2sim_demo"
    if not (root / "pose2sim_demo.npz").exists():
        notes["Pose2Sim"] = "skipped: ../shared/data absent"
        return
    cal = pose.read_calibration_toml(root / "raw" / "Calib_qualisys.toml")
    K, R_true = cal.K, cal.R
    kp, _ = pose.read_openpose_cameras(root / MULTI, all_people=True)
    x, conf = kp[..., :2].copy(), np.nan_to_num(kp[..., 2])
    x[~(conf > 0)] = np.nan
    for c in range(len(K)):
        x[c] = geo.undistort_points(x[c], K[c], cal.dist[c])
    case = "Pose2Sim S00_P01_T02_Participants1-2 (real OpenPose, all people), K known"
    t0 = time.perf_counter()
    rec = geo.reconstruct_people(x, conf, K, min_confidence=0.2, seed=args.seed)
    sec = time.perf_counter() - t0
    err = _pair_errors(rec.R, R_true)
    views = [(rec.identity == n).any(-1).any(-1).sum() for n in range(rec.num_people)]
    rows.append({"case": case, "method": "epigeo reconstruct_people", "people": rec.num_people,
                 "median_rot_deg": float(np.median(err)), "max_rot_deg": float(np.max(err)),
                 "seconds": sec})
    notes[case] = (f"{rec.num_people} 3D tracks, lengths {rec.track_length.tolist()} of "
                   f"{x.shape[1]} frames, cameras per person {[int(v) for v in views]}, median "
                   f"reprojection px {np.round(rec.person_reprojection_px, 2).tolist()}; "
                   f"tracks not counted (too few cameras): "
                   f"{rec.summary.get('partial_tracks', [])}")
    rec2 = geo.reconstruct_people(x, conf, K, min_confidence=0.2, num_people=2, seed=args.seed)
    err2 = _pair_errors(rec2.R, R_true)
    views2 = [(rec2.identity == n).any(-1).any(-1).sum() for n in range(rec2.num_people)]
    rows.append({"case": case, "method": "epigeo reconstruct_people, num_people=2",
                 "people": rec2.num_people, "median_rot_deg": float(np.median(err2)),
                 "max_rot_deg": float(np.max(err2))})
    notes[case + ", num_people=2"] = (f"track lengths {rec2.track_length.tolist()}, cameras "
                                      f"per person {[int(v) for v in views2]}")
    d = np.load(root / "pose2sim_demo.npz")
    case = "Pose2Sim balancing (real OpenPose, bystander in cam01/cam02), K known"
    xa, ca = pose2sim_views(d, "balancing_kp2d_all_people")
    rec = geo.reconstruct_people(xa, ca, K, min_confidence=0.2, seed=args.seed)
    err = _pair_errors(rec.R, R_true)
    rows.append({"case": case, "method": "epigeo reconstruct_people (all people)",
                 "people": rec.num_people, "median_rot_deg": float(np.median(err)),
                 "max_rot_deg": float(np.max(err))})
    x1, c1 = pose2sim_views(d, "balancing_kp2d")
    r1 = geo.reconstruct_rig(x1, K, confidence=c1, min_confidence=0.2, seed=args.seed)
    err1 = _pair_errors(r1.R, R_true)
    rows.append({"case": case, "method": "reconstruct_rig on the largest person",
                 "people": 1, "median_rot_deg": float(np.median(err1)),
                 "max_rot_deg": float(np.max(err1))})
    notes[case] = (f"all-people path: {rec.num_people} people, track lengths "
                   f"{rec.track_length.tolist()}, {rec.summary['calibration_frames']} "
                   f"person-frames used for calibration (a still person gives one)")


def run(args) -> str:
    rows, notes = [], {}
    T = 300 if args.quick else 1000
    _synthetic(args, rows, notes, 3, T)
    _synthetic(args, rows, notes, 6, T)
    _pose2sim(args, rows, notes)
    notes["timing"] = (f"warm (a 120-frame call first); seconds = wall clock, cpu_seconds = this "
                       f"process's CPU time (all threads); 1-minute load average at the end "
                       f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    notes["targets (#17)"] = ("3 people: accuracy >= 0.99, rotation <= 0.1 deg, N-MPJPE within "
                              "10 % of the oracle; 6 people: accuracy >= 0.97; Pose2Sim "
                              "multi-person: 2 persistent tracks, median rotation <= 1.5 deg; "
                              "balancing with all people no worse than the largest person")
    return write_report("people", rows, args.out, title="Several people — python -m benchmarks "
                        "people", columns=["case", "method", "people", "true_people",
                                           "assignment_accuracy", "median_rot_deg",
                                           "max_rot_deg", "n_mpjpe_mm", "vs_oracle", "seconds",
                                           "cpu_seconds", "frames_per_s"], notes=notes)
