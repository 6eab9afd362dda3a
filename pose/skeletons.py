"""Skeleton definitions and joint maps between formats.

A :class:`Skeleton` is a tree of ``J`` joints: ``names``, ``parents`` (``-1`` for the root, every
parent listed before its children), ``flip_pairs`` (left/right pairs) and the derived ``bones``
(``(parent, child)`` pairs) and ``symmetry`` (the joint permutation that mirrors left and right).

Defined here: ``H36M_17`` (Human3.6M / VideoPose3D order), ``COCO_17``, ``MPII_16``, OpenPose
``BODY_25`` and ``BODY_25B`` (the order of the Pose2Sim demo files), ``BLAZEPOSE_33`` (BlazePose's
33 landmarks), and ``COMMON_12``: the twelve
limb joints every format has (shoulders, elbows, wrists, hips, knees, ankles), for cross-format
evaluation. :func:`map_joints` converts keypoints between formats with linear joint maps
(e.g. the Human3.6M pelvis is the mid-hip of COCO); maps that have to synthesise a joint are
approximations and say so in :data:`JOINT_MAPS`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Skeleton", "H36M_17", "COCO_17", "MPII_16", "BODY_25", "BODY_25B", "COMMON_12",
    "BLAZEPOSE_33",
    "SKELETONS", "MPII_FILE_ORDER", "JOINT_MAPS", "get_skeleton", "joint_map", "map_joints",
    "bone_lengths", "flip_left_right",
]


@dataclass(frozen=True)
class Skeleton:
    """A joint tree. ``names (J,)``, ``parents (J,)`` (``-1`` = root, parents before children),
    ``flip_pairs`` ``((left, right), ...)`` index pairs; ``calibration_exclude``: names of
    joints a rig should not be calibrated from (see :attr:`calibration_joints`)."""

    name: str
    names: tuple
    parents: tuple
    flip_pairs: tuple
    calibration_exclude: tuple = ()

    def __post_init__(self):
        J = len(self.names)
        if len(self.parents) != J:
            raise ValueError(f"parents: expected {J} entries, got {len(self.parents)}")
        for j, p in enumerate(self.parents):
            if not -1 <= p < j:
                raise ValueError(f"parents: joint {j} ({self.names[j]}) has parent {p}; parents "
                                 "must come before their children")

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def bones(self) -> tuple:
        """``((parent, child), ...)`` for every non-root joint, in joint order."""
        return tuple((p, j) for j, p in enumerate(self.parents) if p >= 0)

    @property
    def bone_array(self) -> np.ndarray:
        """:attr:`bones` as an int array ``(B, 2)``."""
        return np.array(self.bones, dtype=np.int64).reshape(-1, 2)

    @property
    def symmetry(self) -> np.ndarray:
        """Permutation ``(J,)`` mapping every joint to its mirror (itself on the midline)."""
        perm = np.arange(self.num_joints)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    @property
    def left(self) -> np.ndarray:
        return np.array([a for a, _ in self.flip_pairs], dtype=np.int64)

    @property
    def right(self) -> np.ndarray:
        return np.array([b for _, b in self.flip_pairs], dtype=np.int64)

    @property
    def calibration_joints(self):
        """Joint indices to calibrate a rig from (:func:`geometry.reconstruct_rig`
        ``calibration_joints``), or None for all joints."""
        if not self.calibration_exclude:
            return None
        return np.array([j for j, n in enumerate(self.names) if n not in self.calibration_exclude],
                        dtype=np.int64)

    def index(self, name: str) -> int:
        """Index of joint ``name`` (ValueError naming the skeleton when unknown)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"name: {name!r} is not a joint of {self.name} "
                             f"(joints: {', '.join(self.names)})") from None


def _tree(name, spec, flip):
    names = tuple(n for n, _ in spec)
    parents = tuple(-1 if p is None else names.index(p) for _, p in spec)
    pairs = tuple((names.index(a), names.index(b)) for a, b in flip)
    return Skeleton(name=name, names=names, parents=parents, flip_pairs=pairs)


def _lr(*stems):
    return [("L" + s, "R" + s) for s in stems]


H36M_17 = _tree("h36m_17", [
    ("Pelvis", None), ("RHip", "Pelvis"), ("RKnee", "RHip"), ("RAnkle", "RKnee"),
    ("LHip", "Pelvis"), ("LKnee", "LHip"), ("LAnkle", "LKnee"), ("Spine", "Pelvis"),
    ("Thorax", "Spine"), ("Nose", "Thorax"), ("Head", "Nose"), ("LShoulder", "Thorax"),
    ("LElbow", "LShoulder"), ("LWrist", "LElbow"), ("RShoulder", "Thorax"),
    ("RElbow", "RShoulder"), ("RWrist", "RElbow")], _lr("Hip", "Knee", "Ankle", "Shoulder",
                                                        "Elbow", "Wrist"))
"""Human3.6M 17 joints in the VideoPose3D order (joint 9 is the neck/nose, 10 the head top)."""

COCO_17 = _tree("coco_17", [
    ("Nose", None), ("LEye", "Nose"), ("REye", "Nose"), ("LEar", "LEye"), ("REar", "REye"),
    ("LShoulder", "Nose"), ("RShoulder", "Nose"), ("LElbow", "LShoulder"),
    ("RElbow", "RShoulder"), ("LWrist", "LElbow"), ("RWrist", "RElbow"), ("LHip", "LShoulder"),
    ("RHip", "RShoulder"), ("LKnee", "LHip"), ("RKnee", "RHip"), ("LAnkle", "LKnee"),
    ("RAnkle", "RKnee")], _lr("Eye", "Ear", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle"))
"""COCO 17 keypoints (rooted at the nose; hips hang from the shoulders to keep a tree)."""

MPII_16 = _tree("mpii_16", [
    ("Pelvis", None), ("RHip", "Pelvis"), ("RKnee", "RHip"), ("RAnkle", "RKnee"),
    ("LHip", "Pelvis"), ("LKnee", "LHip"), ("LAnkle", "LKnee"), ("Thorax", "Pelvis"),
    ("UpperNeck", "Thorax"), ("HeadTop", "UpperNeck"), ("RShoulder", "Thorax"),
    ("RElbow", "RShoulder"), ("RWrist", "RElbow"), ("LShoulder", "Thorax"),
    ("LElbow", "LShoulder"), ("LWrist", "LElbow")],
    _lr("Hip", "Knee", "Ankle", "Shoulder", "Elbow", "Wrist"))
# MPII's own file order is r_ankle, r_knee, r_hip, l_hip, l_knee, l_ankle, pelvis, thorax,
# upper_neck, head_top, r_wrist, r_elbow, r_shoulder, l_shoulder, l_elbow, l_wrist.
MPII_FILE_ORDER = np.array([3, 2, 1, 4, 5, 6, 0, 7, 8, 9, 12, 11, 10, 13, 14, 15])
"""``MPII_16`` index of each joint in MPII's annotation order: ``x_ours = x_file[argsort(...)]``;
``x_ours[MPII_FILE_ORDER] = x_file``."""

_B25_NAMES = ["Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
              "MidHip", "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye",
              "REar", "LEar", "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel"]
_B25_PARENT = {"Nose": "Neck", "Neck": "MidHip", "RShoulder": "Neck", "RElbow": "RShoulder",
               "RWrist": "RElbow", "LShoulder": "Neck", "LElbow": "LShoulder",
               "LWrist": "LElbow", "MidHip": None, "RHip": "MidHip", "RKnee": "RHip",
               "RAnkle": "RKnee", "LHip": "MidHip", "LKnee": "LHip", "LAnkle": "LKnee",
               "REye": "Nose", "LEye": "Nose", "REar": "REye", "LEar": "LEye",
               "LBigToe": "LAnkle", "LSmallToe": "LBigToe", "LHeel": "LAnkle",
               "RBigToe": "RAnkle", "RSmallToe": "RBigToe", "RHeel": "RAnkle"}


def _reordered_tree(name, names, parent, flip):
    """A tree whose file order does not put parents first: keep the file order, check it."""
    idx = {n: i for i, n in enumerate(names)}
    parents = tuple(-1 if parent[n] is None else idx[parent[n]] for n in names)
    pairs = tuple((idx[a], idx[b]) for a, b in flip)
    return _UnorderedSkeleton(name=name, names=tuple(names), parents=parents, flip_pairs=pairs)


@dataclass(frozen=True)
class _UnorderedSkeleton(Skeleton):
    """A skeleton in a file's native joint order, where a parent may come after its child."""

    def __post_init__(self):
        J = len(self.names)
        if len(self.parents) != J or sum(p < 0 for p in self.parents) != 1:
            raise ValueError(f"parents: expected {J} entries with one root")

    @property
    def topological_order(self) -> np.ndarray:
        order, seen = [], set()
        while len(order) < self.num_joints:
            for j, p in enumerate(self.parents):
                if j not in seen and (p < 0 or p in seen):
                    order.append(j)
                    seen.add(j)
        return np.array(order)


BODY_25 = _reordered_tree("body_25", _B25_NAMES, _B25_PARENT,
                          _lr("Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Eye", "Ear",
                              "BigToe", "SmallToe", "Heel"))
"""OpenPose BODY_25 (file order; ``Neck`` is the mid-shoulder point, ``MidHip`` the root)."""

_B25B_NAMES = ["Nose", "LEye", "REye", "LEar", "REar", "LShoulder", "RShoulder", "LElbow",
               "RElbow", "LWrist", "RWrist", "LHip", "RHip", "LKnee", "RKnee", "LAnkle",
               "RAnkle", "UpperNeck", "HeadTop", "LBigToe", "LSmallToe", "LHeel", "RBigToe",
               "RSmallToe", "RHeel"]
_B25B_PARENT = {"Nose": "UpperNeck", "LEye": "Nose", "REye": "Nose", "LEar": "LEye",
                "REar": "REye", "LShoulder": "UpperNeck", "RShoulder": "UpperNeck",
                "LElbow": "LShoulder", "RElbow": "RShoulder", "LWrist": "LElbow",
                "RWrist": "RElbow", "LHip": "LShoulder", "RHip": "RShoulder", "LKnee": "LHip",
                "RKnee": "RHip", "LAnkle": "LKnee", "RAnkle": "RKnee", "UpperNeck": None,
                "HeadTop": "UpperNeck", "LBigToe": "LAnkle", "LSmallToe": "LBigToe",
                "LHeel": "LAnkle", "RBigToe": "RAnkle", "RSmallToe": "RBigToe",
                "RHeel": "RAnkle"}
BODY_25B = _reordered_tree("body_25b", _B25B_NAMES, _B25B_PARENT,
                           _lr("Eye", "Ear", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle",
                               "BigToe", "SmallToe", "Heel"))
"""OpenPose BODY_25B (the first 17 joints are COCO's; then upper neck, head top, feet)."""

COMMON_12 = _tree("common_12", [
    ("LShoulder", None), ("RShoulder", "LShoulder"), ("LElbow", "LShoulder"),
    ("RElbow", "RShoulder"), ("LWrist", "LElbow"), ("RWrist", "RElbow"), ("LHip", "LShoulder"),
    ("RHip", "RShoulder"), ("LKnee", "LHip"), ("RKnee", "RHip"), ("LAnkle", "LKnee"),
    ("RAnkle", "RKnee")], _lr("Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle"))
"""The limb joints every format has natively: for evaluation across formats."""

_BP = [("Nose", None), ("LEyeInner", "Nose"), ("LEye", "LEyeInner"), ("LEyeOuter", "LEye"),
       ("REyeInner", "Nose"), ("REye", "REyeInner"), ("REyeOuter", "REye"), ("LEar", "LEyeOuter"),
       ("REar", "REyeOuter"), ("LMouth", "Nose"), ("RMouth", "Nose"), ("LShoulder", "Nose"),
       ("RShoulder", "Nose"), ("LElbow", "LShoulder"), ("RElbow", "RShoulder"),
       ("LWrist", "LElbow"), ("RWrist", "RElbow"), ("LPinky", "LWrist"), ("RPinky", "RWrist"),
       ("LIndex", "LWrist"), ("RIndex", "RWrist"), ("LThumb", "LWrist"), ("RThumb", "RWrist"),
       ("LHip", "LShoulder"), ("RHip", "RShoulder"), ("LKnee", "LHip"), ("RKnee", "RHip"),
       ("LAnkle", "LKnee"), ("RAnkle", "RKnee"), ("LHeel", "LAnkle"), ("RHeel", "RAnkle"),
       ("LFootIndex", "LAnkle"), ("RFootIndex", "RAnkle")]
BLAZEPOSE_33 = _tree("blazepose_33", _BP, _lr("EyeInner", "Eye", "EyeOuter", "Ear", "Mouth",
                                               "Shoulder", "Elbow", "Wrist", "Pinky", "Index",
                                               "Thumb", "Hip", "Knee", "Ankle", "Heel",
                                               "FootIndex"))
BLAZEPOSE_33 = dataclasses.replace(BLAZEPOSE_33, calibration_exclude=tuple(
    n for n, _ in _BP[1:11]))
"""BlazePose / MediaPipe Pose 33 landmarks in the model's order (``pose.detect``'s default
backend); rooted at the nose like ``COCO_17``, whose 17 joints it has under the same names.
Its ten eye, ear and mouth landmarks are left out of rig calibration (one small patch with
view-dependent errors; measured on the Pose2Sim videos: 1.53° → 0.72° median camera error)."""

SKELETONS = {s.name: s for s in (H36M_17, COCO_17, MPII_16, BODY_25, BODY_25B, COMMON_12,
                                 BLAZEPOSE_33)}


def get_skeleton(skeleton) -> Skeleton:
    """A :class:`Skeleton` or its name (``"h36m_17"``, ``"coco_17"``, ...)."""
    if isinstance(skeleton, Skeleton):
        return skeleton
    try:
        return SKELETONS[str(skeleton).lower()]
    except KeyError:
        raise ValueError(f"skeleton: expected one of {sorted(SKELETONS)}, "
                         f"got {skeleton!r}") from None


# Joints of a target format that are not a joint of the source format, written as weighted sums
# of source joints (approximations, where named so).
_SYNTH = {
    ("coco_17", "h36m_17"): {"Pelvis": {"LHip": .5, "RHip": .5},
                             "Thorax": {"LShoulder": .5, "RShoulder": .5},
                             "Spine": {"LHip": .25, "RHip": .25, "LShoulder": .25,
                                       "RShoulder": .25},
                             "Head": {"LEar": .5, "REar": .5}},
    ("body_25b", "h36m_17"): {"Pelvis": {"LHip": .5, "RHip": .5},
                              "Thorax": {"LShoulder": .5, "RShoulder": .5},
                              "Spine": {"LHip": .25, "RHip": .25, "LShoulder": .25,
                                        "RShoulder": .25},
                              "Head": {"HeadTop": 1.0}},
    ("body_25", "h36m_17"): {"Pelvis": {"MidHip": 1.0}, "Thorax": {"Neck": 1.0},
                             "Spine": {"MidHip": .5, "Neck": .5},
                             "Head": {"LEar": .5, "REar": .5}},
    ("mpii_16", "h36m_17"): {"Spine": {"Pelvis": .5, "Thorax": .5}, "Nose": {"UpperNeck": 1.0},
                             "Head": {"HeadTop": 1.0}},
    ("h36m_17", "mpii_16"): {"UpperNeck": {"Nose": 1.0}, "HeadTop": {"Head": 1.0}},
    ("body_25b", "body_25"): {"Neck": {"LShoulder": .5, "RShoulder": .5},
                              "MidHip": {"LHip": .5, "RHip": .5}},
    ("body_25", "body_25b"): {"UpperNeck": {"Neck": .5, "Nose": .5}, "HeadTop": {"LEar": .5,
                                                                                  "REar": .5}},
    ("coco_17", "mpii_16"): {"Pelvis": {"LHip": .5, "RHip": .5},
                             "Thorax": {"LShoulder": .5, "RShoulder": .5},
                             "UpperNeck": {"LShoulder": .25, "RShoulder": .25, "Nose": .5},
                             "HeadTop": {"LEar": .5, "REar": .5}},
    ("body_25b", "mpii_16"): {"Pelvis": {"LHip": .5, "RHip": .5},
                              "Thorax": {"LShoulder": .5, "RShoulder": .5}},
    ("blazepose_33", "h36m_17"): {"Pelvis": {"LHip": .5, "RHip": .5},
                                  "Thorax": {"LShoulder": .5, "RShoulder": .5},
                                  "Spine": {"LHip": .25, "RHip": .25, "LShoulder": .25,
                                            "RShoulder": .25},
                                  "Head": {"LEar": .5, "REar": .5}},
    ("blazepose_33", "body_25b"): {"UpperNeck": {"LShoulder": .25, "RShoulder": .25, "Nose": .5},
                                   "HeadTop": {"LEar": .5, "REar": .5},
                                   "LBigToe": {"LFootIndex": 1.0}, "RBigToe": {"RFootIndex": 1.0},
                                   "LSmallToe": {"LFootIndex": 1.0},
                                   "RSmallToe": {"RFootIndex": 1.0}},
    ("body_25", "mpii_16"): {"Pelvis": {"MidHip": 1.0}, "Thorax": {"Neck": 1.0},
                             "UpperNeck": {"Neck": .5, "Nose": .5},
                             "HeadTop": {"LEar": .5, "REar": .5}},
}
# H36M "Nose" (joint 9) is really the neck/nose point; formats with a nose map onto it by name.

JOINT_MAPS = _SYNTH
"""Synthesised joints per ``(source, target)``; all other target joints are copied by name."""


def joint_map(src, dst) -> np.ndarray:
    """Weights ``W (J_dst, J_src)`` with ``x_dst = W @ x_src``; rows sum to 1.

    Joints are matched by name, then synthesised from :data:`JOINT_MAPS`; a target joint that can
    be neither raises ValueError naming it.
    """
    src, dst = get_skeleton(src), get_skeleton(dst)
    W = np.zeros((dst.num_joints, src.num_joints))
    synth = _SYNTH.get((src.name, dst.name), {})
    for i, n in enumerate(dst.names):
        if n in synth:
            for m, w in synth[n].items():
                W[i, src.index(m)] = w
        elif n in src.names:
            W[i, src.index(n)] = 1.0
        else:
            raise ValueError(f"dst: joint {n!r} of {dst.name} cannot be made from {src.name}")
    return W


def map_joints(x, src, dst, confidence=None):
    """Convert keypoints ``x (..., J_src, D)`` from ``src`` to ``dst``: ``(..., J_dst, D)``.

    NaN (missing) propagates into every joint it contributes to. With ``confidence (..., J_src)``
    returns ``(x_dst, confidence_dst)``: a synthesised joint gets the minimum confidence of its
    sources and is set to 0 (with coordinates 0) when any source has confidence 0.
    """
    W = joint_map(src, dst)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2 or x.shape[-2] != W.shape[1]:
        raise ValueError(f"x: expected shape (..., {W.shape[1]}, D) for {get_skeleton(src).name},"
                         f" got shape {x.shape}")
    out = np.einsum("ij,...jd->...id", W, x)
    if confidence is None:
        return out
    c = np.asarray(confidence, dtype=np.float64)
    if c.shape != x.shape[:-1]:
        raise ValueError(f"confidence: expected shape {x.shape[:-1]}, got shape {c.shape}")
    used = W > 0
    cd = np.where(used, c[..., None, :], np.inf).min(-1)
    out = np.where(cd[..., None] > 0, out, 0.0)
    return out, cd


def bone_lengths(X, skeleton=H36M_17) -> np.ndarray:
    """Bone lengths ``(..., B)`` of joints ``X (..., J, 3)`` along ``skeleton.bones``."""
    sk = get_skeleton(skeleton)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim < 2 or X.shape[-2] != sk.num_joints:
        raise ValueError(f"X: expected shape (..., {sk.num_joints}, D) for {sk.name}, got shape "
                         f"{X.shape}")
    b = sk.bone_array
    return np.linalg.norm(X[..., b[:, 1], :] - X[..., b[:, 0], :], axis=-1)


def flip_left_right(x, skeleton=H36M_17, *, axis: int | None = 0, width: float | None = None):
    """Mirror keypoints: swap left/right joints and negate coordinate ``axis``.

    For 3D use ``axis=0`` (x → -x); for pixels pass ``width`` to map ``u → width - 1 - u``; with
    ``axis=None`` only the joint labels are swapped (a detector's left/right confusion).
    """
    sk = get_skeleton(skeleton)
    x = np.asarray(x, dtype=np.float64)[..., sk.symmetry, :].copy()
    if axis is not None:
        x[..., axis] = (width - 1.0 - x[..., axis]) if width is not None else -x[..., axis]
    return x
