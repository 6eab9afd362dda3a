"""Compile the Numba kernels of the main paths ahead of use, in parallel processes.

``python -m learn.warmup [--jobs N]`` (run by ``make`` right after installing) runs the main jobs
(the ``frame`` and ``rig``/``calibrated`` pseudo-label paths that ``epigeo`` and its demo use) once
on tiny data, each group in its own process, so the on-disk Numba cache (``cache=True``,
in the package's ``__pycache__`` folders) is filled before a user's first call: Numba compiles
on one thread, so N processes compile N groups at once, and a first ``reconstruct_rig`` or
``epigeo demo`` then loads machine code instead of compiling for minutes.

The calls are the real paths rather than each kernel alone: Numba compiles one specialisation
per argument layout, so only the same calls fill the cache entries a first run looks up. Kernels
off these paths (time offsets, windows, …) still compile on first use.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import time

__all__ = ["warm_up", "GROUPS"]


def _case():
    from .demo import make_synthetic_case
    people = make_synthetic_case(1, 6, seed=0)
    return people, people.rig


def _frames() -> None:
    """The per-frame recipe (``frame`` mode): F-RANSAC, E, cheirality, Hartley–Sturm, medians."""
    from .pseudo_labels import make_pseudo_labels
    people, rig = _case()
    make_pseudo_labels(people.x, rig.K, people.confidence, mode="frame")


def _rig() -> None:
    """Static rigs and calibrated labels: pooled relative pose, DLT, robust multi-view.

    ``calibrated`` runs first: its kernels (DLT, robust multi-view) are this group's own, while
    ``rig`` shares the F-RANSAC core (7-point, Sampson refinement, …) with ``frame``. In this
    order the ``frame`` process can have cached that core by the time ``rig`` needs it, which
    then loads it rather than compiling it a second time at once."""
    from .pseudo_labels import make_pseudo_labels
    people, rig = _case()
    make_pseudo_labels(people.x, rig.K, people.confidence, mode="calibrated",
                       cameras=(rig.R, rig.t))
    make_pseudo_labels(people.x, rig.K, people.confidence, mode="rig")


GROUPS = {"frame": _frames, "rig": _rig}


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
    p = argparse.ArgumentParser(prog="python -m learn.warmup", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    args = p.parse_args(argv)
    warm_up(args.jobs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
