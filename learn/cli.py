"""The ``epigeo`` command: detections in, cameras + 3D poses + pseudo-labels + report out.

``epigeo reconstruct INPUT [--calib FILE] [--intrinsics-only] [--image-size W H] [--fps N]
[--mode rig|window|frame] [--people auto|N] [--out DIR]`` and ``epigeo demo [--out DIR]``;
``epigeo detect VIDEO_DIR --out DIR`` (2D keypoints from camera videos, in ``cmd_detect.py``, which also lets INPUT be a
folder of videos). ``--people auto|N``: several people, associated across cameras and time, 3D,
labels and an OpenSim .trc per person (``people.py``); without it, one subject (the largest
person per frame). INPUT may also be a session folder of trial folders (Pose2Sim's
``session/participant/trial/pose/camXX_json``): one calibration from all trials, labels per trial
(``session.py``).

Exit codes: 0 success (warnings, if any, on stderr and in report.json); 2 bad input or
arguments (the message names the file, camera or option); 3 unusable result (no reconstruction,
or fewer than two usable cameras: nothing written, --out left as it was); 130 interrupted
(Ctrl-C: --out holds the previous complete outputs or the new complete ones). A run replaces
its own kind of files in --out (pseudo_labels.npz, reconstruction.npz, calibration.toml, the
PNGs, report.json) as one set and says which stale ones it removed.
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


class UnusableResult(Exception):
    """The run finished but its result cannot be used (exit code 3); nothing was written."""


#: exit codes of ``epigeo`` (also in the command's help)
EXIT_OK, EXIT_BAD_INPUT, EXIT_UNUSABLE, EXIT_INTERRUPTED = 0, 2, 3, 130


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr, flush=True)


def _prepare(det, calib, intrinsics_only, image_size, focal):
    """Sanity-checked detections, undistorted pixels, confidences, K (``None`` = unknown:
    estimated by the rig from the image size), the image sizes, the calibration matched to the
    input's cameras and the sanity checks' messages (:func:`learn.inputs.sanitize_keypoints`)."""
    import dataclasses

    import geometry as geo
    from .inputs import sanitize_keypoints

    C = det.keypoints.shape[0]
    if calib is not None:
        from .inputs import match_calibration
        calib = match_calibration(calib, det.camera_names)
        sizes = [tuple(s) for s in calib.image_size]
    else:
        image_size = image_size or det.image_size
        if image_size is None:
            raise ValueError("--image-size: without --calib give the image size (width height) "
                             "so that the intrinsics can be guessed")
        sizes = [tuple(image_size)] * C
    kp, notes = sanitize_keypoints(det.keypoints, det.camera_names, np.array(sizes, np.float64))
    det = dataclasses.replace(det, keypoints=kp)
    x, conf = det.x, det.confidence
    if calib is not None:
        for c in range(C):
            x[c] = geo.undistort_points(x[c], calib.K[c], calib.dist[c])
        return det, x, conf, calib.K.copy(), sizes, calib, notes
    return det, x, conf, None, sizes, None, notes


def _write_outputs(out, args, det, x, conf, labels, skeleton, sizes, calib, mode, t0,
                   written, extra) -> dict:
    """Write pseudo-labels, reconstruction, calibration TOML (registered, consistent cameras
    only), plots and ``report.json`` (last, with the SHA-256 of the others) into ``out`` (a
    staging folder, :mod:`learn.out_folder`); appends each path to ``written``. Returns the
    report dictionary."""
    import pose
    from pose.io_atomic import atomic_path
    from .out_folder import file_digests
    from .pseudo_labels import save_pseudo_labels
    from .report import camera_pair_errors, save_report_plots, summarize_pair_errors, write_json

    C, T, J = x.shape[:3]
    used = np.array([r["used"] for r in extra["cameras"]], bool) if extra["cameras"] \
        else np.ones(C, bool)
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
                                     "weights": labels.weights, "camera_used": used})
    with atomic_path(out / "reconstruction.npz") as tmp:
        pose.save_project_npz(tmp, data)
    written.append(out / "reconstruction.npz")
    if mode != "frame":
        keep = np.flatnonzero(used)
        pose.write_calibration_toml(out / "calibration.toml",
                                    names=[det.camera_names[c] for c in keep],
                                    image_size=np.array(sizes)[keep], K=labels.K[keep],
                                    dist=np.zeros((keep.size, 4)), R=labels.R[keep],
                                    t=labels.t[keep])
        written.append(out / "calibration.toml")
    metric = labels.units == "metric" and (mode == "calibrated" or labels.info.get("metric"))
    report = {"input": str(args.input), "cameras": list(det.camera_names), "frames": T,
              "joints": J, "mode": mode, "skeleton": skeleton.name if skeleton else "",
              "units": "m" if metric else "median camera distance", "summary": labels.info,
              "camera_quality": extra["cameras"], "warnings": extra["warnings"],
              "usable": True}
    if "frame_mode_check" in extra:
        report["frame_mode_check"] = extra["frame_mode_check"]
    finite = residuals[np.isfinite(residuals)]
    if finite.size:
        report["reprojection_px"] = {"median": float(np.median(finite)),
                                     "p90": float(np.percentile(finite, 90))}
    if calib is not None and mode not in ("frame", "calibrated"):
        keep = np.flatnonzero(used)
        pairs = camera_pair_errors(labels.R[keep], labels.t[keep], calib.R[keep], calib.t[keep])
        for p in pairs:   # name the cameras by their input index
            i, j = (int(v) for v in p["pair"].split("-"))
            p["pair"] = f"{keep[i]}-{keep[j]}"
        report["against_calibration"] = {"pairs": pairs, **summarize_pair_errors(pairs)}
    if skeleton is not None and mode != "frame":
        try:
            written += save_report_plots(out, labels.X, labels.R, labels.t, labels.K, residuals,
                                         skeleton, sizes[0], metric=bool(metric), cameras=used)
        except ValueError as exc:  # a plot is not worth failing the run for; say so
            _warn(f"plots skipped ({exc})")
        try:   # report.html: tables, plots, video frames, 3D view (learn.html_report)
            from .html_report import write_run_report
            written.append(write_run_report(out, args, det, labels, skeleton, sizes, report,
                                            metric=bool(metric), used=used,
                                            dist=None if calib is None else calib.dist))
        except (ValueError, ImportError) as exc:
            _warn(f"report.html skipped ({exc})")
    report["seconds"] = time.perf_counter() - t0
    report["outputs_sha256"] = file_digests(out, [p.name for p in written])
    written.append(write_json(out / "report.json", report))
    return report


def _label(args, det, x, conf, K, sizes, calib, mode, root):
    """Pseudo-labels with the per-camera checks (:func:`learn.quality.label_with_camera_checks`;
    the skeleton's calibration joints in ``rig`` mode) and, in ``frame`` mode, the comparison
    with a ``rig`` reconstruction. Returns ``(labels, extra)``: ``extra`` holds ``cameras``
    (per-camera rows), ``warnings`` and, in frame mode, ``frame_mode_check``."""
    import geometry as geo
    from .pseudo_labels import make_pseudo_labels
    from pose import get_skeleton
    from .quality import frame_mode_check, label_with_camera_checks, usable

    C, fixed = x.shape[0], mode == "calibrated"
    K_full = K if K is not None else np.broadcast_to(
        geo.intrinsics_from_image_size(sizes[0]), (C, 3, 3)).copy()

    cal_joints = get_skeleton(det.skeleton).calibration_joints if det.skeleton else None

    def run(keep, how=mode):
        ropts = {"focal": args.focal} if (K is None and args.focal) else {}
        if how == "rig" and cal_joints is not None:     # e.g. BlazePose without its face
            ropts["calibration_joints"] = cal_joints
        return make_pseudo_labels(
            x[keep], None if K is None else K[keep], conf[keep], mode=how, root=root,
            min_confidence=args.min_confidence, seed=args.seed,
            units="metric" if fixed else "normalized", image_size=sizes[0],
            rig_options=ropts or None, cameras=(calib.R[keep], calib.t[keep]) if fixed else None)

    labels, rows, msgs = label_with_camera_checks(run, det.camera_names, K_full,
                                                  check=mode != "frame")
    extra = {"cameras": rows, "warnings": list(msgs)}
    if mode == "window" and labels.info.get("windows_rejected"):
        extra["warnings"].append(
            f"{labels.info['windows_rejected']} of {labels.info.get('windows', '?')} windows "
            "rejected (cameras inconsistent with the neighbouring windows, or reprojection "
            "error above twice the median); their frames use the nearest valid window")
    if mode == "frame" and usable(labels):
        ref = run(list(range(C)), "rig")
        chk = frame_mode_check(labels, ref) if usable(ref) else \
            {"worse_than_mean_pose": None, "note": "no rig reconstruction to compare with"}
        extra["frame_mode_check"] = chk
        if chk["worse_than_mean_pose"]:
            extra["warnings"].append(
                "frame mode's labels are worse than predicting the mean pose (N-MPJPE against "
                f"a rig-mode reconstruction of the same detections: {chk['frame_vs_rig']:.3f} "
                f"vs {chk['mean_pose_vs_rig']:.3f} for the mean pose); use --mode rig")
    return labels, extra


def reconstruct(args) -> dict:
    """Run ``epigeo reconstruct``; returns the report dictionary. Raises ``ValueError`` for bad
    input (exit 2) and :class:`UnusableResult` when nothing usable came out (exit 3; the
    previous outputs in ``--out`` are left as they were)."""
    import pose
    from .inputs import load_detections
    from .out_folder import commit, staging_folder
    from .report import root_joints

    from .session import find_trials
    if getattr(args, "people", None):
        if find_trials(args.input):
            raise ValueError("--people: give one trial folder, not a session folder")
        if args.mode != "rig":
            raise ValueError("--people: several people are reconstructed with a static rig; "
                             f"--mode {args.mode} is not available with --people")
        from .people import reconstruct_people_run
        return reconstruct_people_run(args)
    if find_trials(args.input):
        return reconstruct_session(args)
    t0 = time.perf_counter()
    out = Path(args.out)
    det = load_detections(args.input, trim=args.trim, progress=not args.quiet,
                          skeleton=args.skeleton)
    calib = pose.read_calibration_toml(args.calib) if args.calib else None
    det, x, conf, K, sizes, calib, notes = _prepare(det, calib, args.intrinsics_only,
                                                    args.image_size, args.focal)
    for n in notes:
        _warn(n)
    C, T, J = x.shape[:3]
    skeleton = pose.get_skeleton(det.skeleton) if det.skeleton else None
    root = root_joints(skeleton) if skeleton is not None else (0,)
    _log(f"input: {C} cameras ({', '.join(det.camera_names)}), {T} frames, {J} joints"
         f"{' (' + skeleton.name + ')' if skeleton else ''}")
    fixed = calib is not None and not args.intrinsics_only
    mode = "calibrated" if fixed else args.mode
    _log(f"reconstructing ({mode} mode{': cameras from ' + str(args.calib) if fixed else ''})...")
    steps = tqdm(total=2, desc=f"epigeo {mode}", unit="step", disable=args.quiet)
    labels, extra = _label(args, det, x, conf, K, sizes, calib, mode, root)
    extra["warnings"] = notes + extra["warnings"]
    steps.update(1)
    from .quality import usable
    n_used = sum(r["used"] for r in extra["cameras"]) if extra["cameras"] else C
    if not usable(labels) or n_used < 2:
        steps.close()
        for w in extra["warnings"][len(notes):]:
            _warn(w)
        raise UnusableResult(
            f"{args.input}: no usable reconstruction ({mode} mode: {n_used} of {C} cameras "
            f"usable, {100 * labels.info.get('labelled_fraction', 0.0):.0f} % of frames "
            f"labelled); nothing written, {out} left as it was")
    written: list = []
    try:
        with staging_folder(out) as stage:
            report = _write_outputs(stage, args, det, x, conf, labels, skeleton, sizes, calib,
                                    mode, t0, written, extra)
            from .out_folder import RUN_OUTPUTS
            from .people import people_output_names
            written, stale = commit(stage, out, RUN_OUTPUTS + people_output_names(out))
        steps.update(1)
        steps.close()
    except Exception as exc:
        steps.close()
        raise ValueError(f"--out: writing the results to {out} failed ({exc}); the previous "
                         f"outputs in {out} are left as they were") from exc
    for w in extra["warnings"][len(notes):]:
        _warn(w)
    for r in extra["cameras"]:
        med = r["median_reprojection_px"]
        _log(f"  camera {r['camera']}: {r['status']}"
             + (f", median reprojection {med:.2f} px" if med is not None else ""))
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
    if stale:
        _log(f"removed from {out} the previous run's {', '.join(stale)} (not produced by this "
             f"{mode}-mode run)")
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
    from .scale import OneOrMany, add_scale_options     # several SESSIONs, --workers (Dask)
    r.add_argument("input", nargs="+", action=OneOrMany, help="OpenPose folders per camera, "
                   "COCO JSON per camera, .npz, a folder of camera videos (detected first), or a "
                   "session folder of trial folders (calibrated once); several: see --workers")
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
    r.add_argument("--people", metavar="auto|N",
                   help="several people: 'auto' (found) or N; per person 3D (people.npz), "
                        "pseudo-labels, OpenSim .trc (metric --calib and --fps); default: one "
                        "subject, the largest person per frame")
    r.add_argument("--min-confidence", type=float, default=0.3)
    r.add_argument("--trim", action="store_true",
                   help="cut every camera to the shortest one's frame count")
    r.add_argument("--out", default="epigeo_out")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--quiet", action="store_true")
    from .cmd_detect import add_detect_parser, add_video_options
    add_video_options(r, prefix="detect-")   # when INPUT is a folder of videos
    add_scale_options(r)                     # --workers, --scheduler, --overwrite
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
            if args.people and (isinstance(args.input, list) or args.workers is not None
                                or args.scheduler):
                raise ValueError("--people: give one INPUT folder (several sessions, --workers "
                                 "and --scheduler are single-person)")
            if args.scale_main(args) is None:    # several SESSIONs / --workers: learn/scale.py
                from .cmd_detect import videos_to_detections
                if args.people and args.detect_people == 1:   # several people: detect them
                    from .people import parse_people
                    args.detect_people = parse_people(args.people) or 4
                videos_to_detections(args)       # INPUT a folder of videos: detect first
                reconstruct(args)
        elif args.command == "detect":
            from .cmd_detect import run_detect
            run_detect(args)
        else:
            demo(args)
    except ValueError as exc:
        print(f"epigeo: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except UnusableResult as exc:
        print(f"epigeo: unusable result: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        print(f"epigeo: interrupted; the output folder holds the previous complete outputs or "
              "the new complete ones, never a mix", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
