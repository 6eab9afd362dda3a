"""Compile the Numba kernels of the main paths ahead of use, in parallel processes.

``python -m learn.warmup [--jobs N]`` (run by ``make`` right after installing) runs the main jobs
(the ``frame``, ``rig`` and ``calibrated`` pseudo-label paths that ``epigeo`` and its demo use)
once on tiny data, in two processes (:data:`SCHEDULE`), so the on-disk Numba cache
(``cache=True``, in the package's ``__pycache__`` folders) is filled before a user's first call:
Numba compiles on one thread, so two processes compile two things at once, and a first
``reconstruct_rig`` or ``epigeo demo`` then loads machine code instead of compiling for minutes.

The calls are the real paths rather than each kernel alone: Numba compiles one specialisation
per argument layout, so only the same calls fill the cache entries a first run looks up. Kernels
off these paths (time offsets, windows, …) still compile on first use.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from pathlib import Path

__all__ = ["warm_up", "GROUPS", "SCHEDULE"]


def _case():
    from .demo import make_synthetic_case
    people = make_synthetic_case(1, 6, seed=0)
    return people, people.rig


def _frame_tail() -> None:
    """The frame recipe after F (E, the four poses, cheirality, Hartley–Sturm) with the true F
    of each camera pair in place of the RANSAC estimate: the same kernels and argument types."""
    from types import SimpleNamespace
    import numpy as np
    import geometry as geo
    from .pseudo_labels import _check_inputs, _frame_pairs, _pair_from_fundamental, _pair_inputs
    people, rig = _case()
    x, _, mask, K = _check_inputs(people.x, rig.K, people.confidence, None, 0.2)
    pairs, x1, x2, K1, K2, m = _frame_pairs(x, K, mask)
    x1, x2, K1, K2 = _pair_inputs(x1, x2, K1, K2)
    F = np.stack([geo.fundamental_from_pose(rig.K[i], rig.K[j], *geo.relative_pose(
        rig.R[i], rig.t[i], rig.R[j], rig.t[j])) for i, j in pairs])
    F = np.ascontiguousarray(np.broadcast_to(F[:, None], x1.shape[:-2] + (3, 3)))
    _pair_from_fundamental(x1, x2, K1, K2, SimpleNamespace(F=F, inliers=m.copy(),
                                                           valid=np.ones(x1.shape[:-2], bool)))


def _frames() -> None:
    """The per-frame recipe (``frame`` mode): F-RANSAC, E, cheirality, Hartley–Sturm, medians."""
    from .pseudo_labels import make_pseudo_labels
    people, rig = _case()
    make_pseudo_labels(people.x, rig.K, people.confidence, mode="frame")


def _calibrated() -> None:
    """Known cameras (``calibrated``): DLT and robust multi-view triangulation."""
    from .pseudo_labels import make_pseudo_labels
    people, rig = _case()
    make_pseudo_labels(people.x, rig.K, people.confidence, mode="calibrated",
                       cameras=(rig.R, rig.t))


def _rig() -> None:
    """Static rigs (``rig``): pooled relative pose, registration, bundle adjustment."""
    from .pseudo_labels import make_pseudo_labels
    people, rig = _case()
    make_pseudo_labels(people.x, rig.K, people.confidence, mode="rig")


def _core_index():
    """Path of the on-disk cache index of the F-RANSAC core (``fundamental_problem``), or None
    where Numba's cache layout is not the one known here."""
    try:
        from geometry.epipolar.fundamental_ransac import fundamental_problem
        return Path(fundamental_problem._cache._cache_file._index_path)
    except Exception:  # noqa: BLE001 - a private Numba attribute: fall back to the event
        return None


GROUPS = {"frame": _frames, "calibrated": _calibrated,
          "frame_tail": _frame_tail, "rig": _rig}
# Two processes share the work so that nothing is compiled twice at once. The F-RANSAC core
# (``fundamental_problem``: 7-point, Sampson refinement, the RANSAC engine; ~40 % of all
# compile time) is needed by both ``rig`` and ``frame``: process 0 compiles it as part of
# ``rig`` (the longest chain: the core, then the relative-pose problem built on it), while
# process 1 compiles the known-camera kernels (``calibrated``: DLT, robust multi-view, which
# ``rig`` later loads) and the frame recipe's own kernels (E, cheirality, Hartley–Sturm), then
# waits until the core is in the on-disk cache (its index file appears, or process 0 is done)
# before ``frame`` loads it.
# Measured on a quiet 2-core machine (fresh cache): 79 s wall / 148 s CPU with one group per
# process (the core compiled in both at once) → 56–63 s wall / 115 s CPU with this schedule.
SCHEDULE = (("rig", "|"), ("calibrated", "frame_tail", "wait", "frame"))


def _wait_for_core(core_done, limit_s: float = 600.0) -> None:
    index = _core_index()
    t0 = time.perf_counter()
    while not core_done.is_set() and time.perf_counter() - t0 < limit_s:
        if index is not None and index.exists():
            time.sleep(0.2)           # the data file is written before its index
            return
        core_done.wait(0.2)


def _run_plan(plan, core_done, out) -> None:
    times = {}
    for step in plan:
        t0 = time.perf_counter()
        if step == "|":
            core_done.set()
        elif step == "wait":
            _wait_for_core(core_done)
        else:
            GROUPS[step]()
        times[step] = time.perf_counter() - t0
    out.put(times)


def warm_up(jobs: int = 2, *, quiet: bool = False) -> dict:
    """Compile the kernels of the main paths: ``jobs`` = 1 in this process, else two spawned
    processes (:data:`SCHEDULE`). Returns ``{step: seconds}``."""
    t0 = time.perf_counter()
    out = {}
    if jobs <= 1:
        for name in ("frame", "calibrated", "rig"):
            t = time.perf_counter()
            GROUPS[name]()
            out[name] = time.perf_counter() - t
    else:
        ctx = mp.get_context("spawn")
        core_done, q = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_run_plan, args=(plan, core_done, q))
                 for plan in SCHEDULE]
        for p in procs:
            p.start()
        while any(p.is_alive() for p in procs):
            for p in procs:
                p.join(0.2)
                if p.exitcode:            # a failed process: the other one must not wait
                    core_done.set()
        while not q.empty():
            out.update(q.get())
        failed = [p.exitcode for p in procs if p.exitcode]
        if failed:
            raise RuntimeError(f"warm-up process failed (exit code {failed[0]})")
        out.pop("|", None)
    out["total"] = time.perf_counter() - t0
    if not quiet:
        print("numba kernels compiled and cached in " + f"{out['total']:.0f} s (" +
              ", ".join(f"{k} {v:.0f} s" for k, v in out.items() if k != "total") + ")",
              flush=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m learn.warmup", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    args = p.parse_args(argv)
    warm_up(args.jobs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
