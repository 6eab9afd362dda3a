"""Compile the Numba kernels of the main paths ahead of use, in parallel processes.

``python -m geometry.common.warmup [--jobs N]`` (run by ``make`` right after installing) calls
each kernel group once on tiny data in its own process, so the on-disk Numba cache (``cache=True``,
in the package's ``__pycache__`` folders) is filled before a user's first call: Numba compiles
on one thread, so N processes compile N groups at once, and a first ``reconstruct_rig`` or
``epigeo demo`` then loads machine code instead of compiling for minutes.

Groups (about equal compile times): the relative-pose engine (F-RANSAC, E, cheirality: what
``reconstruct_rig`` and the per-frame recipe use); and the triangulation kernels (DLT, robust
multi-view, Hartley–Sturm, medians). Kernels off these paths (``estimate_fundamental``'s own
batch kernel, time offsets, …) still compile on first use.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import time

__all__ = ["warm_up", "GROUPS"]


def _epipolar() -> None:
    import geometry as geo
    sc = geo.make_two_view_scene(4, 17, noise=1.0, outlier_ratio=0.1, seed=0)
    geo.estimate_relative_pose(sc.x1, sc.x2, sc.K1, sc.K2)


def _triangulation() -> None:
    import numpy as np
    import geometry as geo
    sc = geo.make_multiview_scene(4, 17, noise=1.0, outlier_ratio=0.1, seed=0)
    P = geo.projection_matrix(sc.rig.K, sc.rig.R, sc.rig.t)
    x = sc.x.reshape(sc.x.shape[0], -1, 2)
    geo.triangulate_multiview(P, x)
    geo.triangulate_dlt(P, x)
    geo.triangulate_optimal(x[0], x[1], P[0], P[1])
    geo.vector_median(np.random.default_rng(0).normal(size=(3, 5, 3)))


GROUPS = {"epipolar": _epipolar, "triangulation": _triangulation}


def _run(name: str) -> tuple[str, float]:
    t0 = time.perf_counter()
    GROUPS[name]()
    return name, time.perf_counter() - t0


def warm_up(jobs: int = 2, *, quiet: bool = False) -> dict:
    """Compile every kernel group (in ``jobs`` spawned processes; 1 = in this process).
    Returns ``{group: seconds}``."""
    names = list(GROUPS)
    if jobs <= 1:
        out = dict(_run(n) for n in names)
    else:
        with mp.get_context("spawn").Pool(min(jobs, len(names))) as pool:
            out = dict(pool.map(_run, names))
    if not quiet:
        print("numba kernels compiled and cached: " +
              ", ".join(f"{k} {v:.0f} s" for k, v in out.items()), flush=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m geometry.common.warmup", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    args = p.parse_args(argv)
    warm_up(args.jobs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
