"""Reading videos with OpenCV: finding a camera folder's videos, probing, decoding frame ranges.

Any codec the OpenCV build's FFmpeg decodes works (H.264 and VP9 as in the Pose2Sim demo
videos). Frames come out as ``(H, W, 3)`` uint8 **BGR**. Frame ``i`` is the ``i``-th decoded
frame (0-based); a time range ``[start, end)`` in seconds selects the frames with
``start ≤ i / fps < end``. Problems raise ``ValueError`` naming the file: a file OpenCV cannot
open, a video that ends before the frame count its header declares (truncated or corrupt), a
folder without videos, cameras of different lengths (unless trimmed).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = ["VIDEO_EXTENSIONS", "VideoInfo", "find_videos", "probe_video", "frame_indices",
           "common_length", "read_frames"]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


@dataclass(frozen=True)
class VideoInfo:
    """``path``; ``frames`` (the count the container declares); ``fps``; ``width``, ``height``
    px; ``name`` (the file stem, used as the camera name)."""

    path: Path
    frames: int
    fps: float
    width: int
    height: int

    @property
    def name(self) -> str:
        return self.path.stem


def find_videos(folder) -> list[Path]:
    """The video files of ``folder`` (by extension, sorted by name; one per camera)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"VIDEO_DIR: {folder} is not a folder")
    vids = sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    if not vids:
        raise ValueError(f"VIDEO_DIR: {folder} holds no video files "
                         f"({', '.join(VIDEO_EXTENSIONS)})")
    return vids


def _open(path: Path):
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise ValueError(f"{path}: not a readable video (OpenCV could not open it)")
    return cap


def probe_video(path) -> VideoInfo:
    """Header facts of a video; decodes its first frame to check that it really is readable."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such video file")
    cap = _open(path)
    try:
        n = int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        ok, frame = cap.read()
    finally:
        cap.release()
    if not ok or frame is None:
        raise ValueError(f"{path}: not a readable video (no frame could be decoded)")
    if n <= 0:
        raise ValueError(f"{path}: the container declares no frame count")
    return VideoInfo(path=path, frames=n, fps=fps if fps > 0 else 0.0,
                     width=int(frame.shape[1]), height=int(frame.shape[0]))


def frame_indices(info: VideoInfo, *, stride: int = 1, start: float | None = None,
                  end: float | None = None, frames: int | None = None) -> np.ndarray:
    """Indices of the frames to process: every ``stride``-th frame of ``[start, end)`` seconds
    (needs the fps) among the first ``frames`` (default ``info.frames``)."""
    if int(stride) < 1:
        raise ValueError(f"stride: expected >= 1, got {stride}")
    n = info.frames if frames is None else int(frames)
    lo, hi = 0, n
    if start is not None or end is not None:
        if info.fps <= 0:
            raise ValueError(f"{info.path}: no frame rate in the file; a time range needs one")
        if start is not None:
            lo = max(0, int(np.ceil(float(start) * info.fps - 1e-9)))
        if end is not None:
            hi = min(n, int(np.ceil(float(end) * info.fps - 1e-9)))
    if lo >= hi:
        raise ValueError(f"start, end: the range [{start}, {end}) s selects no frame of "
                         f"{info.path} ({n} frames at {info.fps:g} fps)")
    return np.arange(lo, hi, int(stride))


def common_length(infos, *, trim: bool = False) -> int:
    """The frame count shared by the cameras ``infos``; different counts raise ``ValueError``
    naming every file and its count, unless ``trim`` (then the shortest count)."""
    counts = [i.frames for i in infos]
    if len(set(counts)) > 1 and not trim:
        detail = ", ".join(f"{i.path.name}: {i.frames}" for i in infos)
        raise ValueError(f"videos of different lengths in {infos[0].path.parent} ({detail}); "
                         "pass --trim to keep the first min(...) frames of every camera")
    return min(counts)


def read_frames(path, indices, *, skip=()):
    """Yield ``(index, frame)`` for the sorted frame ``indices`` of a video, decoding in order
    (frames in between are grabbed, not converted). Indices in ``skip`` are passed over the same
    way (already done). A video that ends before the last index raises ``ValueError`` naming the
    file and how many frames it held."""
    path = Path(path)
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size == 0:
        return
    if np.any(np.diff(indices) <= 0) or indices[0] < 0:
        raise ValueError("indices: expected increasing non-negative frame indices")
    want = set(int(i) for i in indices) - set(int(i) for i in skip)
    last = int(indices[-1])
    cap = _open(path)
    try:
        declared = int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        for i in range(last + 1):
            if i in want:
                ok, frame = cap.read()
            else:
                ok, frame = cap.grab(), None
            if not ok:
                raise ValueError(f"{path}: truncated or corrupt video: decoding stopped after "
                                 f"{i} frames, the file declares {declared}")
            if i in want:
                yield i, frame
    finally:
        cap.release()
