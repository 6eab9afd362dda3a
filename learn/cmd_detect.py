"""``epigeo detect`` and the video front end of ``epigeo reconstruct``.

``epigeo detect VIDEO_DIR --out DIR [--overlay [N]] [--backend blazepose|onnx] [--model FILE]
[--people K] [--stride S] [--start SEC] [--end SEC] [--trim] [--threads N] [--jobs N]`` runs a 2D keypoint
detector (:mod:`pose.detect`) on every camera video of ``VIDEO_DIR`` and writes OpenPose JSON
per camera (``DIR/camXX_json/``), resumable. ``epigeo reconstruct VIDEO_DIR ...``: when INPUT is
a folder of videos, :func:`videos_to_detections` detects into ``OUT/detections`` first and
points INPUT there.
"""
from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_detect_parser", "add_video_options", "run_detect", "videos_to_detections",
           "is_video_folder"]


def _log(msg: str) -> None:
    print(msg, flush=True)


def add_video_options(p: argparse.ArgumentParser, *, prefix: str = "") -> None:
    """The detector options (``prefix`` ``"detect-"`` on ``reconstruct``, where they apply when
    INPUT is a folder of videos)."""
    p.add_argument(f"--{prefix}backend", default="blazepose", choices=["blazepose", "onnx"],
                   help="2D keypoint detector (default blazepose: offline, model files from "
                        "$EPIGEO_MODELS or the cache)")
    p.add_argument(f"--{prefix}model", help="ONNX keypoint model file (backend onnx)")
    p.add_argument(f"--{prefix}people", type=int, default=1,
                   help="people to detect per frame (top-k, default 1)")
    p.add_argument(f"--{prefix}stride", type=int, default=1, help="detect every S-th frame")
    p.add_argument(f"--{prefix}start", type=float, help="first second of video to detect")
    p.add_argument(f"--{prefix}end", type=float, help="second of video to stop at")
    p.add_argument(f"--{prefix}threads", type=int, default=1,
                   help="CPU threads of the detector runtime (default 1)")
    p.add_argument(f"--{prefix}jobs", type=int, default=1,
                   help="cameras detected in parallel processes (default 1)")


def add_detect_parser(sub) -> argparse.ArgumentParser:
    """Register ``epigeo detect`` on the subparsers ``sub``."""
    d = sub.add_parser("detect", help="2D keypoints from a folder of camera videos → OpenPose "
                                      "JSON per camera")
    d.add_argument("video_dir", help="folder with one video per camera (cam01.mp4, ...)")
    d.add_argument("--out", required=True, help="output folder (camXX_json/ per camera)")
    d.add_argument("--overlay", type=int, nargs="?", const=3, default=0, metavar="N",
                   help="save N frames per camera (default 3) with the keypoints drawn, in "
                        "OUT/overlay/")
    d.add_argument("--trim", action="store_true",
                   help="allow videos of different lengths (use the shortest)")
    add_video_options(d)
    d.add_argument("--quiet", action="store_true")
    return d


def _detect(video_dir, out, *, backend, model, people, stride, start, end, threads, jobs,
            trim, overlay, quiet) -> dict:
    from pose.detect import detect_videos
    meta = detect_videos(video_dir, out, backend=backend, model=model, max_people=people,
                         stride=stride, start=start, end=end, trim=trim, overlay=overlay,
                         progress=not quiet, threads=threads, jobs=jobs)
    n = len(meta["frames"]) * len(meta["cameras"])
    rate = meta["frames_detected"] / meta["seconds"] if meta["frames_detected"] else 0.0
    _log(f"detected {meta['frames_detected']} of {n} camera-frames in {out} "
         f"({meta['backend']}, {meta['skeleton'] or 'unknown skeleton'}"
         + (f", {rate:.1f} frames/s" if rate else ", all done before: resumed") + ")")
    return meta


def run_detect(args) -> dict:
    """Run ``epigeo detect``; returns the ``detect.json`` dictionary."""
    meta = _detect(args.video_dir, args.out, backend=args.backend, model=args.model,
                   people=args.people, stride=args.stride, start=args.start, end=args.end,
                   threads=args.threads, jobs=args.jobs, trim=args.trim, overlay=args.overlay,
                   quiet=args.quiet)
    if meta["skeleton"]:
        _log(f"next: epigeo reconstruct {args.out} --skeleton {meta['skeleton']} "
             f"--fps {meta['fps']:g} [--calib FILE | --image-size W H]")
    return meta


def is_video_folder(path) -> bool:
    """Whether ``path`` is a folder holding video files and no OpenPose ``*_json`` folders."""
    from pose.video import VIDEO_EXTENSIONS
    p = Path(path)
    if not p.is_dir() or any(d.is_dir() for d in p.glob("*_json")):
        return False
    return any(f.suffix.lower() in VIDEO_EXTENSIONS for f in p.iterdir() if f.is_file())


def videos_to_detections(args) -> None:
    """``epigeo reconstruct`` hook: when ``args.input`` is a folder of videos, detect into
    ``OUT/detections`` (resumable) and point ``args.input`` there; the skeleton, frame rate
    and (without ``--calib``) image size default to the videos'. Other inputs: no change."""
    if not is_video_folder(args.input):
        return
    out = Path(args.out) / "detections"
    _log(f"INPUT {args.input} is a folder of videos: detecting 2D keypoints into {out}")
    meta = _detect(args.input, out, backend=args.detect_backend, model=args.detect_model,
                   people=args.detect_people, stride=args.detect_stride,
                   start=args.detect_start, end=args.detect_end, threads=args.detect_threads,
                   jobs=args.detect_jobs, trim=getattr(args, "trim", False), overlay=3, quiet=args.quiet)
    args.input = str(out)
    if not getattr(args, "skeleton", None) and meta["skeleton"]:
        args.skeleton = meta["skeleton"]
    if not getattr(args, "fps", 0) and meta["fps"]:
        args.fps = meta["fps"] / max(1, meta["stride"])
    if not getattr(args, "image_size", None) and not getattr(args, "calib", None):
        args.image_size = list(meta["image_size"][0])   # for the focal guess
