"""``epigeo reconstruct INPUT --people auto|N``: several people, cameras from all of them.

Reads every detected person (:func:`learn.inputs.load_detections` ``all_people``), associates
them across cameras and time and calibrates the rig from all of them
(:func:`geometry.reconstruct_people`), then per person: 3D over time, pseudo-labels with the
single-person path's quality figures (:func:`learn.pseudo_labels.make_pseudo_labels` in
``calibrated`` mode with the estimated cameras, :func:`learn.quality.camera_quality`), an
OpenSim ``.trc`` (:mod:`pose.io_trc`). Outputs in ``--out`` (one set, swapped in by
:mod:`learn.out_folder`):

- ``people.npz``: ``points3d (T, N, J, 3)`` (NaN where fewer than 2 cameras agree),
  ``valid3d (T, N, J)``, ``reprojection_px (T, N, J)``, ``identity (C, T, P)`` (the person of
  every detection slot, -1 = none), ``track_length (N,)``, ``person_reprojection_px (N,)``,
  cameras ``R``, ``t``, ``K``, ``camera_names``, ``joint_names``, ``fps``, ``units``;
- ``pseudo_labels_person_XX.npz`` (the dataset file of :func:`learn.pseudo_labels.save_pseudo_labels`);
- ``person_XX.trc`` in metres when the scale is metric (a full ``--calib``: the estimated rig
  is aligned to the calibration's camera centres by a similarity) and ``--fps`` is given, else
  not written (a warning). As Pose2Sim does, the calibration's Z-up world is turned to
  OpenSim's Y-up one: the file's ``(X, Y, Z)`` = the world's ``(Y, Z, X)`` (:data:`ZUP_TO_YUP`);
  ``people.npz`` keeps the world frame;
- ``calibration.toml``, ``people.png``, ``report.html`` and ``report.json`` (per person: track
  length, reprojection error, labelled fraction, camera flags).
"""
from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

import numpy as np

__all__ = ["parse_people", "person_views", "align_to_calibration", "reconstruct_people_run",
           "people_output_names"]

_PERSON_FILE = re.compile(r"^(person_\d+\.trc|pseudo_labels_person_\d+\.npz)$")
PEOPLE_OUTPUTS = ("people.npz", "people.png")
#: world axes written as the .trc's X, Y, Z (Pose2Sim's ``zup2yup``: a rotation, det +1)
ZUP_TO_YUP = [1, 2, 0]


def parse_people(value: str):
    """``--people``: ``"auto"`` → ``None`` (the number is found), else an int ≥ 1."""
    if str(value).lower() == "auto":
        return None
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"--people: expected 'auto' or a number >= 1, got {value!r}") from None
    if n < 1:
        raise ValueError(f"--people: expected 'auto' or a number >= 1, got {value!r}")
    return n


def people_output_names(out) -> tuple:
    """The people-run file names a run in ``out`` owns (for :func:`learn.out_folder.commit`'s
    stale-file removal): the fixed ones plus the ``person_XX`` files present now."""
    out = Path(out)
    found = tuple(sorted(p.name for p in out.iterdir() if _PERSON_FILE.match(p.name))) \
        if out.is_dir() else ()
    return PEOPLE_OUTPUTS + found


def person_views(x, confidence, identity, n: int):
    """Person ``n``'s detections: ``x (C, T, P, J, 2)``, ``confidence (C, T, P, J)``,
    ``identity (C, T, P)`` → ``x_n (C, T, J, 2)`` (NaN where the person is not detected) and
    ``conf_n (C, T, J)`` (0 there)."""
    C, T, P, J = np.shape(confidence)
    xn = np.full((C, T, J, 2), np.nan)
    cn = np.zeros((C, T, J))
    c, t, p = np.nonzero(np.asarray(identity) == n)
    xn[c, t] = x[c, t, p]
    cn[c, t] = confidence[c, t, p]
    return xn, cn


def align_to_calibration(R, t, points, R_ref, t_ref):
    """The similarity that brings the estimated camera centres onto the reference ones
    (:func:`geometry.umeyama`), applied to the cameras ``R (C,3,3)``, ``t (C,3)`` (x_cam = R X +
    t) and the world points ``points (..., 3)`` → ``(R', t', points', scale)``: the
    reconstruction in the reference's world frame and units. Only cameras with finite poses in
    both count; fewer than 3 raise ``ValueError``."""
    import geometry as geo
    R, t, R_ref, t_ref = (np.asarray(a, np.float64) for a in (R, t, R_ref, t_ref))
    c_est = -np.einsum("cji,cj->ci", R, t)
    c_ref = -np.einsum("cji,cj->ci", R_ref, t_ref)
    ok = np.isfinite(c_est).all(1) & np.isfinite(c_ref).all(1)
    if ok.sum() < 3:
        raise ValueError(f"--calib: {int(ok.sum())} cameras with a pose to align the "
                         "reconstruction to the calibration's metric frame (need 3)")
    sim = geo.umeyama(c_est[ok], c_ref[ok])
    s, Rs, ts = float(sim.s), np.asarray(sim.R), np.asarray(sim.t)
    R2 = R @ Rs.T
    t2 = s * t - np.einsum("cij,j->ci", R2, ts)
    return R2, t2, geo.apply_similarity(sim, points), s


def _prepare_people(args, det, calib):
    """Sanity checks and undistortion of the all-people detections via the single-person
    path's :func:`learn.cli._prepare` (the people axis folded into the frames)."""
    from .cli import _prepare
    C, T, P, J, _ = det.keypoints.shape
    flat = dataclasses.replace(det, keypoints=det.keypoints.reshape(C, T * P, J, 3))
    flat, x, conf, K, sizes, calib, notes = _prepare(flat, calib, args.intrinsics_only,
                                                     args.image_size, args.focal)
    x = x.reshape(C, T, P, J, 2)
    conf = conf.reshape(C, T, P, J)
    low = ~(conf > args.min_confidence)
    x[low] = np.nan
    conf = np.where(low, 0.0, conf)
    return x, conf, K, sizes, calib, notes


def _person_rows(rec, labels, names, colours):
    from .quality import camera_quality
    rows = []
    for n in range(rec.num_people):
        lab = labels[n]
        res = rec.reprojection_px[:, n][rec.valid3d[:, n]]
        rows.append({
            "person": n + 1, "colour": colours[n % len(colours)],
            "track_length": int(rec.track_length[n]),
            "frames_3d": int(rec.valid3d[:, n].any(-1).sum()),
            "median_reprojection_px": float(rec.person_reprojection_px[n]),
            "p90_reprojection_px": float(np.percentile(res, 90)) if res.size else None,
            "labelled_fraction": None if lab is None else float(lab.info["labelled_fraction"]),
            "cameras": [] if lab is None else camera_quality(lab.residuals, names)})
    return rows


def _write(stage, args, det, rec, labels, views, skeleton, sizes, calib, metric, report):
    """All files of one people run into ``stage``; returns their paths (report.json last)."""
    import pose
    from pose.io_atomic import atomic_path
    from pose.io_trc import write_trc
    from .out_folder import file_digests
    from .pseudo_labels import save_pseudo_labels
    from .report import write_json

    written = []
    names = list(det.camera_names)
    joint_names = list(skeleton.names) if skeleton else [f"joint_{j}" for j in range(det.num_joints)]
    with atomic_path(stage / "people.npz") as tmp:
        np.savez_compressed(
            tmp, points3d=rec.points3d, valid3d=rec.valid3d, reprojection_px=rec.reprojection_px,
            identity=rec.identity, track_length=rec.track_length,
            person_reprojection_px=rec.person_reprojection_px, R=rec.R, t=rec.t, K=rec.K,
            camera_names=np.array(names, str), joint_names=np.array(joint_names, str),
            image_size=np.array(sizes, np.float64), fps=np.float64(args.fps or 0.0),
            units=np.array("m" if metric else "median camera distance"))
    written.append(stage / "people.npz")
    for n, lab in enumerate(labels):
        if lab is not None:
            written.append(save_pseudo_labels(stage / f"pseudo_labels_person_{n + 1:02d}.npz",
                                              lab, x=views[n][0], confidence=views[n][1]))
    if metric and args.fps:
        for n in range(rec.num_people):
            written.append(write_trc(stage / f"person_{n + 1:02d}.trc",
                                     rec.points3d[:, n][..., ZUP_TO_YUP], joint_names,
                                     fps=float(args.fps), units="m"))
    ok = np.isfinite(rec.R).all(axis=(1, 2)) & np.isfinite(rec.t).all(1)
    keep = np.flatnonzero(ok)
    pose.write_calibration_toml(stage / "calibration.toml", names=[names[c] for c in keep],
                                image_size=np.array(sizes)[keep], K=rec.K[keep],
                                dist=np.zeros((keep.size, 4)), R=rec.R[keep], t=rec.t[keep])
    written.append(stage / "calibration.toml")
    if skeleton is not None:
        try:
            from pose.plots import plot_people_3d
            import matplotlib.pyplot as plt
            from geometry.synthetic import Rig
            fig = plot_people_3d(rec.points3d, skeleton, rig=Rig(
                K=rec.K[keep], R=rec.R[keep], t=rec.t[keep], image_size=tuple(sizes[0])),
                path=stage / "people.png", units="m" if metric else "median camera distance")
            plt.close(fig)
            written.append(stage / "people.png")
        except ValueError as exc:
            report["warnings"].append(f"people.png skipped ({exc})")
        try:
            from .html_people import write_people_report
            written.append(write_people_report(stage, report, rec.points3d, rec.R, rec.t, rec.K,
                                               sizes, skeleton, metric, camera_names=names,
                                               fps=float(args.fps or 0.0)))
        except (ValueError, ImportError) as exc:
            report["warnings"].append(f"report.html skipped ({exc})")
    report["outputs_sha256"] = file_digests(stage, [p.name for p in written])
    written.append(write_json(stage / "report.json", report))
    return written


def reconstruct_people_run(args) -> dict:
    """Run ``epigeo reconstruct --people``; returns the report dictionary. ``ValueError`` for
    bad input (exit 2); :class:`learn.cli.UnusableResult` when no person could be
    reconstructed (exit 3, ``--out`` left as it was)."""
    import geometry as geo
    import pose
    from pose.plots import PERSON_COLOURS
    from .cli import UnusableResult, _log, _warn
    from .inputs import load_detections
    from .out_folder import RUN_OUTPUTS, commit, staging_folder
    from .pseudo_labels import make_pseudo_labels
    from .quality import camera_quality
    from .report import camera_pair_errors, root_joints, summarize_pair_errors

    t0 = time.perf_counter()
    want = parse_people(args.people)
    out = Path(args.out)
    det = load_detections(args.input, trim=args.trim, progress=not args.quiet,
                          skeleton=args.skeleton, all_people=True)
    calib = pose.read_calibration_toml(args.calib) if args.calib else None
    x, conf, K, sizes, calib, notes = _prepare_people(args, det, calib)
    for m in notes:
        _warn(m)
    C, T, P, J = conf.shape
    skeleton = pose.get_skeleton(det.skeleton) if det.skeleton else None
    root = root_joints(skeleton) if skeleton is not None else (0,)
    _log(f"input: {C} cameras ({', '.join(det.camera_names)}), {T} frames, up to {P} "
         f"detections per frame, {J} joints{' (' + skeleton.name + ')' if skeleton else ''}")
    _log(f"associating people across cameras and time ({'auto' if want is None else want} "
         "people) and calibrating from all of them...")
    opts = {"focal": args.focal} if (K is None and args.focal) else {}
    try:
        rec = geo.reconstruct_people(x, confidence=conf, K=K, image_size=sizes[0],
                                     num_people=want, seed=args.seed, **opts)
    except ValueError as exc:
        raise ValueError(f"{args.input}: the several-people reconstruction failed ({exc})") \
            from exc
    if not rec.valid or rec.num_people == 0:
        raise UnusableResult(f"{args.input}: no usable multi-person reconstruction ("
                             + "; ".join(rec.messages or ["no person tracked"])
                             + f"); nothing written, {out} left as it was")
    fixed = calib is not None and not args.intrinsics_only
    metric = bool(rec.metric)
    warnings = list(notes) + [str(m) for m in rec.messages]
    if fixed:
        R, t, pts, s = align_to_calibration(rec.R, rec.t, rec.points3d, calib.R, calib.t)
        rec = dataclasses.replace(rec, R=R, t=t, points3d=pts)
        metric = True
        warnings.append(f"cameras estimated from the people, then aligned to {args.calib}'s "
                        f"camera centres (similarity, scale {s:.4g}) for metric units")
    if not (metric and args.fps):
        warnings.append(".trc files not written: " + ("no metric scale (give --calib without "
                        "--intrinsics-only)" if not metric else "no frame rate (give --fps)"))
    labels, views = [], []
    for n in range(rec.num_people):
        xn, cn = person_views(x, conf, rec.identity, n)
        views.append((xn, cn))
        try:
            labels.append(make_pseudo_labels(
                xn, rec.K, cn, mode="calibrated", root=root, cameras=(rec.R, rec.t),
                min_confidence=args.min_confidence, seed=args.seed,
                units="metric" if metric else "normalized"))
        except ValueError as exc:
            labels.append(None)
            warnings.append(f"person {n + 1}: no pseudo-labels ({exc})")
    res_all = np.concatenate([lab.residuals for lab in labels if lab is not None], -1) \
        if any(lab is not None for lab in labels) else np.full((C, T, 1), np.nan)
    rows = _person_rows(rec, labels, det.camera_names, PERSON_COLOURS)
    assigned = int(((rec.identity >= 0) & ~np.isnan(x[..., 0]).all(-1)).sum())
    detections = int((~np.isnan(x[..., 0]).all(-1)).sum())
    report = {"input": str(args.input), "cameras": list(det.camera_names), "frames": T,
              "joints": J, "mode": "people", "people_requested": args.people,
              "num_people": int(rec.num_people), "skeleton": skeleton.name if skeleton else "",
              "units": "m" if metric else "median camera distance",
              "people": rows, "detections": {"total": detections, "assigned": assigned},
              "summary": {k: v for k, v in (rec.summary or {}).items()
                          if isinstance(v, (int, float, str, bool, np.floating, np.integer))},
              "camera_quality": camera_quality(res_all, det.camera_names),
              "warnings": warnings, "usable": True}
    fin = rec.reprojection_px[rec.valid3d]
    if fin.size:
        report["reprojection_px"] = {"median": float(np.median(fin)),
                                     "p90": float(np.percentile(fin, 90))}
    if calib is not None:
        ok = np.isfinite(rec.R).all(axis=(1, 2))
        keep = np.flatnonzero(ok)
        pairs = camera_pair_errors(rec.R[keep], rec.t[keep], calib.R[keep], calib.t[keep])
        for p in pairs:
            i, j = (int(v) for v in p["pair"].split("-"))
            p["pair"] = f"{keep[i]}-{keep[j]}"
        report["against_calibration"] = {"pairs": pairs, **summarize_pair_errors(pairs)}
    report["seconds"] = time.perf_counter() - t0
    kinds = RUN_OUTPUTS + people_output_names(out)
    try:
        with staging_folder(out) as stage:
            _write(stage, args, det, rec, labels, views, skeleton, sizes, calib, metric, report)
            written, stale = commit(stage, out, kinds)
    except Exception as exc:
        raise ValueError(f"--out: writing the results to {out} failed ({exc}); the previous "
                         f"outputs in {out} are left as they were") from exc
    for w in warnings[len(notes):]:
        _warn(w)
    _log(f"{rec.num_people} people tracked ({assigned} of {detections} detections assigned)")
    for r in rows:
        _log(f"  person {r['person']}: track length {r['track_length']} frames, 3D in "
             f"{r['frames_3d']} frames, median reprojection {r['median_reprojection_px']:.2f} px")
    if "against_calibration" in report:
        a = report["against_calibration"]
        _log(f"against {args.calib}: median relative rotation error {a['median_rotation_deg']:.2f}°"
             f" (max {a['max_rotation_deg']:.2f}°)")
    if stale:
        _log(f"removed from {out} the previous run's {', '.join(stale)}")
    _log("wrote: " + ", ".join(str(w) for w in written))
    return report
