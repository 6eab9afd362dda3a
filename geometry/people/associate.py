"""Which detection is which person, in every camera and frame, without a calibration.

:func:`associate_people`:

1. per-camera 2D tracks (:func:`geometry.people.tracking.track_people`);
2. a fundamental matrix per camera pair from whole tracks paired across cameras
   (:func:`geometry.people.views.bootstrap_fundamentals`);
3. each frame's detections grouped by epipolar consistency (complete linkage, one detection per
   camera per group), every group of ≥ 2 cameras one more view of the same static rig:
   :func:`geometry.reconstruct_rig` on the groups stacked along the frame axis gives the cameras;
4. regrouped with the estimated cameras' ``F``; each group triangulated (robust DLT), members
   that do not reproject onto it dropped; groups linked over time into 3D tracks and tracks into
   people (:mod:`geometry.people.linking`);
5. detections no group explains (a person seen by one camera, a dropped member) take the person
   of their 2D track where it is unambiguous.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np

from ..camera import projection_matrix
from ..common.checks import check_int, check_real, check_seed
from ..rig import reconstruct_rig
from ..triangulation import triangulate_multiview
from .linking import (join_by_2d_tracks, join_duplicate_tracks, join_split_groups, link_groups,
                      merge_tracks, repair_from_tracks)
from .tracking import check_people_inputs, detected_slots, track_people
from .views import bootstrap_fundamentals, cluster_frames, fundamentals_from_cameras, pair_costs

__all__ = ["PeopleAssociation", "associate_people", "calibration_views"]

_RIG_PARAMS = frozenset(inspect.signature(reconstruct_rig).parameters)


@dataclass(frozen=True)
class PeopleAssociation:
    """Result of :func:`associate_people` for ``C`` cameras, ``T`` frames, ``P`` slots.

    ``identity (C,T,P)`` int64 person index ``0..N-1`` of every detection (``-1``: empty slot,
    false detection or unassigned); ``num_people`` ``N``; ``R (C,3,3)``, ``t (C,3)``, ``K (C,3,3)``
    the cameras estimated on the way (``x_cam = R X + t``, camera 0 the world unless it could not
    be placed); ``camera_valid (C,)``; ``tracks (C,T,P)`` per-camera 2D track IDs;
    ``outlier_threshold_px``; ``valid``: cameras found and at least one person; ``messages``:
    what went wrong or was repaired, in words; ``summary``: figures (see :func:`associate_people`).
    """

    identity: np.ndarray
    num_people: int
    R: np.ndarray
    t: np.ndarray
    K: np.ndarray
    camera_valid: np.ndarray
    tracks: np.ndarray
    outlier_threshold_px: float
    valid: bool
    messages: tuple = ()
    summary: dict = field(default_factory=dict)


def calibration_views(x, w, identity, num_people):
    """Detections of each person in one slot: ``(C, N·T, J, 2)`` and confidences (or None),
    person-major (person 0's ``T`` frames first), NaN where the person is not detected."""
    C, T, P, J, _ = x.shape
    N = max(int(num_people), 1)
    xs = np.full((C, N, T, J, 2), np.nan)
    ws = None if w is None else np.zeros((C, N, T, J))
    c, t, p = np.nonzero(identity >= 0)
    n = identity[c, t, p]
    xs[c, n, t] = x[c, t, p]
    if w is not None:
        ws[c, n, t] = w[c, t, p]
    return xs.reshape(C, N * T, J, 2), None if w is None else ws.reshape(C, N * T, J)


def _groups_to_views(x, w, gid, keep):
    """Groups ``keep`` (indices) as frames: ``(C, G', J, 2)`` and confidences."""
    C, T, P, J, _ = x.shape
    pos = np.full(int(gid.max()) + 1 if gid.size and gid.max() >= 0 else 0, -1, np.int64)
    pos[keep] = np.arange(keep.size)
    xs = np.full((C, keep.size, J, 2), np.nan)
    ws = None if w is None else np.zeros((C, keep.size, J))
    c, t, p = np.nonzero(gid >= 0)
    g = pos[gid[c, t, p]]
    m = g >= 0
    xs[c[m], g[m]] = x[c[m], t[m], p[m]]
    if w is not None:
        ws[c[m], g[m]] = w[c[m], t[m], p[m]]
    return xs, ws


def _one_slot_per_person(identity, gid, gviews) -> int:
    """Where a person holds two detections of one camera-frame (joined duplicate tracks), keep
    the one whose group spans most cameras; the others become unassigned (in place)."""
    C, T, P = identity.shape
    dropped = 0
    for k in np.unique(identity[identity >= 0]):
        c, t = np.nonzero((identity == k).sum(-1) > 1)
        for cc, tt in zip(c.tolist(), t.tolist()):
            slots = np.flatnonzero(identity[cc, tt] == k)
            best = slots[np.argmax(gviews[gid[cc, tt, slots]])]
            identity[cc, tt, slots[slots != best]] = -1
            dropped += slots.size - 1
    return dropped


def _person_scale(X):
    """Median RMS distance of valid joints from their centroid over groups ``X (G, J, 3)``."""
    with np.errstate(all="ignore"):
        cen = np.nanmean(X, axis=1, keepdims=True)
        r = np.sqrt(np.nanmean(np.sum((X - cen) ** 2, -1), axis=1))
    r = r[np.isfinite(r) & (r > 0)]
    return float(np.median(r)) if r.size else 1.0


def _adaptive_threshold(D, C, P, floor: float = 12.0) -> float:
    """Grouping threshold before calibration: 3 × the median over detections and other cameras
    of each detection's cheapest match (most are the same person), at least ``floor`` px."""
    best = []
    for a in range(C):
        for b in range(C):
            if a != b:
                m = D[:, a * P:(a + 1) * P, b * P:(b + 1) * P].min(-1)
                best.append(m[np.isfinite(m)])
    best = np.concatenate(best) if best else np.zeros(0)
    return max(floor, 3.0 * float(np.median(best))) if best.size else floor


def _check_num_people(num_people):
    if num_people is None or (isinstance(num_people, str) and num_people == "auto"):
        return None
    if isinstance(num_people, str):
        raise ValueError(f"num_people: expected None, 'auto' or an integer >= 1, "
                         f"got {num_people!r}")
    return check_int("num_people", num_people, 1)


def associate_people(x, confidence=None, K=None, *, image_size=None, num_people=None,
                     seed: int = 0, threshold: float | None = None, max_px: float | None = None,
                     min_track_frames: int | None = None, min_cameras: int | None = None,
                     **rig_options) -> PeopleAssociation:
    """Find every person in every camera and frame of a static rig without calibration.

    Args:
        x: ``(C, T, P, J, 2)`` undistorted pixels, NaN where a slot or joint is empty; ``P`` =
            most detections in any camera-frame, slots in any order (IDs may swap).
        confidence: optional ``(C, T, P, J)`` detector confidences (``<= 0`` = missing).
        K, image_size: intrinsics as in :func:`geometry.reconstruct_rig` (``K (C,3,3)`` or
            ``(3,3)``, or None with ``image_size`` = ``(width, height)``).
        num_people: ``N``, or None / ``"auto"``: the number of persistent 3D tracks.
        seed: RANSAC seed. threshold: grouping threshold (median Sampson distance, px; default
            3 × the median cheapest match, at least 12 px, before calibration;
            ``max(6, 1.5 ·`` the calibration's outlier threshold``)`` after).
        max_px: the 2D tracker's gate (:func:`track_people`).
        min_track_frames: frames a 3D track needs to be a person (default ``max(10, min(25,
            5 % of T))``).
        min_cameras: with ``num_people`` None / ``"auto"``, a 3D track is a person only if the
            median number of cameras that see it per frame is at least this (default
            ``min(3, C - 1)``, at least 2: someone seen by two of four cameras all along stands
            outside the capture volume, like the Pose2Sim lab's bystander); such tracks are
            counted in ``summary["partial_tracks"]``. Ignored when ``num_people`` is a number.
        rig_options: passed to :func:`geometry.reconstruct_rig`.
    Returns:
        :class:`PeopleAssociation`; ``summary`` holds ``detections``, ``assigned``,
        ``unassigned``, ``per_camera`` (detections, assigned, registered), ``frames_without_people``
        (no detection in any camera), ``groups_multi_view``, ``one_camera_detections`` (a person
        seen by only that camera in that frame, labelled from its 2D track),
        ``track_switches_repaired`` (places where a camera's 2D track changes person: detector or
        tracker ID swaps the association undid) and the calibration's figures.
    """
    N_req = _check_num_people(num_people)
    seed = check_seed("seed", seed)
    if threshold is not None:
        threshold = check_real("threshold", threshold, 0.0, lo_open=True)
    if min_track_frames is not None:
        min_track_frames = check_int("min_track_frames", min_track_frames, 1)
    if min_cameras is not None:
        min_cameras = check_int("min_cameras", min_cameras, 2)
    x, w = check_people_inputs(x, confidence)
    C, T, P, J, _ = x.shape
    if min_cameras is None:
        min_cameras = max(2, min(3, C - 1))
    det = detected_slots(x)
    tracks = track_people(x, max_px=max_px)
    msgs = []
    min_len = (max(10, min(25, int(0.05 * T))) if min_track_frames is None
               else int(min_track_frames))
    summary = {"detections": int(det.sum()),
               "frames_without_people": int((~det.any(axis=(0, 2))).sum())}
    if summary["frames_without_people"]:
        msgs.append(f"{summary['frames_without_people']} of {T} frames have no detection in any "
                    f"camera")
    if P == 1 and N_req in (None, 1):
        # one detection per camera-frame: one person (the single-person path, unchanged)
        identity = np.where(det, 0, -1).astype(np.int64)
        rec = reconstruct_rig(x[:, :, 0], K, confidence=None if w is None else w[:, :, 0],
                              image_size=image_size, seed=seed, **rig_options)
        return _result(identity, 1, rec, tracks, det, msgs, summary, T, one_view=0, repaired=0)

    F, Fok, support = bootstrap_fundamentals(x, tracks, seed=seed)
    summary["bootstrap_pairs"] = int(Fok[np.triu_indices(C, 1)].sum())
    summary["bootstrap_support"] = support[np.triu_indices(C, 1)].tolist()
    D0 = pair_costs(x, F, Fok)
    thr0 = _adaptive_threshold(D0, C, P) if threshold is None else float(threshold)
    summary["bootstrap_threshold_px"] = thr0
    gid, gframe, gviews = cluster_frames(D0, det, thr0)
    multi = np.flatnonzero(gviews >= 2)
    if multi.size < 2:
        msgs.append("no detections are consistent across two cameras: nothing to calibrate from")
        return _result(np.full((C, T, P), -1, np.int64), 0, _no_rig(C, K), tracks, det, msgs,
                       summary, T, one_view=0, repaired=0)
    if multi.size > 1500:
        multi = np.sort(np.random.default_rng(seed).choice(multi, 1500, replace=False))
    xs, ws = _groups_to_views(x, w, gid, multi)
    boot = dict(rig_options)
    if "joint_bias" in _RIG_PARAMS:
        boot.setdefault("joint_bias", False)       # cameras good enough to group people
    rec = reconstruct_rig(xs, K, confidence=ws, image_size=image_size, seed=seed, **boot)
    summary["bootstrap_groups"] = int(multi.size)
    if not rec.valid:
        msgs.append("the rig could not be calibrated from the groups of detections found by "
                    "epipolar consistency of whole tracks")
        identity = np.full((C, T, P), -1, np.int64)
        return _result(identity, 0, rec, tracks, det, msgs, summary, T, one_view=0, repaired=0)
    identity, n, info = assign_with_cameras(x, w, det, tracks, rec.K, rec.R, rec.t,
                                            rec.camera_valid, rec.summary["outlier_threshold_px"],
                                            num_people=N_req, threshold=threshold,
                                            min_length=min_len, min_cameras=min_cameras)
    summary.update(info)
    if info["partial_tracks"]:
        msgs.append(f"{len(info['partial_tracks'])} 3D track(s) seen by fewer than {min_cameras} "
                    f"cameras per frame (median) are not counted as people: "
                    f"{info['partial_tracks']} (num_people=N or min_cameras=2 keeps them)")
    if n == 0:
        msgs.append("no person was followed over enough frames in at least two cameras")
    return _result(identity, n, rec, tracks, det, msgs, summary, T, info["one_camera_detections"],
                   info["track_switches_repaired"])


def _triangulate_groups(x, w, gid, gframe, gviews, K, R, t, camera_valid, outlier_px):
    """Robust DLT of every group with ≥ 2 cameras → ``gid, gframe, multi (G,), Xg (G,J,3)``
    (NaN where invalid), ``xs (C,G,J,2)``, ``ws``, the triangulation and ``valid (G,J)``."""
    C, T, P, J, _ = x.shape
    multi = np.flatnonzero(gviews >= 2)
    xs, ws = _groups_to_views(x, w, gid, multi)
    G = multi.size
    tri = triangulate_multiview(projection_matrix(K, R, t), xs.reshape(C, G * J, 2),
                                mask=np.isfinite(xs).all(-1).reshape(C, G * J) &
                                camera_valid[:, None],
                                weights=None if ws is None else ws.reshape(C, G * J),
                                method="dlt", threshold=outlier_px)
    valid = (tri.valid & (tri.num_views >= 2)).reshape(G, J)
    Xg = np.where(valid[..., None], tri.X.reshape(G, J, 3), np.nan)
    return gid, gframe, multi, Xg, xs, ws, tri, valid


def assign_with_cameras(x, w, det, tracks, K, R, t, camera_valid, outlier_px, *, num_people,
                        threshold, min_length, min_cameras=2):
    """Steps 4–5 of :func:`associate_people` with given cameras → ``identity (C,T,P)``,
    ``num_people`` and a dict of figures."""
    C, T, P, J, _ = x.shape
    thr = max(6.0, 1.5 * outlier_px) if threshold is None else float(threshold)
    F, Fok = fundamentals_from_cameras(K, R, t, camera_valid)
    gid, gframe, gviews = cluster_frames(pair_costs(x, F, Fok), det, thr)
    gid, gframe, multi, Xg, xs, ws, tri, valid = _triangulate_groups(
        x, w, gid, gframe, gviews, K, R, t, camera_valid, outlier_px)
    scale = _person_scale(Xg)
    gate = 0.6 * scale
    into, joined = join_split_groups(Xg, gframe[multi], np.isfinite(xs).all(-1).any(-1).T,
                                     0.25 * gate)
    if joined:
        remap = np.arange(int(gid.max()) + 1)
        remap[multi] = multi[into]
        gid = np.where(gid >= 0, remap[np.maximum(gid, 0)], -1)
        gviews = np.zeros_like(gviews)
        np.add.at(gviews, gid[gid >= 0], 1)
        gid, gframe, multi, Xg, xs, ws, tri, valid = _triangulate_groups(
            x, w, gid, gframe, gviews, K, R, t, camera_valid, outlier_px)
    G = multi.size
    # a member whose joints the triangulation mostly rejected is not this person
    seen = np.isfinite(xs).all(-1) & valid[None]                      # (C, G, J)
    used = tri.used.reshape(C, G, J) & seen
    n_seen = seen.sum(-1)
    bad_member = (n_seen >= 3) & (used.sum(-1) < 0.5 * n_seen)        # (C, G)
    track3d = link_groups(Xg, gframe[multi], T, gate=gate)
    # 3D tracks that the per-camera 2D tracks carry from one to the other are one person
    n3 = int(track3d.max()) + 1 if G else 0
    pos = np.full(int(gid.max()) + 1 if gid.size and gid.max() >= 0 else 0, -1, np.int64)
    pos[multi] = np.arange(G)
    gd = np.where(gid >= 0, pos[np.maximum(gid, 0)], -1)             # (C,T,P) multi index
    lab3 = np.where(gd >= 0, track3d[np.maximum(gd, 0)], -1)
    root = join_by_2d_tracks(lab3, tracks, [np.unique(gframe[multi][track3d == k])
                                            for k in range(n3)])
    joined_2d = int((root != np.arange(n3)).sum())
    track3d = np.where(track3d >= 0, root[np.maximum(track3d, 0)], -1)
    linked = track3d >= 0
    track3d[linked] = np.unique(track3d[linked], return_inverse=True)[1]
    track3d, joined_dup = join_duplicate_tracks(track3d, Xg, gframe[multi], gate=gate)
    person_g, n, partial = merge_tracks(track3d, Xg, gframe[multi], gate=gate,
                                        num_people=num_people, min_length=min_length,
                                        views=gviews[multi], min_cameras=min_cameras)
    pos = np.full(int(gid.max()) + 1 if gid.size and gid.max() >= 0 else 0, -1, np.int64)
    pos[multi] = np.arange(G)
    c, tt, p = np.nonzero(gid >= 0)
    g = pos[gid[c, tt, p]]
    identity = np.full((C, T, P), -1, np.int64)
    m = g >= 0
    lab = np.full(c.shape, -1, np.int64)
    lab[m] = np.where(bad_member[c[m], g[m]], -1, person_g[g[m]])
    identity[c, tt, p] = lab
    duplicates = _one_slot_per_person(identity, gid, gviews)
    dropped = int((m & (lab < 0)).sum())
    identity, added = repair_from_tracks(identity, tracks)
    # one-camera people: labelled detections whose person no other camera shows in that frame
    one = 0
    for k in range(n):
        cams = (identity == k).any(-1)                                # (C, T)
        one += int((cams.sum(0) == 1).sum())
    switches = 0
    for cc in range(C):
        for k in np.unique(tracks[cc][tracks[cc] >= 0]):
            lab_k = identity[cc][tracks[cc] == k]                       # in frame order
            lab_k = lab_k[lab_k >= 0]
            switches += int((np.diff(lab_k) != 0).sum())
    info = {"association_threshold_px": thr, "groups_multi_view": int(G),
            "person_scale": scale, "tracks3d": int(track3d.max() + 1) if G else 0,
            "members_dropped": int(bad_member.sum()), "split_groups_joined": int(joined),
            "tracks3d_joined_by_2d_tracks": joined_2d, "tracks3d_duplicates_joined": joined_dup,
            "duplicate_detections_dropped": duplicates, "labelled_from_2d_tracks": int(added),
            "one_camera_detections": one, "track_switches_repaired": switches,
            "unlabelled_group_members": dropped,
            "partial_tracks": [{"frames": f, "median_cameras": v} for f, v in partial]}
    return identity, n, info


@dataclass(frozen=True)
class _NoRig:
    """Stands in for a failed :class:`geometry.RigReconstruction` (nothing to calibrate)."""

    R: np.ndarray
    t: np.ndarray
    K: np.ndarray
    camera_valid: np.ndarray
    summary: dict
    valid: bool = False


def _no_rig(C, K):
    Kc = np.broadcast_to(np.asarray(K, np.float64), (C, 3, 3)).copy() if K is not None and \
        np.shape(K) in ((3, 3), (C, 3, 3)) else np.tile(np.eye(3), (C, 1, 1))
    return _NoRig(R=np.tile(np.eye(3), (C, 1, 1)), t=np.zeros((C, 3)), K=Kc,
                  camera_valid=np.zeros(C, bool), summary={})


def _result(identity, n, rec, tracks, det, msgs, summary, T, one_view, repaired):
    C = identity.shape[0]
    assigned = (identity >= 0) & det
    summary = dict(summary)
    summary.update({"num_people": int(n), "assigned": int(assigned.sum()),
                    "unassigned": int((det & ~assigned).sum()),
                    "per_camera": [{"camera": c, "detections": int(det[c].sum()),
                                    "assigned": int(assigned[c].sum()),
                                    "registered": bool(rec.camera_valid[c])} for c in range(C)],
                    "calibration": dict(rec.summary)})
    if one_view:
        msgs.append(f"{one_view} person-frames are seen by one camera only (no 3D there)")
    if repaired:
        msgs.append(f"{repaired} changes of person along per-camera 2D tracks (detector or "
                    f"tracker ID swaps) were repaired by the cross-camera association")
    bad = [c for c in range(C) if not rec.camera_valid[c]]
    if bad:
        msgs.append(f"camera(s) {bad} could not be registered; their detections are unassigned")
    thr = float(rec.summary.get("outlier_threshold_px", np.nan))
    return PeopleAssociation(identity=identity, num_people=int(n), R=rec.R, t=rec.t, K=rec.K,
                             camera_valid=rec.camera_valid, tracks=tracks,
                             outlier_threshold_px=thr, valid=bool(rec.valid and n > 0),
                             messages=tuple(msgs), summary=summary)
