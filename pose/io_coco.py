"""COCO keypoint JSON: ground-truth annotation files and detection result lists.

Annotation files hold ``images`` (``id``, ``file_name``, ``width``, ``height``), ``annotations``
(``image_id``, ``keypoints`` ``[x, y, v] × 17``, ``bbox``, ``score`` optional) and
``categories`` (``keypoints`` names, ``skeleton`` 1-based edges). Result files are a list of
``{"image_id", "category_id", "keypoints", "score"}``. COCO's visibility ``v`` is 0 (not
labelled), 1 (labelled, occluded) or 2 (visible); results store a confidence there instead.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["CocoKeypoints", "read_coco_keypoints", "write_coco_keypoints", "coco_frames"]


@dataclass(frozen=True)
class CocoKeypoints:
    """``N`` annotations: ``keypoints (N, J, 3)`` ``[x, y, v]`` (px; ``v`` as in the file),
    ``image_id (N,)``, ``score (N,)`` (1 when absent), ``bbox (N, 4)`` ``[x, y, w, h]`` (NaN when
    absent), ``file_name`` ``{image_id: name}``, ``joint_names`` (from the category, if any)."""

    keypoints: np.ndarray
    image_id: np.ndarray
    score: np.ndarray
    bbox: np.ndarray
    file_name: dict
    joint_names: tuple


def read_coco_keypoints(path, *, category_id: int | None = 1) -> CocoKeypoints:
    """Read a COCO keypoint annotation or result JSON (annotations of ``category_id`` only;
    ``None`` keeps all). A malformed file raises ``ValueError`` naming the file and field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable JSON file ({exc})") from None
    if isinstance(data, list):
        anns, images, cats = data, [], []
    elif isinstance(data, dict) and isinstance(data.get("annotations"), list):
        anns, images, cats = data["annotations"], data.get("images", []), data.get("categories", [])
    else:
        raise ValueError(f"{path}: field 'annotations' missing (and not a result list)")
    names = ()
    for c in cats:
        if isinstance(c, dict) and (category_id is None or c.get("id") == category_id):
            names = tuple(c.get("keypoints", ()))
            break
    kps, ids, scores, boxes = [], [], [], []
    J = len(names) or None
    for i, a in enumerate(anns):
        if not isinstance(a, dict):
            raise ValueError(f"{path}: field 'annotations[{i}]' is not an object")
        if category_id is not None and a.get("category_id", category_id) != category_id:
            continue
        if "keypoints" not in a or "image_id" not in a:
            missing = "keypoints" if "keypoints" not in a else "image_id"
            raise ValueError(f"{path}: field 'annotations[{i}].{missing}' missing")
        try:
            k = np.asarray(a["keypoints"], dtype=np.float64)
        except (TypeError, ValueError):
            k = np.zeros(1)
        if k.ndim != 1 or k.size % 3 or k.size == 0 or (J is not None and k.size != 3 * J):
            raise ValueError(f"{path}: field 'annotations[{i}].keypoints' expected "
                             f"{3 * J if J else 'a multiple of 3'} numbers, got {k.size}")
        J = J or k.size // 3
        kps.append(k.reshape(-1, 3))
        ids.append(int(a["image_id"]))
        scores.append(float(a.get("score", 1.0)))
        b = a.get("bbox")
        boxes.append(np.asarray(b, np.float64) if b is not None and len(b) == 4
                     else np.full(4, np.nan))
    files = {}
    for im in images:
        if isinstance(im, dict) and "id" in im:
            files[int(im["id"])] = str(im.get("file_name", ""))
    J = J or 17
    return CocoKeypoints(keypoints=np.stack(kps) if kps else np.zeros((0, J, 3)),
                         image_id=np.array(ids, dtype=np.int64), score=np.array(scores),
                         bbox=np.stack(boxes) if boxes else np.zeros((0, 4)),
                         file_name=files, joint_names=names)


def coco_frames(coco: CocoKeypoints, *, all_people: bool = False, image_ids=None):
    """Group annotations by image: ``(image_ids (T,), keypoints)``, images in ``image_id``
    order (or the order of ``image_ids``, which may hold images without annotations).

    Default: ``keypoints (T, J, 3)``, the highest-scoring person of each image (zeros where an
    image has nobody). ``all_people``: ``(T, P, J, 3)``, every person of an image by
    descending score (ties: file order), ``P`` the largest count (at least 1), **NaN** where a
    slot has no person (the convention of :mod:`pose.io_openpose`)."""
    kp, ids = coco.keypoints, coco.image_id
    J = kp.shape[1]
    frames = np.unique(ids) if image_ids is None else np.asarray(image_ids, np.int64).reshape(-1)
    pos = {int(i): k for k, i in enumerate(frames)}
    slots: list = [[] for _ in frames]
    for k, i in enumerate(ids):
        if int(i) in pos:
            slots[pos[int(i)]].append(k)
    for s in slots:
        s.sort(key=lambda k: -coco.score[k])    # stable: ties keep file order
    if not all_people:
        out = np.zeros((len(frames), J, 3))
        for t, s in enumerate(slots):
            if s:
                out[t] = kp[s[0]]
        return frames, out
    P = max([1] + [len(s) for s in slots])
    out = np.full((len(frames), P, J, 3), np.nan)
    for t, s in enumerate(slots):
        if s:
            out[t, :len(s)] = kp[s]
    return frames, out


def write_coco_keypoints(path, keypoints, image_id, *, score=None, joint_names=None,
                         results: bool = False) -> None:
    """Write ``keypoints (N, J, 3)`` with ``image_id (N,)`` as a COCO annotation file (or, with
    ``results``, a result list). Boxes are the keypoints' extent."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[-1] != 3:
        raise ValueError(f"keypoints: expected shape (N, J, 3), got shape {kp.shape}")
    ids = np.asarray(image_id, dtype=np.int64).reshape(-1)
    if ids.shape != (kp.shape[0],):
        raise ValueError(f"image_id: expected shape ({kp.shape[0]},), got shape {ids.shape}")
    sc = np.ones(len(kp)) if score is None else np.asarray(score, np.float64).reshape(-1)
    anns = []
    for i, (k, iid) in enumerate(zip(kp, ids)):
        vis = k[:, 2] > 0
        q = k[vis, :2] if vis.any() else np.zeros((1, 2))
        lo, hi = q.min(0), q.max(0)
        a = {"image_id": int(iid), "category_id": 1,
             "keypoints": [round(float(v), 3) for v in k.reshape(-1)], "score": float(sc[i])}
        if not results:
            a.update(id=i + 1, num_keypoints=int(vis.sum()), iscrowd=0,
                     bbox=[float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])],
                     area=float(np.prod(hi - lo)))
        anns.append(a)
    if results:
        data = anns
    else:
        data = {"images": [{"id": int(i), "file_name": f"{int(i):012d}.jpg"}
                           for i in np.unique(ids)],
                "annotations": anns,
                "categories": [{"id": 1, "name": "person",
                                "keypoints": list(joint_names or [])}]}
    Path(path).write_text(json.dumps(data))
