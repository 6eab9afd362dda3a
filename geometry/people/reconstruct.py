"""Cameras and every person's 3D joints from multi-person detections of a static rig.

:func:`reconstruct_people` associates the detections (:func:`associate_people`), then
calibrates the rig from every associated person at once — each person is another set of
views of the same rig, stacked along the frame axis of :func:`geometry.reconstruct_rig` — whose
final robust triangulation gives each person's joints in every frame. With one detection slot
(``P = 1``) it is exactly :func:`geometry.reconstruct_rig` on ``x[:, :, 0]``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..camera import projection_matrix
from ..common.checks import check_real
from ..rig import reconstruct_rig
from ..triangulation import triangulate_multiview
from .associate import PeopleAssociation, associate_people, calibration_views
from .tracking import check_people_inputs
from .views import moving_frames, relative_motion

__all__ = ["PeopleReconstruction", "reconstruct_people"]


@dataclass(frozen=True)
class PeopleReconstruction:
    """Result of :func:`reconstruct_people` (``C`` cameras, ``T`` frames, ``N`` people, ``J``).

    ``R (C,3,3)``, ``t (C,3)``, ``K (C,3,3)``: cameras (``x_cam = R X + t``; camera 0 is the
    world; unit: metres when ``metric``, else the median camera distance from camera 0);
    ``camera_valid (C,)``; ``identity (C,T,P)`` int64 person of every detection (``-1``: none);
    ``num_people`` ``N``; ``points3d (T,N,J,3)`` world joints, NaN where fewer than two cameras
    agree; ``valid3d (T,N,J)``; ``reprojection_px (T,N,J)`` RMS reprojection error over the
    views a joint rests on (NaN where not valid); ``track_length (N,)`` frames with a 3D pose;
    ``person_reprojection_px (N,)`` median reprojection error per person; ``metric``;
    ``association`` (the :class:`PeopleAssociation` it started from); ``valid``; ``messages``;
    ``summary`` (per-camera diagnostics, assignment figures, repaired swaps, frames without
    people, one-camera person-frames, per-person figures, the calibration's figures).
    """

    R: np.ndarray
    t: np.ndarray
    K: np.ndarray
    camera_valid: np.ndarray
    identity: np.ndarray
    num_people: int
    points3d: np.ndarray
    valid3d: np.ndarray
    reprojection_px: np.ndarray
    track_length: np.ndarray
    person_reprojection_px: np.ndarray
    metric: bool
    association: PeopleAssociation
    valid: bool
    messages: tuple = ()
    summary: dict = field(default_factory=dict)


def _informative_frames(xs, N, T, min_px, still: float = 0.03):
    """Person-frames (indices into ``N·T``) for calibration: each person's frames spaced
    ``min_px`` apart along their path (:func:`~geometry.people.views.moving_frames`); a person
    standing still (:func:`~geometry.people.views.relative_motion` under ``still`` in every
    camera) gives nothing when someone else moves — ``T`` copies of one pose would outweigh
    everyone — and otherwise one frame, the one with most joints seen."""
    C, _, J, _ = xs.shape
    out, still_frames = [], []
    for n in range(N):
        fr = np.flatnonzero(np.isfinite(xs[:, n * T:(n + 1) * T]).all(-1).any(axis=(0, 2)))
        if fr.size == 0:
            continue
        if min_px <= 0:
            out.append(n * T + fr)
            continue
        v = xs[:, n * T + fr]                                         # (C, F, J, 2)
        moved = np.array([relative_motion(v[c]) for c in range(C)
                          if np.isfinite(v[c]).all(-1).sum() >= 3])
        if np.all(moved < still):
            nseen = np.isfinite(v).all(-1).sum(axis=(0, 2))
            still_frames.append(np.array([n * T + fr[int(np.argmax(nseen))]]))
            continue
        poses = v.transpose(1, 0, 2, 3).reshape(fr.size, C * J, 2)
        out.append(n * T + fr[moving_frames(poses, min_px)])
    out = out or still_frames            # still people only count when nobody moves
    return np.sort(np.concatenate(out)) if out else np.zeros(0, np.int64)


def _project(rec, X):
    """Pixels ``(C, M, 2)`` of world points ``X (M, 3)`` in the cameras of ``rec``."""
    Xc = np.einsum("cij,mj->cmi", rec.R, X) + rec.t[:, None]
    uv = np.einsum("cij,cmj->cmi", rec.K, Xc)
    with np.errstate(all="ignore"):
        return uv[..., :2] / uv[..., 2:3]


def reconstruct_people(x, confidence=None, K=None, *, image_size=None, num_people=None,
                       seed: int = 0, threshold: float | None = None, max_px: float | None = None,
                       min_track_frames: int | None = None, min_cameras: int | None = None,
                       min_motion_px: float = 2.0, **rig_options) -> PeopleReconstruction:
    """Cameras and each person's 3D joints from several people's detections, no calibration.

    Args:
        x: ``(C, T, P, J, 2)`` undistorted pixels, NaN where a slot or joint is empty (slot order
            arbitrary per camera-frame). confidence: optional ``(C, T, P, J)``.
        K, image_size: intrinsics as in :func:`geometry.reconstruct_rig`.
        num_people: ``N`` or None / ``"auto"``. seed: RANSAC seed.
        threshold, max_px, min_track_frames, min_cameras: as in :func:`associate_people`.
        min_motion_px: calibration uses a person's frames only where they moved more than this
            (median joint displacement over all cameras, px) since the previous frame used; a
            person who stands still (median displacement from their median pose < 3 % of their
            image size in every camera) is left out of calibration when someone moves (one frame
            when nobody does); every frame is triangulated.
            0 = all frames.
        rig_options: passed to :func:`geometry.reconstruct_rig` (``refine_focal``,
            ``subject_height``/``height_joints``, ``up_joints``, …; metric scale and the up
            direction are taken from all people together).
    Returns:
        :class:`PeopleReconstruction`. Bad arguments raise ``ValueError`` naming the argument;
        frames without people, people seen by one camera and detector ID swaps are reported in
        ``summary`` and ``messages``, never raised.
    """
    min_motion_px = check_real("min_motion_px", min_motion_px, 0.0)
    assoc = associate_people(x, confidence, K, image_size=image_size, num_people=num_people,
                             seed=seed, threshold=threshold, max_px=max_px,
                             min_track_frames=min_track_frames, min_cameras=min_cameras,
                             **rig_options)
    x, w = check_people_inputs(x, confidence)
    C, T, P, J, _ = x.shape
    N = assoc.num_people
    msgs = list(assoc.messages)
    xs = ws = None
    if N > 0:
        xs, ws = calibration_views(x, w, assoc.identity, N)            # (C, N·T, J, 2)
        # one slot (the single-person path): every frame, as reconstruct_rig on x[:, :, 0]
        sel = _informative_frames(xs, N, T, 0.0 if P == 1 else float(min_motion_px))
        if sel.size == 0:
            N = 0
    if N == 0:
        msgs.append("no person could be reconstructed")
        return PeopleReconstruction(
            R=assoc.R, t=assoc.t, K=assoc.K, camera_valid=assoc.camera_valid,
            identity=assoc.identity, num_people=0, points3d=np.full((T, 0, J, 3), np.nan),
            valid3d=np.zeros((T, 0, J), bool), reprojection_px=np.full((T, 0, J), np.nan),
            track_length=np.zeros(0, np.int64), person_reprojection_px=np.zeros(0),
            metric=False, association=assoc, valid=False, messages=tuple(msgs),
            summary=dict(assoc.summary))
    rec, restarts = _calibrate(xs[:, sel], None if ws is None else ws[:, sel], K, image_size,
                               seed, assoc, rig_options)
    if restarts:
        msgs.append(f"the calibration from the associated people was repeated with {restarts} "
                    f"other RANSAC seed(s) (its median reprojection error was over twice that of "
                    f"the association's cameras); the lowest error was kept")
    if sel.size == N * T:
        # every person-frame was in the calibration: reconstruct_rig's own 3D
        pv = (rec.point_valid.reshape(N, T, J) & bool(rec.valid)).transpose(1, 0, 2)
        Xa = rec.X.reshape(N, T, J, 3)
        res = np.where(rec.inliers & np.isfinite(rec.residuals), rec.residuals, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rms = np.sqrt(np.nanmean(res ** 2, axis=0)).reshape(N, T, J)
    else:
        # every person-frame triangulated with the final cameras (and the detector bias it
        # estimated, if any) as reconstruct_rig does
        obs = np.isfinite(xs).all(-1) & rec.camera_valid[:, None, None]
        if ws is not None:
            obs &= ws > float(rig_options.get("min_confidence", 0.0))
        thr = float(rec.summary.get("outlier_threshold_px", 8.0))
        bias = getattr(rec, "joint_bias", None)                       # observed = true + bias
        xd = xs if bias is None else xs - bias[:, None]
        tri = triangulate_multiview(projection_matrix(rec.K, rec.R, rec.t),
                                    xd.reshape(C, N * T * J, 2), mask=obs.reshape(C, -1),
                                    weights=None if ws is None else ws.reshape(C, -1),
                                    method="dlt", threshold=thr)
        pv = ((tri.valid & (tri.num_views >= 2)).reshape(N, T, J) & bool(rec.valid)).transpose(
            1, 0, 2)
        Xa = tri.X.reshape(N, T, J, 3)
        rms = tri.reproj_error.reshape(N, T, J)
        res = np.where(tri.used.reshape(C, -1), np.linalg.norm(
            _project(rec, tri.X) - np.nan_to_num(xd.reshape(C, -1, 2)), axis=-1), np.nan)
    X = np.where(pv[..., None], Xa.transpose(1, 0, 2, 3), np.nan)
    rms = np.where(pv, rms.transpose(1, 0, 2), np.nan)
    length = pv.any(-1).sum(0).astype(np.int64)                        # (N,)
    per_person = np.array([float(np.nanmedian(rms[:, n])) if pv[:, n].any() else np.nan
                           for n in range(N)])
    views = (assoc.identity[..., None] == np.arange(N)).any(2)        # (C, T, N)
    nviews = views.sum(0)                                             # (T, N)
    summary = dict(assoc.summary)
    summary["calibration"] = dict(rec.summary)
    summary["people"] = [{"person": n, "track_length": int(length[n]),
                          "frames_detected": int((nviews[:, n] > 0).sum()),
                          "frames_one_camera": int((nviews[:, n] == 1).sum()),
                          "cameras": [int(c) for c in np.flatnonzero(views[:, :, n].any(1))],
                          "first_frame": int(np.argmax(nviews[:, n] > 0)),
                          "reprojection_px": per_person[n]} for n in range(N)]
    summary["frames_with_3d"] = int(pv.any(axis=(1, 2)).sum())
    summary["frames_zero_people_3d"] = int(T - summary["frames_with_3d"])
    summary["person_frames_one_camera"] = int((nviews == 1).sum())
    summary["calibration_frames"] = int(sel.size)
    summary["calibration_restarts"] = int(restarts)
    for c in range(C):
        r = res[c][np.isfinite(res[c])]
        summary["per_camera"][c].update(
            {"registered": bool(rec.camera_valid[c]),
             "median_reprojection_px": float(np.median(r)) if r.size else float("nan"),
             "inliers": int(r.size)})
    bad = [c for c in range(C) if not rec.camera_valid[c]]
    if bad:
        msgs.append(f"camera(s) {bad} could not be registered from the associated people")
    if not rec.valid:
        msgs.append("the rig could not be calibrated from the associated people")
    return PeopleReconstruction(
        R=rec.R, t=rec.t, K=rec.K, camera_valid=rec.camera_valid, identity=assoc.identity,
        num_people=N, points3d=X, valid3d=pv, reprojection_px=rms, track_length=length,
        person_reprojection_px=per_person, metric=bool(rec.metric), association=assoc,
        valid=bool(rec.valid and assoc.valid), messages=tuple(msgs), summary=summary)


def _calibrate(xs, ws, K, image_size, seed, assoc, rig_options, max_restarts: int = 2):
    """:func:`reconstruct_rig` on the people's views, repeated with other seeds (at most
    ``max_restarts``) while its median reprojection error exceeds twice that of the cameras the
    association found (a wrong relative pose early in the registration chain ends in a local
    minimum: seen on BlazePose detections of the Pose2Sim multi-person videos, 42° off and
    24 px with one seed, 2.4° and 6 px with the next). Returns the result with the lowest
    error and the number of restarts."""
    def err(r):
        return float(r.summary.get("median_reprojection_px", np.inf)) if r.valid else np.inf
    rec = reconstruct_rig(xs, K, confidence=ws, image_size=image_size, seed=seed, **rig_options)
    ref = float(assoc.summary.get("calibration", {}).get("median_reprojection_px", np.nan))
    restarts = 0
    while np.isfinite(ref) and err(rec) > 2.0 * ref and restarts < max_restarts:
        restarts += 1
        alt = reconstruct_rig(xs, K, confidence=ws, image_size=image_size,
                              seed=(seed + 7919 * restarts) % 2 ** 32, **rig_options)
        if err(alt) < err(rec):
            rec = alt
    return rec, restarts
