"""``.npz`` files: VideoPose3D's datasets and the project's own format.

**VideoPose3D** (``data_2d_*.npz`` / ``data_3d_*.npz``): pickled dictionaries
``positions_2d[subject][action] = [per camera (T, J, 2)]``, ``positions_3d[subject][action] =
(T, J, 3)`` and ``metadata`` (``layout_name``, ``num_joints``, ``keypoints_symmetry``). Reading
them needs ``allow_pickle``: only open files you trust.

**Project format** (version 1, no pickles): cameras ``K (C,3,3)``, ``dist (C,D)``, ``R (C,3,3)``,
``t (C,3)`` (``x_cam = R X + t``, metres), ``image_size (C,2)`` (width, height), ``camera_names
(C,)``; ``keypoints (C,T,J,3)`` ``[u, v, confidence]`` (confidence 0 = missing); optional ``X
(T,J,3)`` metres;  several people: ``keypoints (C,T,P,J,3)`` (P detection slots per frame, NaN
where a slot has no person, as :mod:`pose.io_openpose`) and ``X (T,N,J,3)`` per person; ``joint_names (J,)``, ``skeleton`` (name), ``fps``; ``quality/<name>`` arrays
(any per-frame or per-camera quality measure, e.g. reprojection error).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["ProjectData", "save_project_npz", "load_project_npz", "read_videopose3d_npz",
           "write_videopose3d_npz"]

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ProjectData:
    """The project's npz content (see the module docstring for shapes and units)."""

    K: np.ndarray
    dist: np.ndarray
    R: np.ndarray
    t: np.ndarray
    image_size: np.ndarray
    keypoints: np.ndarray
    camera_names: tuple = ()
    joint_names: tuple = ()
    skeleton: str = ""
    fps: float = 0.0
    X: np.ndarray | None = None
    quality: dict = field(default_factory=dict)


def save_project_npz(path, data: ProjectData) -> None:
    """Write ``data`` to ``path`` (compressed, no pickles); shapes are checked first."""
    C = np.shape(data.K)[0]
    kp = np.asarray(data.keypoints, dtype=np.float64)
    if kp.ndim not in (4, 5) or kp.shape[0] != C or kp.shape[-1] != 3:
        raise ValueError(f"keypoints: expected shape ({C}, T, J, 3) or ({C}, T, P, J, 3), got "
                         f"shape {kp.shape}")
    T, J = kp.shape[1], kp.shape[-2]
    for key, shape in (("K", (C, 3, 3)), ("R", (C, 3, 3)), ("t", (C, 3)), ("image_size", (C, 2))):
        if np.shape(getattr(data, key)) != shape:
            raise ValueError(f"{key}: expected shape {shape}, got shape "
                             f"{np.shape(getattr(data, key))}")
    if np.ndim(data.dist) != 2 or np.shape(data.dist)[0] != C:
        raise ValueError(f"dist: expected shape ({C}, D), got shape {np.shape(data.dist)}")
    xs = np.shape(data.X) if data.X is not None else None
    if xs is not None and kp.ndim == 4 and xs != (T, J, 3):
        raise ValueError(f"X: expected shape ({T}, {J}, 3), got shape {xs}")
    if xs is not None and kp.ndim == 5 and (len(xs) != 4 or xs[0] != T or xs[2:] != (J, 3)):
        raise ValueError(f"X: expected shape ({T}, N, {J}, 3) with several people, got "
                         f"shape {xs}")
    arrays = dict(epigeo_format=np.int64(FORMAT_VERSION), K=data.K, dist=data.dist, R=data.R,
                  t=data.t, image_size=data.image_size, keypoints=kp,
                  camera_names=np.array(data.camera_names or [f"cam_{i}" for i in range(C)],
                                        dtype=str),
                  joint_names=np.array(data.joint_names, dtype=str),
                  skeleton=np.array(data.skeleton), fps=np.float64(data.fps))
    if data.X is not None:
        arrays["X"] = np.asarray(data.X, dtype=np.float64)
    for k, v in data.quality.items():
        arrays[f"quality/{k}"] = np.asarray(v)
    np.savez_compressed(Path(path), **arrays)


def load_project_npz(path) -> ProjectData:
    """Read a file written by :func:`save_project_npz`; ``ValueError`` names the file and field."""
    path = Path(path)
    try:
        f = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable npz file ({exc})") from None
    with f:
        if "epigeo_format" not in f.files:
            raise ValueError(f"{path}: field 'epigeo_format' missing (not an epigeo npz file)")
        if int(f["epigeo_format"]) > FORMAT_VERSION:
            raise ValueError(f"{path}: field 'epigeo_format' is {int(f['epigeo_format'])}, this "
                             f"version reads <= {FORMAT_VERSION}")
        for key in ("K", "dist", "R", "t", "image_size", "keypoints"):
            if key not in f.files:
                raise ValueError(f"{path}: field {key!r} missing")
        kp = f["keypoints"]
        C = f["K"].shape[0]
        if kp.ndim not in (4, 5) or kp.shape[0] != C or kp.shape[-1] != 3:
            raise ValueError(f"{path}: field 'keypoints' expected shape ({C}, T, J, 3) or "
                             f"({C}, T, P, J, 3), got {kp.shape}")
        for key, shape in (("K", (C, 3, 3)), ("R", (C, 3, 3)), ("t", (C, 3)),
                           ("image_size", (C, 2))):
            if f[key].shape != shape:
                raise ValueError(f"{path}: field {key!r} expected shape {shape}, got "
                                 f"{f[key].shape}")
        get = lambda k, d: f[k] if k in f.files else d  # noqa: E731
        return ProjectData(
            K=f["K"].astype(np.float64), dist=f["dist"].astype(np.float64),
            R=f["R"].astype(np.float64), t=f["t"].astype(np.float64),
            image_size=f["image_size"].astype(np.float64), keypoints=kp.astype(np.float64),
            camera_names=tuple(str(s) for s in get("camera_names", [])),
            joint_names=tuple(str(s) for s in get("joint_names", [])),
            skeleton=str(get("skeleton", "")), fps=float(get("fps", 0.0)),
            X=f["X"].astype(np.float64) if "X" in f.files else None,
            quality={k[8:]: f[k] for k in f.files if k.startswith("quality/")})


def read_videopose3d_npz(path) -> dict:
    """A VideoPose3D dataset file → ``{"positions_2d" | "positions_3d": {subject: {action: ...}},
    "metadata": dict}`` with float64 arrays. Uses pickle: trusted files only."""
    path = Path(path)
    try:
        f = np.load(path, allow_pickle=True)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable npz file ({exc})") from None
    with f:
        keys = [k for k in ("positions_2d", "positions_3d") if k in f.files]
        if not keys:
            raise ValueError(f"{path}: field 'positions_2d' or 'positions_3d' missing")
        out = {}
        for k in keys:
            d = f[k].item() if f[k].dtype == object else None
            if not isinstance(d, dict):
                raise ValueError(f"{path}: field {k!r} is not a pickled dictionary")
            conv = {}
            for subj, acts in d.items():
                if not isinstance(acts, dict):
                    raise ValueError(f"{path}: field '{k}[{subj}]' is not a dictionary")
                conv[subj] = {a: ([np.asarray(c, np.float64) for c in v] if isinstance(v, list)
                                  else np.asarray(v, np.float64)) for a, v in acts.items()}
            out[k] = conv
        md = f["metadata"].item() if "metadata" in f.files else {}
        out["metadata"] = md if isinstance(md, dict) else {}
    return out


def write_videopose3d_npz(path, *, positions_2d: dict | None = None,
                          positions_3d: dict | None = None, metadata: dict | None = None) -> None:
    """Write a VideoPose3D-style file (the inverse of :func:`read_videopose3d_npz`)."""
    if positions_2d is None and positions_3d is None:
        raise ValueError("positions_2d/positions_3d: give at least one")
    arrays = {}
    for k, v in (("positions_2d", positions_2d), ("positions_3d", positions_3d),
                 ("metadata", metadata)):
        if v is not None:
            box = np.empty((), dtype=object)
            box[()] = v
            arrays[k] = box
    np.savez_compressed(Path(path), **arrays)
