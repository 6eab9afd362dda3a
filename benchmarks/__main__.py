"""``python -m benchmarks all|two_view|triangulation|rig|labels|synthetic|session|detect|torch_ransac|scale|people|accuracy [--quick] [--device cpu|cuda]``.

Each benchmark is a module ``benchmarks/<name>.py`` with ``run(args) -> str`` (the markdown it
printed); results go to ``--out`` (default ``results/benchmarks``) as markdown, JSON and PNG.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

BENCHMARKS = ["two_view", "triangulation", "rig", "labels", "synthetic", "session", "detect",
              "torch_ransac", "scale", "people", "accuracy"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("name", choices=["all"] + BENCHMARKS)
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    p.add_argument("--device", default="cpu", help="cpu or cuda (GPU variants, where they exist)")
    p.add_argument("--out", default="results/benchmarks", help="folder for .md/.json/.png")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.out = Path(args.out)
    names = BENCHMARKS if args.name == "all" else [args.name]
    from ._report import set_run_context   # output names encode --quick and --device
    set_run_context(quick=args.quick, device=args.device)
    for name in names:
        try:
            mod = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"benchmarks.{name}":
                print(f"[{name}] not available in this build", file=sys.stderr)
                continue
            raise
        mod.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
