"""Shared command-line plumbing for the learning examples (argument parser, label source)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def base_parser(description: str) -> argparse.ArgumentParser:
    """``--quick``, ``--report PATH``, ``--out DIR`` (checkpoints), ``--seed``, ``--device``
    (auto = CUDA when present), ``--threads``, ``--no-progress``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small run, < 5 minutes on 2 CPU cores")
    p.add_argument("--report", type=Path, default=None, help="write a JSON summary here")
    p.add_argument("--out", type=Path, default=Path("results/checkpoints"),
                   help="checkpoints go here (default results/checkpoints, git-ignored)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p


def get_labels(mode, x, K, confidence, image_size, seed):
    """Pseudo-labels of ``mode`` from the 2D ``x (C, T, J, 2)`` through the geometry
    (:func:`learn.label_source.pseudo_labels`): no 3D labels, no extrinsics."""
    from learn.label_source import pseudo_labels
    return pseudo_labels(x, K, confidence, mode=mode, image_size=image_size, seed=seed)
