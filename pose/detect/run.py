"""Detecting people in a folder of synchronised camera videos → OpenPose JSON per camera.

:func:`detect_videos` writes ``OUT/<camera>_json/<camera>_<frame:012d>_keypoints.json`` (one
file per processed frame, every detected person, OpenPose's format: readable by
:func:`pose.read_openpose_cameras`, by ``epigeo reconstruct OUT`` and by Pose2Sim) and
``OUT/detect.json`` (backend, skeleton, cameras, frame rate, image sizes, processed frames).
Files are written atomically, so an interrupted run resumes where it stopped: frames whose JSON
exists are not detected again. With ``overlay`` a few frames per camera are saved as JPEGs
with the keypoints drawn, in ``OUT/overlay/``.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .. import video as pv
from ..io_openpose import write_openpose_json
from ..skeletons import SKELETONS

__all__ = ["detect_videos", "frame_json_path", "draw_keypoints"]


def frame_json_path(out: Path, camera: str, index: int) -> Path:
    """Where frame ``index`` of ``camera`` goes:
    ``out/<camera>_json/<camera>_<index:012d>_keypoints.json`` (OpenPose's naming)."""
    return Path(out) / f"{camera}_json" / f"{camera}_{int(index):012d}_keypoints.json"


def _atomic_write(path: Path, write) -> None:
    """``write(tmp)`` then ``os.replace`` onto ``path`` (no fsync, unlike
    :func:`pose.io_atomic.atomic_path`: it would cost ~4 ms per frame file here; a file lost to
    a crash before the OS flushed it is simply detected again on the next run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def draw_keypoints(frame, people, skeleton: str = "", min_confidence: float = 0.3):
    """A copy of BGR ``frame`` with ``people (P, J, 3)`` ``[u, v, conf]`` drawn (bones of
    ``skeleton`` when known; joints under ``min_confidence`` skipped)."""
    img = frame.copy()
    r = max(2, int(round(max(img.shape[:2]) / 300)))
    bones = SKELETONS[skeleton].bones if skeleton in SKELETONS else ()
    colours = [(0, 0, 255), (255, 128, 0), (0, 200, 0), (200, 0, 200)]
    for p, person in enumerate(np.asarray(people, np.float64).reshape(-1, *np.shape(people)[-2:])):
        col = colours[p % len(colours)]
        ok = person[:, 2] >= min_confidence
        for a, b in bones:
            if ok[a] and ok[b]:
                cv2.line(img, tuple(int(v) for v in person[a, :2]),
                         tuple(int(v) for v in person[b, :2]), col, max(1, r // 2), cv2.LINE_AA)
        for j in np.flatnonzero(ok):
            cv2.circle(img, tuple(int(v) for v in person[j, :2]), r, col, -1, cv2.LINE_AA)
    return img


def _check_previous(out: Path, detector, max_people: int) -> None:
    """Resuming into ``out`` is only right with the same detector settings: compare with the
    ``detect.json`` a previous run left there."""
    f = out / "detect.json"
    if not f.is_file():
        return
    try:
        prev = json.loads(f.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{f}: not readable ({exc}); delete it or use another --out") from None
    now = {"backend": getattr(detector, "name", ""), "skeleton": detector.skeleton,
           "max_people": int(getattr(detector, "max_people", max_people))}
    diff = [f"{k} {prev.get(k)!r} (now {v!r})" for k, v in now.items()
            if k in prev and prev[k] != v and not (k == "skeleton" and not v)]
    if diff:
        raise ValueError(f"--out: {out} holds detections made with other settings "
                         f"({', '.join(diff)}); resuming would mix them: use another --out or "
                         "delete that folder")


def _detect_camera(info, out: Path, detector, idx, stride: int, overlay: int, progress,
                   position: int = 0) -> int:
    """Detect the frames ``idx`` of one camera's video that have no JSON yet (and the overlay
    frames missing); returns how many frame files were written."""
    todo = [int(i) for i in idx if not frame_json_path(out, info.name, i).is_file()]
    shots = set(int(i) for i in idx[np.linspace(0, len(idx) - 1, overlay).round()
                                    .astype(int)]) if overlay else set()
    shots -= {i for i in shots if (out / "overlay" / f"{info.name}_{i:06d}.jpg").is_file()}
    need = sorted(set(todo) | shots)
    bar = tqdm(total=len(idx), initial=len(idx) - len(todo), disable=not progress,
               desc=f"detect {info.name}", unit="frame", position=position)
    detector.reset()
    prev, done = None, 0
    for i, frame in pv.read_frames(info.path, need):
        if prev is not None and i - prev > stride:
            detector.reset()          # a gap (frames done before): track afresh
        prev = i
        people = detector(frame).openpose()
        if i in todo:
            _atomic_write(frame_json_path(out, info.name, i),
                          lambda tmp: write_openpose_json(tmp, people))
            done += 1
            bar.update(1)
        if i in shots:
            jpg = cv2.imencode(".jpg", draw_keypoints(frame, people, detector.skeleton))[1]
            _atomic_write(out / "overlay" / f"{info.name}_{i:06d}.jpg",
                          lambda tmp: Path(tmp).write_bytes(jpg.tobytes()))
    bar.close()
    return done


def _camera_job(info, out, options, idx, stride, overlay, progress, position):
    """One camera in a worker process: its own detector (runtimes do not cross processes)."""
    from .base import make_detector
    return _detect_camera(info, out, make_detector(**options), idx, stride, overlay, progress,
                          position)


def detect_videos(video_dir, out, *, detector=None, backend: str = "blazepose",
                  max_people: int = 1, model: str | None = None, stride: int = 1,
                  start: float | None = None, end: float | None = None, trim: bool = False,
                  overlay: int = 0, progress: bool = True, threads: int = 1,
                  jobs: int = 1) -> dict:
    """Detect people in every video of ``video_dir`` (one per camera, see
    :func:`pose.video.find_videos`) and write OpenPose JSON under ``out`` (module docstring).

    ``detector``: a ready detector (default: :func:`pose.detect.make_detector` with ``backend``,
    ``max_people``, ``model``, ``threads``); ``stride``, ``start``, ``end`` (seconds): which
    frames; ``trim``: allow videos of different lengths (the shortest count is used);
    ``overlay``: how many frames per camera to save with keypoints drawn; ``jobs``: cameras
    detected in parallel worker processes (each with its own detector; not with ``detector``).
    Returns the ``detect.json`` dictionary, with ``frames_detected`` (this run) and
    ``seconds``."""
    from .base import make_detector

    out = Path(out)
    if int(jobs) < 1:
        raise ValueError(f"jobs: expected >= 1, got {jobs}")
    if detector is not None and jobs > 1:
        raise ValueError("jobs: parallel cameras build their own detectors; pass backend/model "
                         "options instead of detector=")
    infos = [pv.probe_video(p) for p in pv.find_videos(video_dir)]
    names = [i.name for i in infos]
    if len(set(names)) != len(names):
        raise ValueError(f"VIDEO_DIR: {video_dir}: two videos share a camera name ({names})")
    n = pv.common_length(infos, trim=trim)
    idx = pv.frame_indices(infos[0], stride=stride, start=start, end=end, frames=n)
    fps = {i.fps for i in infos}
    if len(fps) > 1:
        print(f"warning: the videos declare different frame rates ({sorted(fps)}); frames are "
              "matched by index", flush=True)
    options = dict(backend=backend, max_people=max_people, model=model, threads=threads)
    if detector is None:
        detector = make_detector(**options)
    _check_previous(out, detector, max_people)
    t0 = time.perf_counter()
    if jobs > 1 and len(infos) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(min(jobs, len(infos)), mp_context=mp.get_context("spawn")) as ex:
            futs = [ex.submit(_camera_job, info, out, options, idx, stride, overlay, progress, k)
                    for k, info in enumerate(infos)]
            done_total = sum(f.result() for f in futs)
    else:
        done_total = sum(_detect_camera(info, out, detector, idx, stride, overlay, progress)
                         for info in infos)
    meta = {"backend": getattr(detector, "name", backend), "skeleton": detector.skeleton,
            "video_dir": str(video_dir), "cameras": names,
            "videos": [i.path.name for i in infos], "fps": infos[0].fps,
            "image_size": [[i.width, i.height] for i in infos], "frames": [int(i) for i in idx],
            "stride": int(stride), "max_people": int(getattr(detector, "max_people", max_people))}
    _atomic_write(out / "detect.json",
                  lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=1)))
    meta["frames_detected"] = done_total
    meta["seconds"] = time.perf_counter() - t0
    return meta
