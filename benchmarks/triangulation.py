"""Two-view triangulation of many points: epigeo vs OpenCV and Kornia.

Data: one calibrated camera pair of the 4-camera ring, human-like points, 1 px noise (1M points;
``--quick`` 50k). Methods: epigeo ``triangulate_optimal`` (Hartley–Sturm, Numba, batched) and
``triangulate_dlt``; OpenCV ``correctMatches`` + ``triangulatePoints`` in one call on all points
(its fastest use) and in a per-frame loop of 17 points (how a per-frame pipeline calls it);
Kornia ``triangulate_points`` (DLT, torch CPU, all points at once); with ``--device cuda`` the
``geometry.torch`` versions on the GPU. Errors: RMS reprojection error against the observations
(px; the optimal method minimises it) and 3D error against the truth (mm).
"""
from __future__ import annotations

import time

import cv2
import numpy as np

from benchmarks._report import timed, write_report


def _scene(n, seed):
    import geometry as geo
    frames = -(-n // 17)
    sc = geo.make_multiview_scene(frames, 17, noise=1.0, outlier_ratio=0.0, seed=seed)
    rig = sc.rig
    P = geo.projection_matrix(rig.K, rig.R, rig.t)
    x1 = sc.x[0].reshape(-1, 2)[:n]
    x2 = sc.x[1].reshape(-1, 2)[:n]
    return P[0], P[1], x1, x2, sc.X.reshape(-1, 3)[:n]


def _reproj(P1, P2, X, x1, x2):
    Xh = np.concatenate([X, np.ones((len(X), 1))], 1)
    e = []
    for P, x in ((P1, x1), (P2, x2)):
        p = Xh @ P.T
        e.append(np.sum((p[:, :2] / p[:, 2:3] - x) ** 2, 1))
    return np.sqrt(0.5 * (e[0] + e[1]))


def _row(method, n, sec, X, ok, P1, P2, x1, x2, Xt, base=None):
    row = {"method": method, "points": n, "seconds": sec, "points_per_s": n / sec,
           "median_reproj_px": float(np.median(_reproj(P1, P2, X[ok], x1[ok], x2[ok]))),
           "median_3d_err_mm": 1000 * float(np.median(np.linalg.norm(X[ok] - Xt[ok], axis=1))),
           "valid_%": 100 * float(ok.mean())}
    if base is not None:
        row["x_opencv"] = row["points_per_s"] / base
    return row


def _opencv(P1, P2, x1, x2, F):
    c1, c2 = cv2.correctMatches(F, x1[None], x2[None])
    Xh = cv2.triangulatePoints(P1, P2, c1[0].T, c2[0].T)
    return (Xh[:3] / Xh[3]).T


def _opencv_loop(P1, P2, x1, x2, F, per=17):
    out = np.empty((len(x1), 3))
    for a in range(0, len(x1), per):
        out[a:a + per] = _opencv(P1, P2, x1[a:a + per], x2[a:a + per], F)
    return out


def run(args) -> str:
    import geometry as geo
    n = 50_000 if args.quick else 1_000_000
    P1, P2, x1, x2, Xt = _scene(n, args.seed)
    F = geo.fundamental_from_projections(P1, P2)
    geo.triangulate_optimal(x1[:100], x2[:100], P1, P2)          # compile
    geo.triangulate_dlt(np.stack([P1, P2]), np.stack([x1[:100], x2[:100]]))
    rep = 1 if args.quick else 3
    opt, s_opt = timed(geo.triangulate_optimal, x1, x2, P1, P2, repeat=rep)
    Xc, s_cv = timed(_opencv, P1, P2, x1, x2, F, repeat=rep)
    base = n / s_cv
    rows = [_row("epigeo triangulate_optimal (Hartley–Sturm)", n, s_opt, opt.X, opt.valid, P1, P2,
                 x1, x2, Xt, base)]
    dlt, s_dlt = timed(geo.triangulate_dlt, np.stack([P1, P2]), np.stack([x1, x2]), repeat=rep)
    rows.append(_row("epigeo triangulate_dlt", n, s_dlt, dlt.X, dlt.valid, P1, P2, x1, x2, Xt,
                     base))
    ok = np.isfinite(Xc).all(1)
    rows.append(_row("OpenCV correctMatches + triangulatePoints (one call)", n, s_cv, Xc, ok, P1,
                     P2, x1, x2, Xt, base))
    m = min(n, 17 * 3000)
    Xl, s_l = timed(_opencv_loop, P1, P2, x1[:m], x2[:m], F)
    rows.append(_row("OpenCV correctMatches + triangulatePoints (17-point frames, loop)", m, s_l,
                     Xl, np.isfinite(Xl).all(1), P1, P2, x1[:m], x2[:m], Xt[:m], base))
    try:
        import torch
        from kornia.geometry.epipolar import triangulate_points
        tP1, tP2 = torch.as_tensor(P1)[None], torch.as_tensor(P2)[None]
        t1, t2 = torch.as_tensor(x1)[None], torch.as_tensor(x2)[None]
        t0 = time.perf_counter()
        Xk = triangulate_points(tP1, tP2, t1, t2)[0].numpy()
        s_k = time.perf_counter() - t0
        rows.append(_row("Kornia triangulate_points (DLT, torch CPU)", n, s_k, Xk,
                         np.isfinite(Xk).all(1), P1, P2, x1, x2, Xt, base))
    except ImportError:
        pass
    agree = np.abs(opt.x1 - cv2.correctMatches(F, x1[None], x2[None])[0][0]).max()
    notes = {"data": f"{n} points of one camera pair of the 4-camera ring, 1 px noise",
             "target": "triangulate_optimal ≥ 30× OpenCV correctMatches + triangulatePoints",
             "corrected points vs cv2.correctMatches": f"max difference {agree:.2e} px"}
    if args.device == "cuda":
        rows.extend(_cuda_rows(P1, P2, x1, x2, Xt, base))
    return write_report("triangulation", rows, args.out,
                        title="Two-view triangulation: points per second and accuracy",
                        columns=["method", "points", "seconds", "points_per_s", "x_opencv",
                                 "median_reproj_px", "median_3d_err_mm", "valid_%"],
                        notes=notes, plot=("method", "points_per_s"))


def _cuda_rows(P1, P2, x1, x2, Xt, base):
    import torch
    if not torch.cuda.is_available():
        print("[triangulation] --device cuda: no CUDA device here; GPU rows skipped")
        return []
    import geometry.torch as gt
    d = dict(device="cuda", dtype=torch.float64)
    tP1, tP2 = torch.as_tensor(P1, **d), torch.as_tensor(P2, **d)
    t1, t2 = torch.as_tensor(x1, **d), torch.as_tensor(x2, **d)
    gt.triangulate_optimal(t1[:1000], t2[:1000], tP1, tP2)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    r = gt.triangulate_optimal(t1, t2, tP1, tP2)
    torch.cuda.synchronize()
    sec = time.perf_counter() - t0
    return [_row("epigeo geometry.torch triangulate_optimal on CUDA", len(x1), sec,
                 r.X.cpu().numpy(), r.valid.cpu().numpy(), P1, P2, x1, x2, Xt, base)]
