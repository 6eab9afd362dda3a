"""Camera calibration in Pose2Sim / anipose TOML.

One table per camera::

    [cam_01]
    name = "cam_01"
    size = [ 1088.0, 1920.0]              # width, height (px)
    matrix = [ [fx, 0, cx], [0, fy, cy], [0, 0, 1]]
    distortions = [ k1, k2, p1, p2]       # OpenCV order (anipose may store 5)
    rotation = [ rx, ry, rz]              # Rodrigues vector of R (world → camera)
    translation = [ tx, ty, tz]           # metres; x_cam = R X + t
    fisheye = false

plus an optional ``[metadata]`` table (ignored on reading, written with ``adjusted``/``error``).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from geometry.camera import matrix_to_rodrigues, rodrigues_to_matrix
from geometry.synthetic import Rig

from .io_atomic import atomic_write_text

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10: the tomli backport, if installed
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        tomllib = None

__all__ = ["Calibration", "read_calibration_toml", "write_calibration_toml"]


@dataclass(frozen=True)
class Calibration:
    """``C`` cameras: ``names``, ``image_size (C, 2)`` (width, height) px, ``K (C,3,3)``,
    ``dist (C, D)`` OpenCV coefficients, ``R (C,3,3)``, ``t (C,3)`` (``x_cam = R X + t``, m)."""

    names: tuple
    image_size: np.ndarray
    K: np.ndarray
    dist: np.ndarray
    R: np.ndarray
    t: np.ndarray

    @property
    def num_cameras(self) -> int:
        return len(self.names)

    def to_rig(self) -> Rig:
        """A :class:`geometry.synthetic.Rig` (image size of the first camera; no distortion)."""
        w, h = self.image_size[0]
        return Rig(K=self.K.copy(), R=self.R.copy(), t=self.t.copy(),
                   image_size=(int(round(w)), int(round(h))))


def _field(path, sec, table, key, shape):
    if key not in table:
        raise ValueError(f"{path}: field '{sec}.{key}' missing")
    try:
        a = np.asarray(table[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: field '{sec}.{key}' is not numeric") from None
    if (shape is not None and a.shape != shape) or not np.all(np.isfinite(a)):
        raise ValueError(f"{path}: field '{sec}.{key}' expected finite shape {shape}, got "
                         f"{a.shape}")
    return a


def read_calibration_toml(path) -> Calibration:
    """Read a Pose2Sim/anipose calibration file (cameras in file order; ``[metadata]`` skipped).

    Malformed files raise ``ValueError`` naming the file and the field.
    """
    path = Path(path)
    if tomllib is None:  # pragma: no cover
        raise ImportError("read_calibration_toml needs Python >= 3.11 or `pip install tomli`")
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: not a readable TOML file ({exc})") from None
    names, size, K, dist, R, t = [], [], [], [], [], []
    for sec, tab in data.items():
        if sec == "metadata" or not isinstance(tab, dict):
            continue
        names.append(str(tab.get("name", sec)))
        size.append(_field(path, sec, tab, "size", (2,)))
        K.append(_field(path, sec, tab, "matrix", (3, 3)))
        d = _field(path, sec, tab, "distortions", None).reshape(-1)
        if d.size not in (4, 5, 8, 12, 14):
            raise ValueError(f"{path}: field '{sec}.distortions' expected 4 or 5 coefficients, "
                             f"got {d.size}")
        dist.append(d)
        r = _field(path, sec, tab, "rotation", None)
        if r.shape == (3,):
            r = rodrigues_to_matrix(r)
        elif r.shape != (3, 3):
            raise ValueError(f"{path}: field '{sec}.rotation' expected a Rodrigues vector (3,) "
                             f"or a matrix (3, 3), got shape {r.shape}")
        R.append(r)
        t.append(_field(path, sec, tab, "translation", (3,)))
    if not names:
        raise ValueError(f"{path}: no camera tables (field '[cam_XX]' missing)")
    D = max(d.size for d in dist)
    dist = np.stack([np.concatenate([d, np.zeros(D - d.size)]) for d in dist])
    return Calibration(names=tuple(names), image_size=np.stack(size), K=np.stack(K), dist=dist,
                       R=np.stack(R), t=np.stack(t))


def _fmt(a) -> str:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return repr(float(a))
    return "[ " + ", ".join(_fmt(v) for v in a) + "]"


def write_calibration_toml(path, calib: Calibration | None = None, *, names=None,
                           image_size=None, K=None, dist=None, R=None, t=None) -> None:
    """Write a Pose2Sim/anipose TOML file from a :class:`Calibration` or from the arrays
    (``R`` as ``(C,3,3)`` matrices or ``(C,3)`` Rodrigues vectors; stored as Rodrigues)."""
    if calib is None:
        if any(v is None for v in (image_size, K, R, t)):
            raise ValueError("calib: give a Calibration or image_size, K, R and t")
        K = np.asarray(K, dtype=np.float64)
        C = K.shape[0]
        Rm = np.asarray(R, dtype=np.float64)
        Rm = rodrigues_to_matrix(Rm) if Rm.shape == (C, 3) else Rm
        calib = Calibration(
            names=(tuple(names) if names is not None
                   else tuple(f"cam_{i + 1:02d}" for i in range(C))),
            image_size=np.broadcast_to(np.asarray(image_size, float), (C, 2)),
            K=K, dist=np.zeros((C, 4)) if dist is None else np.asarray(dist, dtype=np.float64),
            R=Rm, t=np.asarray(t, dtype=np.float64))
    C = calib.num_cameras
    for key, shape in (("image_size", (C, 2)), ("K", (C, 3, 3)), ("R", (C, 3, 3)), ("t", (C, 3))):
        if np.shape(getattr(calib, key)) != shape:
            raise ValueError(f"{key}: expected shape {shape}, got shape "
                             f"{np.shape(getattr(calib, key))}")
    rv = matrix_to_rodrigues(calib.R)
    lines = []
    for i, name in enumerate(calib.names):
        key = name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)
        lines += [f"[{key}]", f"name = {json.dumps(name)}", f"size = {_fmt(calib.image_size[i])}",
                  f"matrix = {_fmt(calib.K[i])}", f"distortions = {_fmt(calib.dist[i])}",
                  f"rotation = {_fmt(rv[i])}", f"translation = {_fmt(calib.t[i])}",
                  "fisheye = false", ""]
    lines += ["[metadata]", "adjusted = false", "error = 0.0", ""]
    atomic_write_text(path, "\n".join(lines))
