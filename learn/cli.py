"""The ``epigeo`` command: detections in, cameras + 3D poses + pseudo-labels + report out.

``epigeo reconstruct INPUT [--calib FILE] [--intrinsics-only] [--image-size W H] [--fps N]
[--mode rig|window|frame] [--out DIR]`` and ``epigeo demo [--out DIR]``; ``epigeo detect VIDEO_DIR
--out DIR`` (2D keypoints from camera videos, in ``cmd_detect.py``, which also lets INPUT be a
folder of videos). INPUT may also be a session folder of trial folders (Pose2Sim's
``session/participant/trial/pose/camXX_json``): one calibration from all trials, labels per trial
(``session.py``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

__all__ = ["main"]


def _log(msg: str) -> None:
    print(msg, flush=True)


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _match_cameras(calib, names):
    """``calib`` restricted/reordered to the input cameras ``names`` (matched by name ignoring
    case and punctuation: ``cam_01`` = ``cam01``; by order when the names do not match)."""
    import pose

    cal = [_norm(n) for n in calib.names]
    inp = [_norm(n) for n in names]
    if set(inp) <= set(cal) and len(set(cal)) == len(cal):
        missing = [n for n, k in zip(calib.names, cal) if k not in inp]
        if missing:
            raise ValueError(f"INPUT: camera(s) {', '.join(missing)} of the calibration have no "
                             f"detections (input cameras: {', '.join(names)})")
        idx = [cal.index(k) for k in inp]
        return pose.Calibration(names=tuple(calib.names[i] for i in idx),
                                image_size=calib.image_size[idx], K=calib.K[idx],
                                dist=calib.dist[idx], R=calib.R[idx], t=calib.t[idx])
    if calib.num_cameras != len(names):
        unmatched = [n for n, k in zip(names, inp) if k not in cal]
        raise ValueError(f"--calib: {calib.num_cameras} cameras in the calibration "
                         f"({', '.join(calib.names)}), {len(names)} in the input "
                         f"({', '.join(names)}); not in the calibration: {', '.join(unmatched)}")
    return calib


def _prepare(det, calib, intrinsics_only, image_size, focal):
    """Undistorted pixels, confidences, K (``None`` = unknown: estimated by the rig from the
    image size), the image sizes and the calibration matched to the input's cameras."""
    import geometry as geo

    x, conf = det.x, det.confidence
    C = x.shape[0]
    if calib is not None:
        calib = _match_cameras(calib, det.camera_names)
        for c in range(C):
            x[c] = geo.undistort_points(x[c], calib.K[c], calib.dist[c])
        return x, conf, calib.K.copy(), [tuple(s) for s in calib.image_size], calib
    image_size = image_size or det.image_size
    if image_size is None:
        raise ValueError("--image-size: without --calib give the image size (width height) so "
                         "that the intrinsics can be guessed")
    return x, conf, None, [tuple(image_size)] * C, None


def _write_outputs(out, args, det, x, conf, labels, skeleton, sizes, calib, mode, t0,
                   written) -> dict:
    """Write pseudo-labels, reconstruction, calibration TOML, plots and ``report.json``;
    appends each path to ``written`` as soon as it exists. Returns the report dictionary."""
    import pose
    from .pseudo_labels import save_pseudo_labels
    from .report import camera_pair_errors, save_report_plots, summarize_pair_errors, write_json

    C, T, J = x.shape[:3]
    out.mkdir(parents=True, exist_ok=True)
    written.append(save_pseudo_labels(out / "pseudo_labels.npz", labels, x=x, confidence=conf))
    residuals = labels.residuals
    data = pose.ProjectData(K=labels.K, dist=np.zeros((C, 5)), R=labels.R, t=labels.t,
                            image_size=np.array(sizes, np.float64),
                            keypoints=np.concatenate([np.nan_to_num(x), conf[..., None]], -1),
                            camera_names=det.camera_names,
                            joint_names=skeleton.names if skeleton else (),
                            skeleton=skeleton.name if skeleton else "",
                            fps=float(args.fps or 0.0), X=labels.X,
                            quality={"residuals": np.nan_to_num(residuals, nan=-1.0),
                                     "weights": labels.weights})
    pose.save_project_npz(out / "reconstruction.npz", data)
    written.append(out / "reconstruction.npz")
    if mode != "frame":
        pose.write_calibration_toml(out / "calibration.toml", names=det.camera_names,
                                    image_size=np.array(sizes), K=labels.K,
                                    dist=np.zeros((C, 4)), R=labels.R, t=labels.t)
        written.append(out / "calibration.toml")
    report = {"input": str(args.input), "cameras": list(det.camera_names), "frames": T,
              "joints": J, "mode": mode, "skeleton": skeleton.name if skeleton else "",
              "summary": labels.info}
    finite = residuals[np.isfinite(residuals)]
    if finite.size:
        report["reprojection_px"] = {"median": float(np.median(finite)),
                                     "p90": float(np.percentile(finite, 90))}
    if calib is not None and mode not in ("frame", "calibrated"):
        pairs = camera_pair_errors(labels.R, labels.t, calib.R, calib.t)
        report["against_calibration"] = {"pairs": pairs, **summarize_pair_errors(pairs)}
    if skeleton is not None and mode != "frame":
        try:
            written += save_report_plots(out, labels.X, labels.R, labels.t, labels.K, residuals,
                                         skeleton, sizes[0])
        except ValueError as exc:  # a plot is not worth failing the run for; say so
            _log(f"warning: plots skipped ({exc})")
    report["seconds"] = time.perf_counter() - t0
    written.append(write_json(out / "report.json", report))
    return report


def reconstruct(args) -> dict:
    """Run ``epigeo reconstruct``; returns the report dictionary."""
    import pose
    from .inputs import load_detections
    from .pseudo_labels import make_pseudo_labels
    from .report import root_joints

    from .session import find_trials
    if find_trials(args.input):
        return reconstruct_session(args)
    t0 = time.perf_counter()
    out = Path(args.out)
    det = load_detections(args.input, trim=args.trim, progress=not args.quiet,
                          skeleton=args.skeleton)
    calib = pose.read_calibration_toml(args.calib) if args.calib else None
    x, conf, K, sizes, calib = _prepare(det, calib, args.intrinsics_only, args.image_size,
                                        args.focal)
    C, T, J = x.shape[:3]
    skeleton = pose.get_skeleton(det.skeleton) if det.skeleton else None
    root = root_joints(skeleton) if skeleton is not None else (0,)
    _log(f"input: {C} cameras ({', '.join(det.camera_names)}), {T} frames, {J} joints"
         f"{' (' + skeleton.name + ')' if skeleton else ''}")
    fixed = calib is not None and not args.intrinsics_only
    mode = "calibrated" if fixed else args.mode
    _log(f"reconstructing ({mode} mode{': cameras from ' + str(args.calib) if fixed else ''})...")
    steps = tqdm(total=2, desc=f"epigeo {mode}", unit="step", disable=args.quiet)
    labels = make_pseudo_labels(
        x, K, conf, mode=mode, root=root, min_confidence=args.min_confidence, seed=args.seed,
        units="metric" if fixed else "normalized", image_size=sizes[0],
        rig_options={"focal": args.focal} if (K is None and args.focal) else None,
        cameras=(calib.R, calib.t) if fixed else None)
    steps.update(1)
    if not labels.info.get("reconstruction_valid", True) or not labels.valid.any():
        steps.close()
        raise ValueError(f"INPUT: {args.input}: no usable reconstruction ({mode} mode: "
                         f"{labels.info.get('cameras_registered', '?')} cameras registered, "
                         f"{100 * labels.info.get('labelled_fraction', 0.0):.0f} % of frames "
                         "labelled); nothing written")
    written = []
    try:
        report = _write_outputs(out, args, det, x, conf, labels, skeleton, sizes, calib, mode,
                                t0, written)
        steps.update(1)
        steps.close()
    except Exception as exc:
        steps.close()
        done = ", ".join(str(w) for w in written) or "nothing"
        raise ValueError(f"--out: writing the results to {out} failed half-way ({exc}); "
                         f"written so far (incomplete set): {done}") from exc
    if "reprojection_px" in report:
        _log(f"median reprojection error: {report['reprojection_px']['median']:.2f} px")
    if "against_calibration" in report:
        a = report["against_calibration"]
        _log(f"against {args.calib}: median relative rotation error {a['median_rotation_deg']:.2f}°"
             f" (max {a['max_rotation_deg']:.2f}°), translation direction "
             f"{a['median_translation_deg']:.2f}°")
        for p in a["pairs"]:
            _log(f"  cameras {p['pair']}: rotation {p['rotation_deg']:.2f}°, "
                 f"translation {p['translation_deg']:.2f}°")
    if mode == "window":
        _log("calibration.toml holds the cameras of the middle frame's window; per-frame cameras "
             "are in pseudo_labels.npz (R_frames, t_frames)")
    _log("wrote: " + ", ".join(str(w) for w in written))
    return report


def reconstruct_session(args) -> dict:
    """``epigeo reconstruct SESSION``: one calibration from every trial folder, labels per trial
    (:func:`learn.session.reconstruct_session_folder`); returns the session report."""
    from .session import reconstruct_session_folder
    if args.mode != "rig" or (args.calib and not args.intrinsics_only):
        raise ValueError("INPUT: a session folder is calibrated once from all its trials (rig "
                         "mode); use --calib with --intrinsics-only, or give one trial folder")
    _log(f"session {args.input}: calibrating one rig from all its trials...")
    rep = reconstruct_session_folder(
        args.input, args.out, calib=args.calib, intrinsics_only=args.intrinsics_only,
        image_size=args.image_size, focal=args.focal, min_confidence=args.min_confidence,
        seed=args.seed, trim=args.trim, skeleton=args.skeleton, quiet=args.quiet)
    for m in rep["messages"]:
        _log(f"warning: {m}")
    _log(f"{len(rep['trials'])} trials, {rep['frames']} frames: calibration "
         f"{rep['calibration_seconds']:.1f} s, labelling {rep['labelling_seconds']:.1f} s")
    if "against_calibration" in rep:
        a = rep["against_calibration"]
        _log(f"against {args.calib}: median relative rotation error {a['median_rotation_deg']:.2f}°"
             f" (max {a['max_rotation_deg']:.2f}°)")
    _log(f"wrote: {Path(args.out) / 'calibration.toml'}, {Path(args.out) / 'session_report.json'}"
         f" and per-trial folders")
    return rep


def demo(args) -> dict:
    """Run ``epigeo demo``: synthetic people with ground truth, printed next to the oracle."""
    from .demo import run_demo
    return run_demo(out=Path(args.out), frames_per_clip=args.frames, seed=args.seed,
                    quiet=args.quiet)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="epigeo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("reconstruct", help="cameras, 3D poses and pseudo-labels from detections")
    r.add_argument("input", help="OpenPose folders per camera, COCO JSON per camera, .npz, "
                                 "a folder of camera videos (detected first), or a session "
                                 "folder of trial folders (calibrated once)")
    r.add_argument("--calib", help="Pose2Sim/anipose TOML: intrinsics (and reference extrinsics)")
    r.add_argument("--intrinsics-only", action="store_true",
                   help="use only K and distortion from --calib; estimate the extrinsics and "
                        "report their errors against the file's")
    r.add_argument("--image-size", type=int, nargs=2, metavar=("W", "H"),
                   help="image size in px (needed without --calib)")
    r.add_argument("--focal", type=float, help="focal length guess in px (without --calib)")
    r.add_argument("--mode", choices=["rig", "window", "frame"], default="rig",
                   help="how to reconstruct without a full calibration (default rig)")
    r.add_argument("--skeleton", help="joint layout, e.g. body_25b, coco_17, h36m_17 (default: "
                                      "guessed from the input)")
    r.add_argument("--fps", type=float, default=0.0, help="frame rate, stored in the outputs")
    r.add_argument("--min-confidence", type=float, default=0.3)
    r.add_argument("--trim", action="store_true",
                   help="cut every camera to the shortest one's frame count")
    r.add_argument("--out", default="epigeo_out")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--quiet", action="store_true")
    from .cmd_detect import add_detect_parser, add_video_options
    add_video_options(r, prefix="detect-")   # when INPUT is a folder of videos
    add_detect_parser(sub)
    d = sub.add_parser("demo", help="the main job on built-in synthetic data with ground truth")
    d.add_argument("--out", default="results/demo")
    d.add_argument("--frames", type=int, default=60, help="frames per motion clip")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--quiet", action="store_true")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "reconstruct":
            from .cmd_detect import videos_to_detections
            videos_to_detections(args)           # INPUT a folder of videos: detect first
            reconstruct(args)
        elif args.command == "detect":
            from .cmd_detect import run_detect
            run_detect(args)
        else:
            demo(args)
    except ValueError as exc:
        print(f"epigeo: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
