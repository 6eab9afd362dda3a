"""Batched F-RANSAC on CPU: :func:`geometry.torch.estimate_fundamental` beside the numpy + Numba
:func:`geometry.estimate_fundamental`, in one process, on the same problems.

Data: ``make_two_view_scene`` — 17-point two-view problems, 1 px noise, 10 % gross outliers.
Rows: torch float64 and float32 with one intra-op thread and with torch's default thread count,
then numpy (Numba threads as configured). Seconds are the median of three warm runs (wall clock);
``cpu_us_per_problem`` is process CPU time over the same runs (all threads), which is what a
loaded machine shares out. The torch rows run first: once Numba's parallel loops have run, their
idle worker threads keep spinning and slowed torch's CPU kernels ~10× in our measurements (set
``OMP_WAIT_POLICY=PASSIVE`` when mixing both in one process). Accuracy: rotation error of
``estimate_relative_pose`` against the truth, torch float64 vs numpy, on the same problems.
"""
from __future__ import annotations

import time

import numpy as np

from benchmarks._report import write_report


def _time(fn, repeat=3):
    """Median wall seconds and median process CPU seconds of ``repeat`` warm runs."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return out, float(np.median(walls)), float(np.median(cpus))


def run(args) -> str:
    import torch

    import geometry as geo
    import geometry.torch as gt

    n = 500 if args.quick else 4000
    sc = geo.make_two_view_scene(n, 17, noise=1.0, outlier_ratio=0.1, seed=args.seed)
    default_threads = torch.get_num_threads()
    rows = []

    def row(method, sec, cpu, res):
        valid = res.valid.cpu().numpy() if hasattr(res.valid, "cpu") else res.valid
        return {"method": method, "problems": n, "seconds": sec, "problems_per_s": n / sec,
                "cpu_us_per_problem": 1e6 * cpu / n, "valid_%": 100.0 * float(np.mean(valid))}

    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        for dt in (torch.float64, torch.float32):
            x1, x2 = torch.as_tensor(sc.x1, dtype=dt), torch.as_tensor(sc.x2, dtype=dt)
            gt.estimate_fundamental(x1[:64], x2[:64], seed=args.seed)           # warm-up
            res, sec, cpu = _time(lambda: gt.estimate_fundamental(x1, x2, seed=args.seed))
            rows.append(row(f"geometry.torch estimate_fundamental ({str(dt)[6:]}, "
                            f"{threads} thread{'s' if threads > 1 else ''})", sec, cpu, res))
    torch.set_num_threads(default_threads)
    geo.estimate_fundamental(sc.x1[:64], sc.x2[:64], seed=args.seed)          # compile
    res, sec, cpu = _time(lambda: geo.estimate_fundamental(sc.x1, sc.x2, seed=args.seed))
    import numba
    rows.append(row(f"geometry estimate_fundamental (numpy + Numba, {numba.get_num_threads()} "
                    "threads)", sec, cpu, res))
    base = rows[-1]
    for r in rows:
        r["x_slower_than_numpy"] = base["problems_per_s"] / r["problems_per_s"]
        r["cpu_x_numpy"] = r["cpu_us_per_problem"] / base["cpu_us_per_problem"]
    # accuracy (untimed): relative pose against the truth, same problems
    t64 = dict(dtype=torch.float64)
    rt = gt.estimate_relative_pose(*(torch.as_tensor(a, **t64) for a in
                                     (sc.x1, sc.x2, sc.K1, sc.K2)), seed=args.seed)
    rn = geo.estimate_relative_pose(sc.x1, sc.x2, sc.K1, sc.K2, seed=args.seed)
    vt, vn = rt.valid.numpy(), rn.valid
    both = vt & vn
    et = geo.rotation_error_deg(rt.R.numpy()[both], sc.R[both])
    en = geo.rotation_error_deg(rn.R[both], sc.R[both])
    notes = {
        "data": f"{n} problems × 17 points, 1 px noise, 10 % outliers (make_two_view_scene, "
                f"seed {args.seed})",
        "target": "torch on CPU within 5× of numpy (problems/s)",
        "rotation_error_deg": f"estimate_relative_pose on the {int(both.sum())} problems both "
                              f"solve: median torch {np.median(et):.3f}° vs numpy "
                              f"{np.median(en):.3f}°; 90th pct {np.percentile(et, 90):.3f}° vs "
                              f"{np.percentile(en, 90):.3f}°; valid torch "
                              f"{100 * vt.mean():.1f} % vs numpy {100 * vn.mean():.1f} %",
        "order": "torch rows first (Numba's spinning worker threads slow torch afterwards)",
    }
    return write_report("torch_ransac", rows, args.out,
                        title="F-RANSAC on CPU: geometry.torch vs numpy + Numba",
                        columns=["method", "problems", "seconds", "problems_per_s",
                                 "x_slower_than_numpy", "cpu_us_per_problem", "cpu_x_numpy",
                                 "valid_%"],
                        notes=notes, plot=("method", "problems_per_s"))
