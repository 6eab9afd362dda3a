"""Speed of the synthetic-people generator: 10k frames × 4 cameras with detector noise (< 1 s)."""
from __future__ import annotations

import numpy as np

from benchmarks._report import timed, write_report


def run(args) -> str:
    from pose import DetectorNoise, make_people, make_people_rig, random_distortion
    from pose.motion import MOTIONS

    frames = 1000 if args.quick else 10_000
    repeat = 1 if args.quick else 3
    per_clip = frames // (4 * len(MOTIONS))
    rows = []
    cases = [
        ("h36m ring, default noise", dict()),
        ("h36m ring, noise + ±2 frame offsets",
         dict(noise=DetectorNoise(sigma_px=3.0, outlier_ratio=0.05, missing_ratio=0.05,
                                  swap_ratio=0.01, max_time_offset=2))),
        ("random portrait rig + distortion",
         dict(rig=make_people_rig("portrait", seed=args.seed),
              dist=random_distortion(4, seed=args.seed))),
    ]
    make_people(1, frames_per_clip=10, seed=args.seed)  # warm caches (imports)
    for label, kw in cases:
        d, sec = timed(make_people, 4, MOTIONS, per_clip, seed=args.seed, repeat=repeat, **kw)
        T = d.num_frames
        err = np.linalg.norm(d.x - d.x_clean, axis=-1)
        rows.append({"case": label, "frames": T, "cameras": d.rig.num_cameras,
                     "seconds": sec, "frames_per_s": T / sec,
                     "visible_%": 100 * d.visible.mean(),
                     "median_err_px": float(np.nanmedian(err))})
    return write_report(
        "synthetic", rows, args.out, title="Synthetic people: generation speed",
        columns=["case", "frames", "cameras", "seconds", "frames_per_s", "visible_%",
                 "median_err_px"],
        notes={"target": "10k frames × 4 cameras in < 1 s",
               "content": "4 subjects × 5 motions (walk, reach, squat, turn, random), FK, "
                          "projection, detector noise; median of 3 runs"},
        plot=("case", "seconds"))
