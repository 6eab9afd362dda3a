"""Time offsets on real detections and real motion (issue #19 offsets item, #21 offset flags).

Cases (each with cameras shifted by known offsets ``D = (0, −3, +4.6, −2.3)`` frames and by
random ones, uniform in ±5 frames, camera 0 the reference):

- **Pose2Sim balancing** (real OpenPose, 4 cameras, 60 fps): camera ``c``'s new frame ``t`` is
  its original frame ``t + 5 + D_c`` (linear interpolation for fractional shifts), 90 frames.
  The original cameras are not perfectly synchronised themselves and their native offsets
  ``n`` are unknown: the reference is :func:`geometry.synchronise_rig` on all 100 original
  frames (so the error measures whether shifted, cropped, interpolated copies give the same
  answer); the estimate with the Qualisys cameras held fixed
  (:func:`geometry.offsets_with_cameras`) is the second reference
  (``max_offset_err_vs_qualisys_frames``). The true offsets of a shifted case are ``n − D``.
  "Synchronised data" = the original tracks resampled with ``n``.
- **CMU mocap 131_01** (real motion, 120 fps, Human3.6M-17 joints) filmed at 60 fps by a
  virtual 4-camera portrait rig (:func:`pose.make_people_rig` ``"portrait"``) with detector
  noise (3 px, 5 % outliers, 2 % missing; :class:`pose.DetectorNoise`); camera ``c``'s frame
  ``t`` shows the instant ``t + D_c`` (3D linearly interpolated between mocap samples), 240
  frames. True offsets ``−D``; synchronised data: ``D = 0`` with the same noise seed.

Methods: ``estimate_time_offsets`` (pooled F per shift, then the rig from the resynchronised
views) and ``synchronise_rig`` (the rig refined jointly with the offsets). Row fields:
``case``, ``method``, ``max_offset_err_frames``, ``median_rot_deg`` (median relative-rotation
error over camera pairs of the rig from the resynchronised views: against the Qualisys
calibration / the virtual rig), ``median_rot_deg_synced`` (the same reconstruction from the
synchronised data), ``rot_ratio`` (their ratio; target ≤ 1.2), ``flag_recall`` /
``flag_keep`` (#21: fraction of offsets off by ≥ 0.5 frame flagged not confident / of the
others left confident; NaN where there are none), ``seconds``. The #21 flag set (synthetic
people as in ``tests/geometry/rig/test_quality_flags.py`` plus Pose2Sim with whole shifts) ends
the table with one row per method, then its synthetic part drawn again (:data:`MORE_DRAWS`,
not with ``--quick``) pooled, one row per method; then the synthetic part of each seed as one
session (its clips share one rig; :func:`geometry.synchronise_session`), and an oracle bound:
the continuous-time fit with the true cameras, started at the true offsets, and the best flag
that thresholds its std (recall ≥ 0.9, most kept; ``std_threshold`` in the JSON).

Measured (full run of ``python -m benchmarks accuracy``, 5 Dec 06:09–06:33 UTC, one core;
``confident`` needs P(|error| < ½) ≥ 0.99 since then, 0.9 before): ``synchronise_rig`` max
offset error 0.070–0.104 frame on the five Pose2Sim cases (``estimate_time_offsets``:
0.33–1.28) and 0.029–0.052 on CMU (0.065–0.144); rotation ratio to the synchronised data
0.87–1.03 on Pose2Sim and 0.49–0.85 on CMU; 29 of their 30 offsets confident. Flag set: 2 of 54
off by ≥ 0.5 frame (largest 0.73), recall 1.0 / keep 0.69 for ``synchronise_rig`` (0.75 with
0.9), 1.0 / 0.58 for ``estimate_time_offsets`` (0.79); new draws (144 offsets): 8 off,
1.0 / 0.55 (0.63) and 0.96 / 0.72 (0.87 / 0.75). Sessions: seed 7 RMS 0.237 frame, 3 of 36
off, 1.0 / 0.55; seeds 11–14 RMS 0.175, 2 of 144 off, 1.0 / 0.59. Oracle bound: 3 of 180 off
(largest 0.56), best keep 0.85 at recall 1.0 — keep 0.95 is out of reach on this set: the
offsets of the slow 100-frame clips (turning, reaching; half of the synthetic ones) that end
half a frame off have stds like the correct ones beside them.
"""
from __future__ import annotations

import json
import sys
import time
from itertools import combinations
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FIXED = np.array([0.0, -3.0, 4.6, -2.3])
MORE_DRAWS = (11, 12, 13, 14)   # seeds of the flag set's synthetic part drawn again

__all__ = ["offset_rows", "main"]


def _rot_err(Ra, Rb):
    c = (np.trace(Ra @ Rb.T) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(c, -1, 1))))


def _median_rot(R_est, R_true):
    return float(np.median([_rot_err(R_est[j] @ R_est[i].T, R_true[j] @ R_true[i].T)
                            for i, j in combinations(range(len(R_true)), 2)]))


def _shift_set(quick, seed=0):
    rng = np.random.default_rng(seed)
    sets = [("fixed (0, -3, +4.6, -2.3)", FIXED)]
    for k in range(1 if quick else 4):
        sets.append((f"random #{k}", np.concatenate([[0.0], np.round(rng.uniform(-5, 5, 3), 2)])))
    return sets


def _pose2sim_data():
    """``(x (4,100,25,2) undistorted px, NaN where confidence ≤ 0.2), conf, K, R, t``."""
    import geometry as geo
    d = np.load(SHARED / "pose2sim_demo" / "pose2sim_demo.npz")
    kp, K, dist = d["balancing_kp2d"], d["K"], d["dist"]
    x, conf = kp[..., :2].astype(float).copy(), kp[..., 2].astype(float).copy()
    x[conf <= 0.2] = np.nan
    for c in range(len(K)):
        x[c] = geo.undistort_points(x[c], K[c], dist[c])
    return x, conf, K, d["R"], d["t"]


def _shift_views(x, shifts, start, T):
    """``out[c, t] = x[c](t + start + shifts[c])`` for ``t < T`` (linear interpolation)."""
    import geometry as geo
    return np.stack([geo.apply_time_offsets(x[c:c + 1], [start + float(shifts[c])])[0, :T]
                     for c in range(x.shape[0])])


def _cmu_people(D, T, seed):
    """CMU 131_01 filmed at 60 fps; camera ``c``'s frame ``t`` shows instant ``t + D_c``."""
    import pose
    from pose.bvh import bvh_to_h36m
    X = bvh_to_h36m(SHARED / "cmu_mocap_131" / "scaled_131_01.bvh")
    X = X - np.array([*X[:, 0, :2].mean(0), 0.0])
    rig = pose.make_people_rig("portrait", 4, seed=seed)
    noise = pose.DetectorNoise(sigma_px=3.0, outlier_ratio=0.05, missing_ratio=0.02,
                               swap_ratio=0.0)
    start = 40                                   # camera frames (60 fps) into the clip
    xs = []
    for c in range(4):
        tm = 2.0 * (start + np.arange(T) + D[c])        # mocap samples (120 fps)
        i0 = np.clip(np.floor(tm).astype(int), 0, len(X) - 2)
        a = (tm - i0)[:, None, None]
        Xc = (1 - a) * X[i0] + a * X[i0 + 1]
        film = pose.film_motion(Xc, rig, noise=noise, fps=60.0, seed=seed * 10 + c)
        xs.append(film.x[c])
    return np.stack(xs), rig


def _methods(x, K, R_true, truth, conf, rows, case, synced_rot, max_offset, flags):
    import geometry as geo
    opts = dict(min_confidence=0.2) if conf is not None else {}
    t0 = time.perf_counter()
    r = geo.estimate_time_offsets(x, max_offset=max_offset)
    xs = geo.apply_time_offsets(x, r.offsets)
    cs = None if conf is None else np.nan_to_num(geo.apply_time_offsets(
        np.repeat(conf[..., None], 2, -1), r.offsets)[..., 0])
    rec = geo.reconstruct_rig(xs, K, confidence=cs, **opts)
    rows.append(_row(case, "estimate_time_offsets + reconstruct_rig", r.offsets, truth, rec.R,
                     R_true,
                     synced_rot, r.confident[1:], time.perf_counter() - t0))
    t0 = time.perf_counter()
    s = geo.synchronise_rig(x, K, confidence=conf, max_offset=max_offset, **opts)
    err = np.abs(s.offsets - truth)[1:]
    rows.append(_row(case, "synchronise_rig (joint rig + offsets)", s.offsets, truth, s.rig.R,
                     R_true,
                     synced_rot, s.confident[1:], time.perf_counter() - t0))
    rows[-1]["rounds"] = int(s.summary["rounds"])
    flags.append((err, s.confident[1:]))


def _flag_figures(err, confident):
    """``flag_recall`` (offsets off by ≥ ½ frame that are not confident) and ``flag_keep``
    (the others left confident) of errors ``err`` and flags ``confident``; NaN where none."""
    off = err >= 0.5
    return {"flag_recall": float((~confident[off]).mean()) if off.any() else float("nan"),
            "flag_keep": float(confident[~off].mean()) if (~off).any() else float("nan")}


def _row(case, method, offsets, truth, R_est, R_true, synced_rot, confident, sec):
    rot = _median_rot(R_est, R_true)
    err = np.abs(offsets - truth)[1:]
    return {"case": case, "method": method, "max_offset_err_frames": float(err.max()),
            "offsets": [round(float(v), 3) for v in offsets],
            "offset_err_frames": [round(float(e), 3) for e in err],
            "median_rot_deg": rot, "median_rot_deg_synced": synced_rot,
            "rot_ratio": rot / max(synced_rot, 1e-9),
            **_flag_figures(err, confident),
            "seconds": sec}


def _pose2sim_rows(quick, rows, notes, flags):
    import geometry as geo
    x, conf, K, R, t = _pose2sim_data()
    # native offsets of the original recording (unknown): the joint estimate on all 100 frames
    # is the reference; the estimate with the Qualisys cameras held fixed is reported beside it
    joint = geo.synchronise_rig(x, K, confidence=conf, min_confidence=0.2, max_offset=4)
    n = joint.offsets
    qual = geo.offsets_with_cameras(x, K, R, t, max_offset=4)["offsets"]
    notes["Pose2Sim native offsets"] = (
        f"{np.round(n, 3).tolist()} frames (std {np.round(joint.offset_std, 3).tolist()}): "
        "synchronise_rig on the original 100 frames (the reference of the errors); with the "
        f"Qualisys cameras held fixed instead: {np.round(qual, 3).tolist()} "
        "(max_offset_err_vs_qualisys_frames uses those)")
    T, start = 90, 5
    xsync = _shift_views(x, n, start, T)
    csync = np.nan_to_num(_shift_views(np.repeat(conf[..., None], 2, -1), n, start, T)[..., 0])
    rec0 = geo.reconstruct_rig(xsync, K, confidence=csync, min_confidence=0.2)
    synced_rot = _median_rot(rec0.R, R)
    for name, D in _shift_set(quick):
        xs = _shift_views(x, D, start, T)
        cs = np.nan_to_num(_shift_views(np.repeat(conf[..., None], 2, -1), D, start, T)[..., 0])
        k = len(rows)
        _methods(xs, K, R, n - D, cs, rows, f"Pose2Sim balancing, shifts {name}", synced_rot,
                 6, flags)
        for r in rows[k:]:
            r["max_offset_err_vs_qualisys_frames"] = float(np.max(np.abs(
                np.asarray(r["offsets"]) - (qual - D))[1:]))


def _cmu_rows(quick, rows, notes, flags):
    import geometry as geo
    T = 240
    x0, rig = _cmu_people(np.zeros(4), T, seed=1)
    rec0 = geo.reconstruct_rig(x0, rig.K)
    synced_rot = _median_rot(rec0.R, rig.R)
    for name, D in _shift_set(quick):
        x, _ = _cmu_people(D, T, seed=1)
        _methods(x, rig.K, rig.R, -D, None, rows, f"CMU 131_01 virtual rig, shifts {name}",
                 synced_rot, 6, flags)


def _synthetic_clips(quick, seed=7):
    """The synthetic part of the issue-21 flag set: 6 motions, 2–4 px noise, 10 % outliers,
    100–200 frames, random delays in ±5 frames, two clips per motion (the cases of
    ``tests/geometry/rig/test_quality_flags.py``; ``seed`` 7: the set of issue 21). Yields
    ``(name, x, rig, truth)``, ``rig`` the true :class:`pose.Rig`."""
    import pose
    fine = 10
    rng = np.random.default_rng(seed)
    specs = (("walk", 2.0, 200), ("turn", 4.0, 100), ("reach", 3.0, 100), ("squat", 3.0, 200),
             ("random", 2.0, 100), ("turn", 3.0, 100))
    for motion, sigma, T in specs[:3] if quick else specs:
        noise = pose.DetectorNoise(sigma_px=sigma, outlier_ratio=0.1, missing_ratio=0.02,
                                   swap_ratio=0.0)
        people = pose.make_people(1, (motion,), 240 * fine, fps=50.0 * fine, noise=noise,
                                  seed=int(rng.integers(1000)))
        for _ in range(2):
            D = np.concatenate([[0.0], rng.uniform(-5, 5, 3)])
            start = int(rng.integers(6, 240 - T - 6)) * fine
            x = np.stack([people.x[c, (start + np.round((np.arange(T) + d) * fine)).astype(int)]
                          for c, d in enumerate(D)])
            yield f"synthetic {motion} {sigma:g} px {T} frames", x, people.rig, -D


def _flag_cases(quick, seed=7, real=True):
    """The issue-21 flag set: :func:`_synthetic_clips` and, with ``real``, the Pose2Sim
    balancing trial with whole shifts, 90 frames. ``seed`` draws the people, delays and clips
    (7: the set of issue 21; :data:`MORE_DRAWS` for fresh draws of the same kinds of clip).
    Yields ``(name, x, K, truth, conf)``."""
    for name, x, rig, truth in _synthetic_clips(quick, seed):
        yield name, x, rig.K, truth, None
    if real and (SHARED / "pose2sim_demo" / "pose2sim_demo.npz").exists():
        import geometry as geo
        x, conf, K, R, t = _pose2sim_data()
        n = geo.synchronise_rig(x, K, confidence=conf, min_confidence=0.2, max_offset=4).offsets
        rng = np.random.default_rng(3)
        for _ in range(2 if quick else 6):
            D = np.concatenate([[0], rng.integers(-4, 5, 3)]).astype(float)
            cs = np.nan_to_num(_shift_views(np.repeat(conf[..., None], 2, -1), D, 5, 90)[..., 0])
            yield "Pose2Sim whole shifts", _shift_views(x, D, 5, 90), K, n - D, cs


def _session_rows(quick, rows):
    """The synthetic part of the flag set as sessions (:func:`geometry.synchronise_session`):
    each seed's clips share one rig, so they are one session's trials; one row for seed 7,
    one for :data:`MORE_DRAWS` pooled (not with ``quick``)."""
    import geometry as geo
    sets = [("#21 flag set, synthetic part as one session (seed 7)", (7,))]
    if not quick:
        sets.append((f"#21 flag set, synthetic part as one session per seed "
                     f"({', '.join(map(str, MORE_DRAWS))}), pooled", MORE_DRAWS))
    for title, seeds in sets:
        err, conf, t0 = [], [], time.perf_counter()
        for seed in seeds:
            clips = list(_synthetic_clips(quick, seed))
            offsets, res, _ = geo.synchronise_session([c[1] for c in clips], clips[0][2].K,
                                                      max_offset=6)
            err += [np.abs(o - c[3])[1:] for o, c in zip(offsets, clips)]
            conf += [r["confident"][1:] for r in res]
        err, conf = np.concatenate(err), np.concatenate(conf)
        off = err >= 0.5
        rows.append({"case": title, "method": "synchronise_session confidence flags",
                     "max_offset_err_frames": float(err.max()),
                     "median_offset_err_frames": float(np.median(err)),
                     "rms_offset_err_frames": float(np.sqrt(np.mean(err ** 2))),
                     **_flag_figures(err, conf), "n_offsets": int(err.size),
                     "n_off_by_half": int(off.sum()), "n_flagged_off": int((~conf[off]).sum()),
                     "n_kept": int(conf[~off].sum()), "seconds": time.perf_counter() - t0})


def _oracle_rows(quick, rows):
    """What no flag can beat on the synthetic part of the flag set: the continuous-time fit
    with the true cameras held and started at the true offsets (more than any
    self-calibrating method knows), and the best flag that thresholds its std — the threshold
    with recall ≥ 0.9 that keeps the most correct offsets confident."""
    import geometry as geo
    from geometry.rig.sync_spline import refine_offsets_continuous
    seeds = (7,) if quick else (7,) + MORE_DRAWS
    err, sd = [], []
    t0 = time.perf_counter()
    for seed in seeds:
        for _, x, rig, truth in _synthetic_clips(quick, seed):
            r = refine_offsets_continuous(x, rig.K, rig.R, rig.t, truth, geo.smooth_tracks(x))
            err.append(np.abs(r["offsets"] - truth)[1:])
            sd.append(r["offset_std"][1:])
    err, sd = np.concatenate(err), np.concatenate(sd)
    off = err >= 0.5
    best = (np.inf, 1.0, float("nan"))            # nothing off: flag nothing
    if off.any():
        best = (np.nan, -1.0, np.nan)
        for tau in np.unique(sd):
            flag = sd >= tau
            keep = float((~flag[~off]).mean())
            if flag[off].mean() >= 0.9 and keep > best[1]:
                best = (float(tau), keep, float(flag[off].mean()))
    rows.append({"case": f"#21 flag set, synthetic part (seeds {', '.join(map(str, seeds))}), "
                         "pooled: oracle bound",
                 "method": "continuous fit, true cameras, started at the truth; best std "
                           "threshold with recall >= 0.9",
                 "max_offset_err_frames": float(err.max()),
                 "median_offset_err_frames": float(np.median(err)),
                 "flag_recall": best[2], "flag_keep": best[1], "std_threshold": best[0],
                 "n_offsets": int(err.size), "n_off_by_half": int(off.sum()),
                 "seconds": time.perf_counter() - t0})


def _flag_rows(quick, rows):
    """The issue-21 flag set's rows (both methods), then the same for :data:`MORE_DRAWS`
    (synthetic clips only, pooled; not with ``quick``): the set of issue 21 is one draw, and
    its hard clips are chaotic, so a figure from one draw can be luck."""
    import geometry as geo
    sets = [("#21 flag set: synthetic people + Pose2Sim whole shifts", (7,), True)]
    if not quick:
        sets.append((f"#21 flag set, synthetic part drawn again (seeds "
                     f"{', '.join(map(str, MORE_DRAWS))}), pooled", MORE_DRAWS, False))
    for title, seeds, real in sets:
        got = {"estimate_time_offsets": ([], []), "synchronise_rig": ([], [])}
        for seed in seeds:
            for name, x, K, truth, conf in _flag_cases(quick, seed, real):
                r = geo.estimate_time_offsets(x, max_offset=6)
                opts = dict(min_confidence=0.2) if conf is not None else {}
                s = geo.synchronise_rig(x, K, confidence=conf, max_offset=6, **opts)
                for key, o, c in (("estimate_time_offsets", r.offsets, r.confident),
                                  ("synchronise_rig", s.offsets, s.confident)):
                    got[key][0].append(np.abs(o - truth)[1:])
                    got[key][1].append(c[1:])
        for key, (err, conf) in got.items():
            err, conf = np.concatenate(err), np.concatenate(conf)
            off = err >= 0.5
            rows.append({"case": title, "method": f"{key} confidence flags",
                         "max_offset_err_frames": float(err.max()),
                         "median_offset_err_frames": float(np.median(err)),
                         **_flag_figures(err, conf),
                         "n_offsets": int(err.size), "n_off_by_half": int(off.sum()),
                         "n_flagged_off": int((~conf[off]).sum()),
                         "n_kept": int(conf[~off].sum())})


def offset_rows(quick: bool = False) -> list[dict]:
    """Rows of the offsets benchmark (see the module docstring): per case and method, then the
    flag summary over every ``synchronise_rig`` offset of those cases, then the issue-21 flag
    set (``flag_recall``: offsets off by ≥ 0.5 frame that are flagged; ``flag_keep``: the
    others left confident) for both methods."""
    rows, notes, flags = [], {}, []
    if (SHARED / "pose2sim_demo" / "pose2sim_demo.npz").exists():
        _pose2sim_rows(quick, rows, notes, flags)
    if (SHARED / "cmu_mocap_131" / "scaled_131_01.bvh").exists():
        _cmu_rows(quick, rows, notes, flags)
    if flags:
        err = np.concatenate([f[0] for f in flags])
        conf = np.concatenate([f[1] for f in flags])
        off = err >= 0.5
        rows.append({"case": "all cases above", "method": "synchronise_rig confidence flags",
                     "max_offset_err_frames": float(err.max()),
                     **_flag_figures(err, conf),
                     "n_offsets": int(err.size), "n_off_by_half": int(off.sum())})
    _flag_rows(quick, rows)
    _session_rows(quick, rows)
    _oracle_rows(quick, rows)
    for r in rows:
        r.setdefault("notes", "")
    if rows and notes:
        rows[0]["notes"] = "; ".join(f"{k}: {v}" for k, v in notes.items())
    return rows


def main(argv=None) -> int:
    quick = "--quick" in (sys.argv[1:] if argv is None else argv)
    rows = offset_rows(quick)
    cols = ["case", "method", "max_offset_err_frames", "median_rot_deg", "median_rot_deg_synced",
            "rot_ratio", "flag_recall", "flag_keep", "seconds"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        cells = [r.get(c, "") for c in cols]
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v)
                                for v in cells) + " |")
    print(json.dumps(rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
