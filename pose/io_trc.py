"""OpenSim ``.trc`` marker files (track row column), as Pose2Sim writes them for OpenSim.

Layout (tab-separated)::

    PathFileType  4  (X/Y/Z)  <file name>
    DataRate  CameraRate  NumFrames  NumMarkers  Units  OrigDataRate  OrigDataStartFrame  OrigNumFrames
    30  30  120  25  m  30  1  120
    Frame#  Time  Hip  <tab>  <tab>  RHip  ...        (each marker name then two empty cells)
    <tab>  <tab>  X1  Y1  Z1  X2  Y2  Z2  ...
    (empty line)
    1  0.000000  x  y  z  ...                       (one row per frame)

``Frame#`` counts from ``OrigDataStartFrame``; ``Time`` = (frame - first frame) / DataRate
seconds. A marker that is missing in a frame (NaN) is written as three empty cells, which
OpenSim reads as NaN (missing marker). Units are ``"m"`` or ``"mm"`` (OpenSim's two). The
coordinates are written as given (no axis change): OpenSim models are Y-up, so rotate a Z-up
world first when the file is meant for OpenSim's scaling/IK.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io_atomic import atomic_write_text

__all__ = ["TrcData", "write_trc", "read_trc", "TRC_UNITS"]

#: units OpenSim understands in a .trc header
TRC_UNITS = ("m", "mm")

_FIELDS = ("DataRate", "CameraRate", "NumFrames", "NumMarkers", "Units", "OrigDataRate",
           "OrigDataStartFrame", "OrigNumFrames")


@dataclass(frozen=True)
class TrcData:
    """A read ``.trc`` file: ``points (T, M, 3)`` in ``units`` (NaN = missing marker),
    ``marker_names (M,)``, ``frame_numbers (T,)`` int, ``times (T,)`` s, and the header:
    ``data_rate``, ``camera_rate``, ``units``, ``orig_data_rate``, ``orig_data_start_frame``,
    ``orig_num_frames``, ``path_file_type`` (4), ``file_name`` (the name on the first line)."""

    points: np.ndarray
    marker_names: tuple
    frame_numbers: np.ndarray
    times: np.ndarray
    data_rate: float
    camera_rate: float
    units: str
    orig_data_rate: float
    orig_data_start_frame: int
    orig_num_frames: int
    path_file_type: int = 4
    file_name: str = ""


def _num(v: float) -> str:
    return f"{v:g}"


def write_trc(path, points3d, marker_names, *, fps: float, units: str = "m",
              camera_rate: float | None = None, orig_data_rate: float | None = None,
              start_frame: int = 1, orig_num_frames: int | None = None,
              decimals: int = 6) -> Path:
    """Write ``points3d (T, M, 3)`` (in ``units``; NaN = marker missing in that frame, written
    as empty cells) with ``marker_names (M,)`` to ``path`` atomically.

    ``fps`` (> 0) is DataRate; CameraRate and OrigDataRate default to it, OrigNumFrames to
    ``T``, OrigDataStartFrame (= the first ``Frame#``) to ``start_frame``. Returns the path."""
    P = np.asarray(points3d, np.float64)
    if P.ndim != 3 or P.shape[-1] != 3:
        raise ValueError(f"points3d: expected shape (T, M, 3), got shape {P.shape}")
    names = [str(n) for n in marker_names]
    if len(names) != P.shape[1]:
        raise ValueError(f"marker_names: {len(names)} names for {P.shape[1]} markers")
    bad = [n for n in names if not n or any(ch in n for ch in "\t\r\n")]
    if bad or len(set(names)) != len(names):
        raise ValueError(f"marker_names: names must be unique, non-empty, without tabs or line "
                         f"breaks, got {bad or names}")
    if units not in TRC_UNITS:
        raise ValueError(f"units: expected one of {TRC_UNITS}, got {units!r}")
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps: expected a frame rate > 0, got {fps}")
    if np.isinf(P).any():
        raise ValueError("points3d: infinite coordinates (use NaN for a missing marker)")
    T, M = P.shape[:2]
    path = Path(path)
    head = ["PathFileType\t4\t(X/Y/Z)\t" + path.name,
            "\t".join(_FIELDS),
            "\t".join([_num(fps), _num(camera_rate or fps), str(T), str(M), units,
                       _num(orig_data_rate or fps), str(int(start_frame)),
                       str(int(orig_num_frames if orig_num_frames is not None else T))]),
            "Frame#\tTime\t" + "\t\t\t".join(names) + "\t\t",
            "\t\t" + "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, M + 1)),
            ""]
    rows = []
    for k in range(T):
        cells = [str(int(start_frame) + k), f"{k / fps:.{decimals}f}"]
        cells += ["" if not np.isfinite(v) else f"{v:.{decimals}f}" for v in P[k].reshape(-1)]
        rows.append("\t".join(cells))
    return atomic_write_text(path, "\n".join(head + rows) + "\n")


def read_trc(path) -> TrcData:
    """Read a ``.trc`` file (this module's layout, Pose2Sim's, OpenSim's examples; the empty
    line after the X/Y/Z row is optional). Empty cells are NaN. A malformed file raises
    ``ValueError`` naming the file and the field."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable text file ({exc})") from None
    if len(lines) < 5 or not lines[0].startswith("PathFileType"):
        raise ValueError(f"{path}: field 'PathFileType' missing on the first line")
    first = lines[0].split("\t")
    try:
        ptype = int(first[1])
    except (IndexError, ValueError):
        raise ValueError(f"{path}: field 'PathFileType' has no integer value") from None
    keys = [k.strip() for k in lines[1].split("\t")]
    vals = [v.strip() for v in lines[2].split("\t")]
    hdr = dict(zip(keys, vals))
    missing = [k for k in _FIELDS if k not in hdr]
    if missing:
        raise ValueError(f"{path}: header field(s) {', '.join(missing)} missing")
    try:
        rate, cam_rate, orig_rate = (float(hdr[k]) for k in ("DataRate", "CameraRate",
                                                             "OrigDataRate"))
        n_frames, n_markers, start, orig_n = (int(float(hdr[k])) for k in (
            "NumFrames", "NumMarkers", "OrigDataStartFrame", "OrigNumFrames"))
    except ValueError as exc:
        raise ValueError(f"{path}: a numeric header field is not a number ({exc})") from None
    names = [n.strip() for n in lines[3].split("\t")[2:] if n.strip()]
    if len(names) != n_markers:
        raise ValueError(f"{path}: field 'NumMarkers' is {n_markers} but the marker row names "
                         f"{len(names)}")
    data = [ln for ln in lines[5:] if ln.strip()]
    if len(data) != n_frames:
        raise ValueError(f"{path}: field 'NumFrames' is {n_frames} but the file has "
                         f"{len(data)} data rows")
    frames = np.zeros(n_frames, np.int64)
    times = np.zeros(n_frames)
    pts = np.full((n_frames, n_markers * 3), np.nan)
    for k, ln in enumerate(data):
        cells = ln.split("\t")
        try:
            frames[k], times[k] = int(float(cells[0])), float(cells[1])
            vals_k = cells[2:2 + 3 * n_markers]
            for i, v in enumerate(vals_k):
                if v.strip():
                    pts[k, i] = float(v)
        except (IndexError, ValueError) as exc:
            raise ValueError(f"{path}: data row {k + 1} (line {lines.index(ln) + 1}) is "
                             f"malformed ({exc})") from None
    return TrcData(points=pts.reshape(n_frames, n_markers, 3), marker_names=tuple(names),
                   frame_numbers=frames, times=times, data_rate=rate, camera_rate=cam_rate,
                   units=hdr["Units"], orig_data_rate=orig_rate, orig_data_start_frame=start,
                   orig_num_frames=orig_n, path_file_type=ptype,
                   file_name=first[3] if len(first) > 3 else "")
