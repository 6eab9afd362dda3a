"""Per-frame relative pose on many tiny problems: epigeo (one batched call) vs the loops people write.

Data: a Human3.6M-like 4-camera ring films human-like 17-joint poses; every frame of every camera
pair is one problem (2 px noise, 10 % gross outliers). Methods: epigeo
``estimate_relative_pose`` (Numba, all problems in one call; warm: compile time excluded);
OpenCV ``findFundamentalMat`` (FM_RANSAC, 3 px, 0.999) + ``E = K2ᵀ F K1`` + ``recoverPose`` in a
Python loop, and the same with USAC_MAGSAC; PoseLib ``estimate_relative_pose`` (calibrated
5-point LO-RANSAC + refinement, one call per problem) when installed; Kornia's batched 8-point
``find_fundamental`` (no RANSAC) + ``motion_from_essential_choose_solution`` on all problems at
once; with ``--device cuda`` also :func:`geometry.torch.estimate_relative_pose` on the GPU.
Errors: rotation error and translation-direction error (degrees) against the truth; every
method's figures are on the same subset of problems (the loops run on a subset for time; epigeo
is timed on the full set and also scored on that subset).
"""
from __future__ import annotations

import os
import time

import cv2
import numba
import numpy as np

from benchmarks._report import write_report


def _errors(R, t, R_true, t_true, ok):
    import geometry as geo
    re = np.where(ok, geo.rotation_error_deg(R, R_true), np.nan)
    te = np.where(ok, geo.direction_error_deg(t, t_true), np.nan)
    return re, te


def _row(method, n, sec, re, te, ok, base=None):
    row = {"method": method, "pairs": n, "seconds": sec, "pairs_per_s": n / sec,
           "median_rot_deg": float(np.nanmedian(re)) if np.isfinite(re).any() else np.nan,
           "median_t_deg": float(np.nanmedian(te)) if np.isfinite(te).any() else np.nan,
           "valid_%": 100.0 * float(np.mean(ok))}
    if base is not None:
        row["x_opencv_loop"] = row["pairs_per_s"] / base
    return row


def _opencv(sc, idx, method):
    n = len(idx)
    R = np.tile(np.eye(3), (n, 1, 1))
    t = np.zeros((n, 3))
    ok = np.zeros(n, bool)
    t0 = time.perf_counter()
    for k, b in enumerate(idx):
        x1, x2, K1, K2 = sc.x1[b], sc.x2[b], sc.K1[b], sc.K2[b]
        m = np.isfinite(x1).all(1) & np.isfinite(x2).all(1)
        if m.sum() < 8:
            continue
        F, inl = cv2.findFundamentalMat(x1[m], x2[m], method, 3.0, 0.999)
        if F is None or F.shape != (3, 3):
            continue
        E = K2.T @ F @ K1
        p1 = cv2.undistortPoints(x1[m].reshape(-1, 1, 2), K1, None)
        p2 = cv2.undistortPoints(x2[m].reshape(-1, 1, 2), K2, None)
        _, Rk, tk, _ = cv2.recoverPose(E, p1, p2, np.eye(3), mask=inl.copy())
        R[k], t[k], ok[k] = Rk, tk.ravel(), True
    return R, t, ok, time.perf_counter() - t0


def _poselib(sc, idx, size):
    import poselib
    n = len(idx)
    R = np.tile(np.eye(3), (n, 1, 1))
    t = np.zeros((n, 3))
    ok = np.zeros(n, bool)

    def cam(K):
        return {"model": "PINHOLE", "width": size[0], "height": size[1],
                "params": [K[0, 0], K[1, 1], K[0, 2], K[1, 2]]}

    t0 = time.perf_counter()
    for k, b in enumerate(idx):
        m = np.isfinite(sc.x1[b]).all(1) & np.isfinite(sc.x2[b]).all(1)
        pose, info = poselib.estimate_relative_pose(sc.x1[b][m], sc.x2[b][m], cam(sc.K1[b]),
                                                    cam(sc.K2[b]), {"max_reproj_error": 3.0}, {})
        if info.get("num_inliers", 0) >= 5:
            R[k], t[k], ok[k] = pose.R, pose.t, True
    return R, t, ok, time.perf_counter() - t0


def _kornia(sc, idx, device="cpu"):
    import torch
    from kornia.geometry.epipolar import find_fundamental, motion_from_essential_choose_solution
    from kornia.geometry.epipolar import essential_from_fundamental
    f64 = dict(dtype=torch.float64, device=device)
    x1 = torch.as_tensor(sc.x1[idx], **f64)
    x2 = torch.as_tensor(sc.x2[idx], **f64)
    K1 = torch.as_tensor(sc.K1[idx], **f64)
    K2 = torch.as_tensor(sc.K2[idx], **f64)
    t0 = time.perf_counter()
    F = find_fundamental(x1, x2, method="8POINT")
    E = essential_from_fundamental(F, K1, K2)
    R, t, _ = motion_from_essential_choose_solution(E, K1, K2, x1, x2)[:3]
    sec = time.perf_counter() - t0
    R, t = R.cpu().numpy(), t.cpu().numpy().reshape(-1, 3)
    ok = np.isfinite(R).all((1, 2)) & np.isfinite(t).all(1)
    return np.nan_to_num(R), t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-300), ok, sec


def run(args) -> str:
    import geometry as geo
    frames = 300 if args.quick else 3000
    sub = 600 if args.quick else 3000
    scene = geo.make_multiview_scene(frames, 17, noise=2.0, outlier_ratio=0.1, seed=args.seed)
    sc = geo.two_view_from_multiview(scene)
    B = sc.x1.shape[0]
    rng = np.random.default_rng(args.seed)
    idx = np.sort(rng.choice(B, size=min(sub, B), replace=False))
    geo.estimate_relative_pose(sc.x1[:8], sc.x2[:8], sc.K1[:8], sc.K2[:8])  # compile
    reps = []
    for _ in range(3):
        t0 = time.perf_counter()
        rel = geo.estimate_relative_pose(sc.x1, sc.x2, sc.K1, sc.K2, seed=args.seed)
        reps.append(time.perf_counter() - t0)
    sec = float(np.median(reps))
    Rc, tc, okc, sc_cv = _opencv(sc, idx, cv2.FM_RANSAC)
    base = len(idx) / sc_cv
    rows = []
    re, te = _errors(rel.R[idx], rel.t[idx], sc.R[idx], sc.t[idx], rel.valid[idx])
    rows.append(_row(f"epigeo estimate_relative_pose ({B} pairs, one call)", B, sec, re, te,
                     rel.valid[idx], base))
    re, te = _errors(Rc, tc, sc.R[idx], sc.t[idx], okc)
    rows.append(_row("OpenCV FM_RANSAC + recoverPose (Python loop)", len(idx), sc_cv, re, te, okc,
                     base))
    R, t, ok, s = _opencv(sc, idx, cv2.USAC_MAGSAC)
    re, te = _errors(R, t, sc.R[idx], sc.t[idx], ok)
    rows.append(_row("OpenCV USAC_MAGSAC + recoverPose (Python loop)", len(idx), s, re, te, ok,
                     base))
    try:
        R, t, ok, s = _poselib(sc, idx, scene.rig.image_size)
        re, te = _errors(R, t, sc.R[idx], sc.t[idx], ok)
        rows.append(_row("PoseLib estimate_relative_pose (5-point, Python loop)", len(idx), s,
                         re, te, ok, base))
    except ImportError:
        pass
    try:
        R, t, ok, s = _kornia(sc, idx)
        re, te = _errors(R, t, sc.R[idx], sc.t[idx], ok)
        rows.append(_row("Kornia find_fundamental 8-point (batched, no RANSAC)", len(idx), s,
                         re, te, ok, base))
    except ImportError:
        pass
    notes = {"data": f"{frames} frames × 6 camera pairs of a 4-camera ring, 17 joints, 2 px noise,"
                     f" 10 % outliers; errors on the same {len(idx)} pairs for every method",
             "threads": f"epigeo Numba threads: {numba.get_num_threads()} (of {os.cpu_count()} CPUs);"
                        " the Python loops run on one",
             "target": "epigeo ≥ 40× the OpenCV loop's pairs/s, median rotation error ≤ OpenCV's",
             "epigeo_vs_opencv_rotation": "epigeo {:.3f}° vs OpenCV {:.3f}°".format(
                 rows[0]["median_rot_deg"], rows[1]["median_rot_deg"])}
    if args.device == "cuda":
        rows.extend(_cuda_rows(args, base))
    return write_report("two_view", rows, args.out,
                        title="Per-frame relative pose: pairs per second and accuracy",
                        columns=["method", "pairs", "seconds", "pairs_per_s", "x_opencv_loop",
                                 "median_rot_deg", "median_t_deg", "valid_%"],
                        notes=notes, plot=("method", "pairs_per_s"))


def _cuda_rows(args, base):
    import torch
    if not torch.cuda.is_available():
        print("[two_view] --device cuda: no CUDA device here; GPU rows skipped")
        return []
    import geometry as geo
    import geometry.torch as gt
    n = 100_000 if args.quick else 1_000_000
    scene = geo.make_multiview_scene(n // 6 + 1, 17, noise=2.0, outlier_ratio=0.1, seed=args.seed)
    sc = geo.two_view_from_multiview(scene)
    dev = dict(device="cuda", dtype=torch.float32)
    x1, x2 = torch.as_tensor(sc.x1[:n], **dev), torch.as_tensor(sc.x2[:n], **dev)
    K1, K2 = torch.as_tensor(sc.K1[:n], **dev), torch.as_tensor(sc.K2[:n], **dev)
    gt.estimate_relative_pose(x1[:1024], x2[:1024], K1[:1024], K2[:1024])
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    rel = gt.estimate_relative_pose(x1, x2, K1, K2, seed=args.seed)
    torch.cuda.synchronize()
    sec = time.perf_counter() - t0
    ok = rel.valid.cpu().numpy()
    re, te = _errors(rel.R.double().cpu().numpy(), rel.t.double().cpu().numpy(), sc.R[:n],
                     sc.t[:n], ok)
    return [_row(f"epigeo geometry.torch on CUDA (float32, {n} pairs)", n, sec, re, te, ok, base)]
