"""OpenPose JSON keypoints: one file per frame per camera.

A file holds ``{"people": [{"pose_keypoints_2d": [u0, v0, c0, u1, v1, c1, ...]}, ...]}``;
a joint OpenPose did not find is ``0, 0, 0``; a person with an empty ``pose_keypoints_2d``
list is skipped. Readers return float64 ``[u, v, confidence]`` arrays in that same convention
(missing = all three zero), frames in sorted file-name order.

The main subject of a frame is the person with the largest bounding box of their detected
joints (confidence > 0), as in ``pose2sim_demo.npz``; a frame with nobody is all zeros.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["read_openpose_json", "read_openpose_folder", "read_openpose_cameras",
           "write_openpose_json", "largest_person"]


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


def read_openpose_folder(path, *, num_joints: int | None = 25, all_people: bool = False):
    """A folder of OpenPose JSON files (one per frame, sorted by name) →
    ``(T, J, 3)`` ``[u, v, confidence]`` of the main (largest) subject, zeros where missing.

    With ``all_people`` returns ``(T, P, J, 3)`` with every detected person in file order,
    zero-padded to the largest count ``P``.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"path: {folder} is not a folder")
    frames = [read_openpose_json(f, num_joints=num_joints) for f in _frame_files(folder)]
    J = num_joints or max(f.shape[1] for f in frames)
    if all_people:
        P = max(1, max(f.shape[0] for f in frames))
        out = np.zeros((len(frames), P, J, 3))
        for t, f in enumerate(frames):
            out[t, :f.shape[0]] = f
        return out
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
    end. ``all_people`` gives ``(C, T, P, J, 3)``. Camera names are the folder names without a
    ``_json`` suffix.
    """
    root = Path(path)
    subs = sorted(d for d in root.glob(pattern) if d.is_dir()) if root.is_dir() else []
    if not subs:
        raise ValueError(f"path: no camera folders matching {pattern!r} in {root}")
    per = [read_openpose_folder(d, num_joints=num_joints, all_people=all_people) for d in subs]
    T = max(p.shape[0] for p in per)
    if all_people:
        P = max(p.shape[1] for p in per)
        out = np.zeros((len(per), T, P) + per[0].shape[2:])
        for c, p in enumerate(per):
            out[c, :p.shape[0], :p.shape[1]] = p
    else:
        out = np.zeros((len(per), T) + per[0].shape[1:])
        for c, p in enumerate(per):
            out[c, :p.shape[0]] = p
    names = [d.name[:-5] if d.name.endswith("_json") else d.name for d in subs]
    return out, names


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
