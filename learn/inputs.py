"""Reading a user's multi-camera 2D detections for the ``epigeo`` command.

Accepted inputs:
- a folder of per-camera OpenPose JSON folders (``cam01_json/``, ...), directly or under ``pose/``;
- a folder of COCO keypoint JSON files, one per camera (sorted by file name; frames ordered by
  ``image_id``; the highest-scoring person per image);
- the project's npz (:func:`pose.save_project_npz`).

``all_people=True`` (``epigeo reconstruct --people``) keeps every detected person:
``keypoints (C, T, P, J, 3)``, NaN in all three values where a slot holds no person (the
convention of :mod:`pose.io_openpose`); COCO people by descending score.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

import pose

__all__ = ["Detections", "load_detections", "sanitize_keypoints"]


@dataclass(frozen=True)
class Detections:
    """``keypoints (C, T, J, 3)``: ``[u, v, confidence]`` px, confidence 0 = missing (or
    ``(C, T, P, J, 3)`` with every person, NaN where a slot has no person: ``all_people``);
    ``camera_names``; ``skeleton`` (a :class:`pose.Skeleton` name or ``""``); ``source``;
    ``image_size``: ``(width, height)`` px when the input stores it (npz), else ``None``."""

    keypoints: np.ndarray
    camera_names: tuple
    skeleton: str
    source: str
    image_size: tuple | None = None

    @property
    def x(self) -> np.ndarray:
        """``(C, T, [P,] J, 2)`` pixels with NaN where the confidence is 0 or no person."""
        x = self.keypoints[..., :2].copy()
        x[~(self.keypoints[..., 2] > 0)] = np.nan
        return x

    @property
    def confidence(self) -> np.ndarray:
        """``(C, T, [P,] J)``; 0 where there is no person."""
        return np.nan_to_num(self.keypoints[..., 2], nan=0.0)

    @property
    def num_joints(self) -> int:
        return int(self.keypoints.shape[-2])


def _equal_lengths(per, names, trim, what):
    lengths = [p.shape[0] for p in per]
    if len(set(lengths)) > 1:
        if not trim:
            detail = ", ".join(f"{n}: {k}" for n, k in zip(names, lengths))
            raise ValueError(f"{what}: cameras have different frame counts ({detail}); "
                             "pass --trim to keep the first min(...) frames of every camera")
        T = min(lengths)
        per = [p[:T] for p in per]
    return np.stack(per)


#: skeleton guessed from an OpenPose-format input's joint count (Pose2Sim's OpenPose model;
#: ``epigeo detect``'s BlazePose output)
OPENPOSE_SKELETONS = {25: "body_25b", 33: "blazepose_33"}


def _pad_people(per):
    """Per-camera ``(T, P_c, J, 3)`` → the same with one ``P`` (NaN-padded)."""
    P = max(p.shape[1] for p in per)
    return [np.concatenate([p, np.full(p.shape[:1] + (P - p.shape[1],) + p.shape[2:], np.nan)],
                           1) for p in per]


def _openpose(root: Path, trim: bool, progress: bool, all_people: bool = False) -> Detections:
    subs = sorted(d for d in root.glob("*_json") if d.is_dir())
    names = tuple(d.name[:-5] for d in subs)
    per = []
    for d in tqdm(subs, desc="reading OpenPose", disable=not progress, unit="camera"):
        k = pose.read_openpose_folder(d, num_joints=None, all_people=all_people)
        if k.shape[0] == 0:
            raise ValueError(f"{d}: camera '{d.name}' has no frames")
        per.append(k)
    J = {p.shape[-2] for p in per if p.shape[-2]}
    if len(J) > 1:
        raise ValueError(f"{root}: cameras have different joint counts {sorted(J)}")
    if all_people:
        J = J.pop() if J else 0
        per = _pad_people([p if p.shape[-2] else np.full(p.shape[:2] + (J, 3), np.nan)
                           for p in per])
    kp = _equal_lengths(per, names, trim, str(root))
    skel = OPENPOSE_SKELETONS.get(kp.shape[-2], "")
    return Detections(keypoints=kp, camera_names=names, skeleton=skel, source=str(root))


def _coco(files, trim: bool, progress: bool, all_people: bool = False) -> Detections:
    per, names = [], []
    for f in tqdm(files, desc="reading COCO", disable=not progress, unit="camera"):
        c = pose.read_coco_keypoints(f)
        if c.image_id.size == 0:
            raise ValueError(f"{f}: no keypoint annotations")
        from pose.io_coco import coco_frames
        per.append(coco_frames(c, all_people=all_people)[1])
        names.append(Path(f).stem)
    if all_people:
        per = _pad_people(per)
    kp = _equal_lengths(per, names, trim, str(Path(files[0]).parent))
    return Detections(keypoints=kp, camera_names=tuple(names),
                      skeleton="coco_17" if kp.shape[-2] == 17 else "", source=str(files[0]))


def load_detections(path, *, trim: bool = False, progress: bool = True,
                    skeleton: str | None = None, all_people: bool = False) -> Detections:
    """Read detections from ``path`` (see the module docstring). Raises ``ValueError`` naming the
    file or camera when the input is malformed, has fewer than two cameras, or cameras disagree
    on the frame count (unless ``trim``).

    ``skeleton`` names the joint layout (a :data:`pose.SKELETONS` key); by default it is guessed:
    OpenPose with 25 joints → ``body_25b``, 33 → ``blazepose_33``, COCO with 17 → ``coco_17``,
    an npz's stored name, else unknown (``""``: root = joint 0, no skeleton plots).

    ``all_people``: every person, ``keypoints (C, T, P, J, 3)`` (module docstring); a
    single-person npz becomes ``P = 1``."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"INPUT: {p} does not exist")
    if p.is_file():
        if p.suffix != ".npz":
            raise ValueError(f"INPUT: {p}: expected a folder or a project .npz file")
        d = pose.load_project_npz(p)
        kp = np.asarray(d.keypoints, np.float64)
        if all_people and kp.ndim == 4:
            kp = kp[:, :, None]
        if kp.ndim != (5 if all_people else 4) or kp.shape[-1] != 3:
            want = "(C, T, P, J, 3)" if all_people else "(C, T, J, 3) (several people: use --people)"
            raise ValueError(f"{p}: field 'keypoints' must be {want}, got {kp.shape}")
        names = tuple(d.camera_names) or tuple(f"cam{c}" for c in range(kp.shape[0]))
        size = np.asarray(d.image_size, np.float64)
        det = Detections(keypoints=kp, camera_names=names, skeleton=d.skeleton, source=str(p),
                         image_size=tuple(int(v) for v in size[0]) if size.size else None)
    else:
        root = p
        if not any(root.glob("*_json")) and (root / "pose").is_dir():
            root = root / "pose"
        if any(d.is_dir() for d in root.glob("*_json")):
            det = _openpose(root, trim, progress, all_people)
        else:
            files = sorted(root.glob("*.json"))
            if not files:
                raise ValueError(f"INPUT: {p}: no '*_json' camera folders and no COCO .json files")
            det = _coco(files, trim, progress, all_people)
    if skeleton:
        sk = pose.get_skeleton(skeleton)
        if sk.num_joints != det.num_joints:
            raise ValueError(f"--skeleton: {sk.name} has {sk.num_joints} joints, the input "
                             f"{p} has {det.num_joints}")
        det = Detections(keypoints=det.keypoints, camera_names=det.camera_names,
                         skeleton=sk.name, source=det.source, image_size=det.image_size)
    if det.keypoints.shape[0] < 2:
        raise ValueError(f"INPUT: {p}: need at least 2 cameras, found {det.keypoints.shape[0]}")
    empty = [n for n, k in zip(det.camera_names, det.keypoints) if not np.any(k[..., 2] > 0)]
    if empty:
        raise ValueError(f"INPUT: camera(s) {', '.join(empty)} detect nothing in any frame")
    return det


def sanitize_keypoints(keypoints, camera_names, image_sizes, *, margin: float = 1.0):
    """Catch the common real-data traps in ``keypoints (C, T, J, 3)`` ``[u, v, confidence]`` px.

    Observations with confidence > 0 become missing (confidence 0) when they are
    - exactly ``(0, 0)``: how OpenPose and many exporters write a joint they did not find;
    - not finite;
    - absurd: farther outside the image than ``margin`` image sizes (``image_sizes (C, 2)``
      ``(width, height)`` px, or one ``(2,)`` for all cameras).
    Returns ``(cleaned copy, messages)``: one message per camera and kind, naming the camera
    and the count. A camera left with no observation raises ``ValueError`` naming it."""
    kp = np.array(keypoints, np.float64, copy=True)
    if kp.ndim != 4 or kp.shape[-1] != 3:
        raise ValueError(f"keypoints: expected shape (C, T, J, 3), got shape {kp.shape}")
    C = kp.shape[0]
    size = np.broadcast_to(np.asarray(image_sizes, np.float64).reshape(-1, 2), (C, 2))
    u, v, conf = kp[..., 0], kp[..., 1], kp[..., 2]
    seen = conf > 0
    zero = seen & (u == 0) & (v == 0)
    bad = seen & ~(np.isfinite(u) & np.isfinite(v)) & ~zero
    W, H = size[:, 0, None, None], size[:, 1, None, None]
    with np.errstate(invalid="ignore"):
        far = seen & ~zero & ~bad & ((u < -margin * W) | (u > (1 + margin) * W)
                                     | (v < -margin * H) | (v > (1 + margin) * H))
    msgs = []
    for c, name in enumerate(camera_names):
        n = max(1, int(seen[c].sum()))
        if zero[c].any():
            msgs.append(f"camera {name}: {int(zero[c].sum())} keypoints ({100 * zero[c].sum() / n:.1f} %)"
                        " at exactly (0, 0) with confidence > 0 treated as missing (how "
                        "detectors write joints they did not find)")
        if bad[c].any():
            msgs.append(f"camera {name}: {int(bad[c].sum())} keypoints with non-finite "
                        "coordinates and confidence > 0 treated as missing")
        if far[c].any():
            msgs.append(f"camera {name}: {int(far[c].sum())} keypoints ({100 * far[c].sum() / n:.1f} %)"
                        f" far outside the {int(size[c, 0])}x{int(size[c, 1])} image rejected "
                        "(check --image-size / the calibration's image size)")
    drop = zero | bad | far
    kp[..., 2] = np.where(drop, 0.0, conf)
    kp[..., :2] = np.where(drop[..., None], 0.0, kp[..., :2])
    empty = [n for c, n in enumerate(camera_names) if not np.any(kp[c, ..., 2] > 0)]
    if empty:
        raise ValueError(f"INPUT: camera(s) {', '.join(empty)} have no usable keypoint after the "
                         "sanity checks (" + "; ".join(msgs) + ")")
    return kp, msgs


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def match_calibration(calib, names):
    """``calib`` restricted/reordered to the input cameras ``names`` (matched by name ignoring
    case and punctuation: ``cam_01`` = ``cam01``; by order when the names do not match)."""
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
