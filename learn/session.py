"""Sessions on disk: calibrate one rig from every trial folder, then label every trial.

A session folder holds trial folders, in Pose2Sim's layout
(``session/participant/trial/pose/camXX_json``) or as a plain folder of trial folders (each with
``camXX_json`` folders, directly or under ``pose/``, or COCO JSON per camera).
:func:`reconstruct_session_folder` reads every trial, calibrates the rig once from all of them
(:func:`geometry.calibrate_session`), and writes

- ``OUT/calibration.toml`` — the session's cameras (Pose2Sim/anipose format; unregistered cameras
  are left out and named in the report);
- ``OUT/<trial>/pseudo_labels.npz`` — the trial's labels (``calibrated`` mode with the session's
  cameras: the same quality flags as one trial) and ``OUT/<trial>/report.json``;
- ``OUT/session_report.json`` — per-camera and per-trial diagnostics, messages, timings;

every file atomically (a temporary name, then a rename). A trial that cannot be read is reported
with its path and skipped; the others are still calibrated and labelled.

The three steps are public so that a scheduler can run them as separate tasks
(:mod:`learn.scale` runs one calibration task per session, then one labelling task per trial):
:func:`calibrate_session_folder` (read + calibrate, writes ``calibration.toml``) →
:func:`label_trial` for each trial (independent of each other) → :func:`finish_session`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import geometry as geo
import pose

__all__ = ["is_trial_folder", "find_trials", "reconstruct_session_folder",
           "SessionCameras", "calibrate_session_folder", "label_trial", "finish_session"]


def is_trial_folder(path) -> bool:
    """A folder that :func:`learn.inputs.load_detections` reads as one trial: ``*_json`` camera
    folders (directly or under ``pose/``) or COCO ``*.json`` files."""
    p = Path(path)
    if not p.is_dir():
        return False
    if any(d.is_dir() for d in p.glob("*_json")):
        return True
    if (p / "pose").is_dir() and any(d.is_dir() for d in (p / "pose").glob("*_json")):
        return True
    return any(f.is_file() for f in p.glob("*.json"))


def find_trials(session, max_depth: int = 3) -> list[Path]:
    """Trial folders under ``session`` (sorted, at most ``max_depth`` levels down; a trial's own
    sub-folders are not searched). Empty when ``session`` is itself a trial or holds none."""
    root = Path(session)
    if not root.is_dir() or is_trial_folder(root):
        return []
    out, level = [], [root]
    for _ in range(max_depth):
        nxt = []
        for d in level:
            for sub in sorted(s for s in d.iterdir() if s.is_dir() and not s.name.startswith(".")):
                (out if is_trial_folder(sub) else nxt).append(sub)
        level = nxt
    return sorted(out)


def _align_cameras(det, names):
    """``(x, conf)`` of a trial reordered to the session's camera ``names`` (NaN/0 for a camera
    the trial lacks)."""
    C, T, J = len(names), det.keypoints.shape[1], det.keypoints.shape[2]
    x = np.full((C, T, J, 2), np.nan)
    conf = np.zeros((C, T, J))
    for i, n in enumerate(det.camera_names):
        c = names.index(n)
        x[c], conf[c] = det.x[i], det.confidence[i]
    return x, conf


@dataclass(frozen=True)
class SessionCameras:
    """What a trial's labelling needs from the session's calibration (small, picklable).
    ``K, R, t`` ``(C, 3, 3), (C, 3, 3), (C, 3)`` (OpenCV convention, ``x_cam = R X + t``);
    ``metric``: whether translations are in metres (else the session's normalised units);
    ``outlier_threshold_px``: the calibration's reprojection inlier threshold (px)."""

    names: tuple
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    metric: bool
    outlier_threshold_px: float


@dataclass(frozen=True)
class CalibratedSession:
    """Result of :func:`calibrate_session_folder`: the ``cameras``, the session ``report``
    (without labelling figures yet) and per trial (the order of ``report["trials"]``) its
    folder, undistorted detections ``xs[i] (C, T, J, 2)`` px, confidences ``confs[i] (C, T, J)``
    and skeleton name."""

    cameras: SessionCameras
    report: dict
    trial_paths: tuple
    xs: tuple
    confs: tuple
    skeletons: tuple


def calibrate_session_folder(session, out, *, calib=None, intrinsics_only: bool = False,
                             image_size=None, focal=None, min_confidence: float = 0.3,
                             seed: int = 0, trim: bool = False, skeleton=None,
                             max_frames: int = 600, quiet: bool = True) -> CalibratedSession:
    """Read every trial of ``session`` and calibrate the rig once
    (:func:`geometry.calibrate_session`); writes ``out/calibration.toml``. Arguments as
    :func:`reconstruct_session_folder`. Raises ``ValueError`` naming the folder when no trial can
    be read or the rig cannot be calibrated (then ``out/session_report.json`` says why)."""
    from .inputs import load_detections, match_calibration
    from .report import camera_pair_errors, summarize_pair_errors, write_json

    session, out = Path(session), Path(out)
    trials = find_trials(session)
    if not trials:
        raise ValueError(f"INPUT: {session}: no trial folders (camXX_json folders, directly or "
                         "under pose/) found in it")
    dets, failed, messages = {}, {}, []
    for tr in trials:
        try:
            dets[tr] = load_detections(tr, trim=trim, progress=not quiet, skeleton=skeleton)
        except ValueError as exc:
            failed[str(tr)] = str(exc)
            messages.append(f"{tr}: skipped ({exc})")
    if not dets:
        raise ValueError(f"INPUT: {session}: no trial could be read: " + "; ".join(messages))
    names = []
    for d in dets.values():
        names += [n for n in d.camera_names if n not in names]
    J = {d.keypoints.shape[2] for d in dets.values()}
    if len(J) > 1:
        raise ValueError(f"INPUT: {session}: trials have different joint counts {sorted(J)}")
    cal_in = pose.read_calibration_toml(calib) if calib else None
    if cal_in is not None:
        cal_in = match_calibration(cal_in, tuple(names))
    xs, confs, order = [], [], list(dets)
    for tr in order:
        x, conf = _align_cameras(dets[tr], names)
        missing = [n for n in names if n not in dets[tr].camera_names]
        if missing:
            messages.append(f"{tr}: camera(s) {', '.join(missing)} missing in this trial")
        if cal_in is not None:
            for c in range(len(names)):
                x[c] = geo.undistort_points(x[c], cal_in.K[c], cal_in.dist[c])
        xs.append(x)
        confs.append(conf)
    if cal_in is None and image_size is None:
        sizes = [d.image_size for d in dets.values() if d.image_size]
        if not sizes:
            raise ValueError("--image-size: without --calib give the image size (width height)")
        image_size = sizes[0]
    rel = [str(tr.relative_to(session)) for tr in order]
    t_cal = time.perf_counter()
    sc = geo.calibrate_session(xs, cal_in.K if cal_in is not None else None, confidences=confs,
                               image_size=None if cal_in is not None else image_size,
                               focal=focal, names=rel, min_confidence=min_confidence,
                               max_frames=max_frames, seed=seed)
    t_cal = time.perf_counter() - t_cal
    messages += sc.messages
    report = {"session": str(session), "cameras": names, "trials": rel, "failed": failed,
              "messages": messages, "calibration": {"valid": sc.valid, **sc.summary},
              "per_camera": [{"name": names[c["camera"]], **c} for c in sc.cameras],
              "per_trial": sc.trials}
    if not sc.valid:
        write_json(out / "session_report.json", report)
        raise ValueError(f"INPUT: {session}: the rig could not be calibrated: "
                         + "; ".join(sc.messages))
    reg = sc.camera_valid
    pose.write_calibration_toml(out / "calibration.toml", names=[n for n, r in zip(names, reg) if r],
                                image_size=np.array([cal_in.image_size[c] if cal_in is not None
                                                     else image_size for c in np.flatnonzero(reg)],
                                                    np.float64),
                                K=sc.K[reg], dist=np.zeros((int(reg.sum()), 4)), R=sc.R[reg],
                                t=sc.t[reg])
    if cal_in is not None and intrinsics_only:
        pairs = camera_pair_errors(sc.R[reg], sc.t[reg], cal_in.R[reg], cal_in.t[reg])
        report["against_calibration"] = {"pairs": pairs, **summarize_pair_errors(pairs)}
    report["calibration_seconds"] = t_cal
    cams = SessionCameras(tuple(names), sc.K, sc.R, sc.t, bool(sc.metric or cal_in is not None),
                          float(sc.outlier_threshold_px))
    return CalibratedSession(cams, report, tuple(order), tuple(xs), tuple(confs),
                             tuple(dets[tr].skeleton for tr in order))


def label_trial(out, name: str, trial_path, x, conf, cameras: SessionCameras, info: dict, *,
                skeleton: str | None = None, min_confidence: float = 0.3) -> dict:
    """Label one trial with the session's ``cameras`` (``calibrated`` mode: robust multi-view
    triangulation, the same quality flags as one trial) into ``out/<name>/pseudo_labels.npz``
    and ``out/<name>/report.json``. ``x (C, T, J, 2)`` px (undistorted), ``conf (C, T, J)``,
    ``info``: the trial's entry of the calibration's ``per_trial`` list. Returns ``info`` with
    ``labelled_fraction``, ``median_reprojection_px`` and ``frames`` added (a new dict)."""
    from .label_files import save_pseudo_labels
    from .pseudo_labels import make_pseudo_labels
    from .report import root_joints, write_json

    out = Path(out)
    sk = pose.get_skeleton(skeleton) if skeleton else None
    labels = make_pseudo_labels(
        x, cameras.K, conf, mode="calibrated", root=root_joints(sk) if sk else (0,),
        min_confidence=min_confidence, units="metric" if cameras.metric else "normalized",
        cameras=(cameras.R, cameras.t),
        rig_options={"outlier_threshold": cameras.outlier_threshold_px})
    save_pseudo_labels(out / name / "pseudo_labels.npz", labels, x=x, confidence=conf)
    info = {**info, "labelled_fraction": labels.info.get("labelled_fraction"),
            "median_reprojection_px": float(np.nanmedian(labels.residuals))
            if np.isfinite(labels.residuals).any() else float("nan")}
    write_json(out / name / "report.json", {"trial": str(trial_path),
                                            "cameras": list(cameras.names), **info})
    return {**info, "frames": int(x.shape[1])}


def finish_session(out, report: dict, labelled: list, labelling_seconds: float,
                   started: float | None = None) -> dict:
    """Complete the session ``report`` with the :func:`label_trial` results ``labelled`` (one
    per trial, in order) and write ``out/session_report.json``. Returns the report."""
    from .report import write_json
    report = dict(report)
    report["per_trial"] = [{k: v for k, v in r.items() if k != "frames"} for r in labelled]
    report.update({"frames": sum(r["frames"] for r in labelled),
                   "labelling_seconds": labelling_seconds})
    report["seconds"] = (time.perf_counter() - started if started is not None else
                         report["calibration_seconds"] + labelling_seconds)
    write_json(Path(out) / "session_report.json", report)
    return report


def reconstruct_session_folder(session, out, *, calib=None, intrinsics_only: bool = False,
                               image_size=None, focal=None, min_confidence: float = 0.3,
                               seed: int = 0, trim: bool = False, skeleton=None,
                               max_frames: int = 600, quiet: bool = True) -> dict:
    """Calibrate once from every trial of the session folder ``session`` and label every trial
    into ``out`` (see the module docstring). ``calib``: a Pose2Sim/anipose TOML path whose
    intrinsics (K, distortion) are used; with ``intrinsics_only`` its extrinsics are only
    compared with the estimate (``against_calibration``). Without ``calib`` give ``image_size``
    ``(width, height)`` px (and optionally ``focal`` px). Returns the session report (dict).
    Raises ``ValueError`` naming the folder when no trial can be read."""
    t0 = time.perf_counter()
    cs = calibrate_session_folder(session, out, calib=calib, intrinsics_only=intrinsics_only,
                                  image_size=image_size, focal=focal,
                                  min_confidence=min_confidence, seed=seed, trim=trim,
                                  skeleton=skeleton, max_frames=max_frames, quiet=quiet)
    t_lab = time.perf_counter()
    labelled = [label_trial(out, name, tr, x, conf, cs.cameras, info, skeleton=sk,
                            min_confidence=min_confidence)
                for tr, name, x, conf, sk, info in zip(cs.trial_paths, cs.report["trials"],
                                                       cs.xs, cs.confs, cs.skeletons,
                                                       cs.report["per_trial"])]
    return finish_session(out, cs.report, labelled, time.perf_counter() - t_lab, t0)
