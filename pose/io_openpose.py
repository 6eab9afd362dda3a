"""OpenPose JSON keypoints: one file per frame per camera.

A file holds ``{"people": [{"pose_keypoints_2d": [u0, v0, c0, u1, v1, c1, ...]}, ...]}``;
a joint OpenPose did not find is ``0, 0, 0``; a person with an empty ``pose_keypoints_2d``
list is skipped. Readers return float64 ``[u, v, confidence]`` arrays in that same convention
(missing = all three zero), frames in sorted file-name order.

The main subject of a frame is the person with the largest bounding box of their detected
joints (confidence > 0), as in ``pose2sim_demo.npz``; a frame with nobody is all zeros.

Every person (``all_people=True``): ``(T, P, J, 3)`` / ``(C, T, P, J, 3)`` with the people of a
frame in file order. A slot with **no person** (fewer people in that frame or camera than
``P``, or frames past a camera's end) is **NaN** in all three values; a joint a present person
lacks stays as OpenPose writes it (``0, 0, 0``). So ``isnan(u)`` = "nobody there" and
``confidence == 0`` = "person there, joint not found"; :func:`people_pixels` turns both into
NaN pixels with confidence 0, the convention of :func:`geometry.reconstruct_people`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["read_openpose_json", "read_openpose_folder", "read_openpose_cameras",
           "write_openpose_json", "largest_person", "people_pixels"]


def read_openpose_json(path, *, num_joints: int | None = None) -> np.ndarray:
    """Every person of one OpenPose JSON file → ``(P, J, 3)`` ``[u, v, confidence]``.

    ``num_joints`` checks the joint count (e.g. 25 for BODY_25/BODY_25B); a malformed file raises
    ``ValueError`` naming the file and the field.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise ValueError(f"{path}: field 'people' missing or not a list")
    out = []
    for i, person in enumerate(data["people"]):
        kp = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
        try:
            a = np.asarray(kp, dtype=np.float64)
        except (TypeError, ValueError):
            a = None
        if a is not None and a.size == 0:
            continue  # OpenPose writes an empty list for a person without body keypoints
        if a is None or a.ndim != 1 or a.size % 3 or (num_joints and a.size != 3 * num_joints):
            want = f"{3 * num_joints} numbers" if num_joints else "a multiple of 3 numbers"
            raise ValueError(f"{path}: field 'people[{i}].pose_keypoints_2d' must hold {want}, "
                             f"got {kp if a is None else a.size}")
        out.append(a.reshape(-1, 3))
    J = num_joints or (out[0].shape[0] if out else 0)
    if any(p.shape[0] != J for p in out):
        raise ValueError(f"{path}: field 'pose_keypoints_2d' has different lengths across people")
    return np.stack(out) if out else np.zeros((0, J, 3))


def largest_person(people: np.ndarray) -> int:
    """Index of the person ``(P, J, 3)`` with the largest bounding box of detected joints
    (``-1`` when there is none)."""
    best, area_best = -1, -1.0
    for i, p in enumerate(people):
        q = p[p[:, 2] > 0, :2]
        area = float(np.prod(q.max(0) - q.min(0))) if len(q) else 0.0
        if area > area_best:
            best, area_best = i, area
    return best


def _frame_files(folder: Path):
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() == ".json")
    if not files:
        raise ValueError(f"{folder}: no .json files")
    return files


def _joint_count(frames, num_joints, where) -> int:
    """The joint count of frames ``[(P, J, 3)]``: ``num_joints``, else the one count of the
    non-empty frames (0 when every frame is empty); different counts raise naming ``where``."""
    if num_joints:
        return int(num_joints)
    counts = sorted({f.shape[1] for f in frames if f.shape[0]})
    if len(counts) > 1:
        raise ValueError(f"{where}: frames have different joint counts {counts}")
    return counts[0] if counts else 0


def _stack_people(frames, J: int, P: int | None = None) -> np.ndarray:
    """Frames ``[(P_t, J, 3)]`` → ``(T, P, J, 3)``, NaN where a slot has no person."""
    P = max([1] + [f.shape[0] for f in frames]) if P is None else P
    out = np.full((len(frames), P, J, 3), np.nan)
    for t, f in enumerate(frames):
        if f.shape[0]:
            out[t, :f.shape[0]] = f
    return out


def read_openpose_folder(path, *, num_joints: int | None = 25, all_people: bool = False):
    """A folder of OpenPose JSON files (one per frame, sorted by name) →
    ``(T, J, 3)`` ``[u, v, confidence]`` of the main (largest) subject, zeros where missing.

    With ``all_people`` returns ``(T, P, J, 3)`` with every detected person in file order,
    ``P`` = the largest count in any frame (at least 1), NaN-padded (module docstring). Frames
    with nobody are fine; ``num_joints=None`` takes the count from the files.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"path: {folder} is not a folder")
    frames = [read_openpose_json(f, num_joints=num_joints) for f in _frame_files(folder)]
    J = _joint_count(frames, num_joints, folder)
    if all_people:
        return _stack_people(frames, J)
    out = np.zeros((len(frames), J, 3))
    for t, f in enumerate(frames):
        i = largest_person(f)
        if i >= 0:
            out[t] = f[i]
    return out


def read_openpose_cameras(path, *, pattern: str = "*_json", num_joints: int | None = 25,
                          all_people: bool = False):
    """A folder of per-camera sub-folders (``pose/cam01_json``, ...; sorted by name) →
    ``(keypoints (C, T, J, 3), camera_names)``; cameras with fewer frames are zero-padded at the
    end. ``all_people`` gives ``(C, T, P, J, 3)``, NaN where a slot has no person (also past a
    camera's last frame; module docstring). Camera names are the folder names without a
    ``_json`` suffix. Cameras with different joint counts raise ``ValueError`` naming them.
    """
    root = Path(path)
    subs = sorted(d for d in root.glob(pattern) if d.is_dir()) if root.is_dir() else []
    if not subs:
        raise ValueError(f"path: no camera folders matching {pattern!r} in {root}")
    if not all_people:
        per = [read_openpose_folder(d, num_joints=num_joints) for d in subs]
        Js = {p.shape[1] for p in per if p.shape[1]}
        if len(Js) > 1:
            raise ValueError(f"path: camera folders in {root} have different joint counts "
                             f"{sorted(Js)}")
        J = Js.pop() if Js else 0
        T = max(p.shape[0] for p in per)
        out = np.zeros((len(per), T, J, 3))
        for c, p in enumerate(per):
            if p.shape[1]:
                out[c, :p.shape[0]] = p
    else:
        frames = [[read_openpose_json(f, num_joints=num_joints) for f in _frame_files(d)]
                  for d in subs]
        Js = {}
        for d, fr in zip(subs, frames):
            j = _joint_count(fr, num_joints, d)
            if j:
                Js.setdefault(j, []).append(d.name)
        if len(Js) > 1:
            raise ValueError(f"path: camera folders in {root} have different joint counts "
                             + "; ".join(f"{j}: {', '.join(n)}" for j, n in sorted(Js.items())))
        J = next(iter(Js)) if Js else int(num_joints or 0)
        P = max([1] + [f.shape[0] for fr in frames for f in fr])
        T = max(len(fr) for fr in frames)
        out = np.full((len(subs), T, P, J, 3), np.nan)
        for c, fr in enumerate(frames):
            out[c, :len(fr)] = _stack_people(fr, J, P)
    names = [d.name[:-5] if d.name.endswith("_json") else d.name for d in subs]
    return out, names


def people_pixels(keypoints, *, min_confidence: float = 0.0):
    """All-people keypoints ``(..., P, J, 3)`` (the readers' convention) → ``x (..., P, J, 2)``
    px, NaN where there is no person, the joint was not found (confidence ≤
    ``min_confidence``) or sits at exactly ``(0, 0)``, and ``confidence (..., P, J)``, 0 there."""
    kp = np.asarray(keypoints, np.float64)
    if kp.shape[-1] != 3:
        raise ValueError(f"keypoints: expected shape (..., J, 3), got shape {kp.shape}")
    conf = np.nan_to_num(kp[..., 2], nan=0.0)
    with np.errstate(invalid="ignore"):
        ok = (conf > min_confidence) & np.isfinite(kp[..., :2]).all(-1) \
            & ~((kp[..., 0] == 0) & (kp[..., 1] == 0))
    x = np.where(ok[..., None], kp[..., :2], np.nan)
    return x, np.where(ok, conf, 0.0)


def write_openpose_json(path, people) -> None:
    """Write ``people (P, J, 3)`` ``[u, v, confidence]`` as an OpenPose JSON file (version 1.3)."""
    people = np.asarray(people, dtype=np.float64)
    if people.ndim == 2:
        people = people[None]
    if people.ndim != 3 or people.shape[-1] != 3:
        raise ValueError(f"people: expected shape (P, J, 3), got shape {people.shape}")
    data = {"version": 1.3, "people": [
        {"person_id": [-1], "pose_keypoints_2d": [round(float(v), 6) for v in p.reshape(-1)],
         "face_keypoints_2d": [], "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": []}
        for p in people]}
    Path(path).write_text(json.dumps(data))
