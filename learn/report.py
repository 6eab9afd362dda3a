"""Accuracy figures and report files for reconstructions (used by ``epigeo`` and the benchmarks)."""
from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import numpy as np

import geometry as geo

__all__ = ["camera_pair_errors", "summarize_pair_errors", "root_joints", "write_json",
           "save_report_plots", "NON_METRIC_UNITS"]


def root_joints(skeleton) -> tuple:
    """Indices averaged into the root joint of ``skeleton`` (a :class:`pose.Skeleton`): the
    pelvis / mid-hip when it has one, else both hips, else joint 0."""
    names = [n.lower() for n in skeleton.names]
    for n in ("pelvis", "midhip", "hip"):
        if n in names:
            return (names.index(n),)
    hips = [i for i, n in enumerate(names) if n in ("lhip", "rhip", "left_hip", "right_hip")]
    return tuple(hips) if len(hips) == 2 else (0,)


def camera_pair_errors(R_est, t_est, R_ref, t_ref) -> list[dict]:
    """Relative-pose errors of every camera pair ``i < j``.

    ``R (C, 3, 3)``, ``t (C, 3)`` world→camera for the estimate and the reference (any world
    frame and scale). Returns one dict per pair: ``rotation_deg`` (angle of the relative-rotation
    difference) and ``translation_deg`` (angle between relative translation directions).
    """
    out = []
    for i, j in combinations(range(len(R_est)), 2):
        Re, te = geo.relative_pose(R_est[i], t_est[i], R_est[j], t_est[j])
        Rr, tr = geo.relative_pose(R_ref[i], t_ref[i], R_ref[j], t_ref[j])
        out.append({"pair": f"{i}-{j}", "rotation_deg": float(geo.rotation_error_deg(Re, Rr)),
                    "translation_deg": float(geo.direction_error_deg(te, tr))})
    return out


def summarize_pair_errors(rows: list[dict]) -> dict:
    """Median and maximum of :func:`camera_pair_errors` rows."""
    r = np.array([x["rotation_deg"] for x in rows])
    t = np.array([x["translation_deg"] for x in rows])
    return {"median_rotation_deg": float(np.median(r)), "max_rotation_deg": float(r.max()),
            "median_translation_deg": float(np.median(t)), "max_translation_deg": float(t.max())}


def _plain(v):
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, (np.floating, float)):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def write_json(path, obj) -> Path:
    """Write ``obj`` as JSON (numpy values converted, NaN/inf as null), atomically."""
    from pose.io_atomic import atomic_write_text
    return atomic_write_text(path, json.dumps(_plain(obj), indent=2))


#: axis units of a reconstruction without a metric scale (see :class:`geometry.RigReconstruction`)
NON_METRIC_UNITS = "units: median camera distance"


def save_report_plots(out_dir, X, R, t, K, residuals, skeleton, image_size, *, frame=None,
                      metric: bool = False, cameras=None) -> list:
    """PNG plots of a reconstruction: ``rig.png`` (cameras and one 3D skeleton), ``skeleton.png``
    (the 3D skeleton of frame ``frame`` alone, default the middle frame), ``reprojection.png``
    (per-joint reprojection-error histograms; skipped when there are no residuals). ``X (T, J, 3)``,
    ``residuals (C, T, J)`` px (NaN = unused). Axes say "(m)" only when ``metric``, else
    :data:`NON_METRIC_UNITS`; ``cameras (C,)`` bool selects the cameras drawn (default all;
    unregistered cameras have no pose to draw). Each file is written atomically. Returns the
    paths written."""
    from geometry.synthetic import Rig
    from pose import plots

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    T = X.shape[0]
    if frame is None:
        frame = T // 2
    sel = np.ones(len(R), bool) if cameras is None else np.asarray(cameras, bool)
    rig = Rig(K=np.asarray(K)[sel], R=np.asarray(R)[sel], t=np.asarray(t)[sel],
              image_size=tuple(image_size))
    units = "m" if metric else NON_METRIC_UNITS
    import matplotlib.pyplot as plt
    paths = [out_dir / "rig.png", out_dir / "skeleton.png"]
    figs = [plots.plot_skeleton_3d(X[frame], skeleton, rig=rig, path=paths[0], units=units),
            plots.plot_skeleton_3d(X[frame], skeleton, path=paths[1], units=units)]
    res = np.asarray(residuals, np.float64)
    if np.isfinite(res).any():
        errs = np.moveaxis(res, -1, 0).reshape(res.shape[-1], -1).T      # (C*T, J)
        paths.append(out_dir / "reprojection.png")
        figs.append(plots.plot_joint_error_histogram(errs, skeleton, unit="px", scale=1.0,
                                                     title="reprojection error", path=paths[-1]))
    for f in figs:
        plt.close(f)
    return paths
