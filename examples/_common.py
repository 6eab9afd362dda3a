"""Shared command-line plumbing for the learning examples (argument parser, label fallback)."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def base_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small run, < 5 minutes on 2 CPU cores")
    p.add_argument("--report", type=Path, default=None, help="write a JSON summary here")
    p.add_argument("--out", type=Path, default=None, help="checkpoints go here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p


def get_labels(mode, x, K, confidence, image_size, seed, truth_cam):
    """Pseudo-labels of ``mode``; if :mod:`learn.pseudo_labels` is not importable, noisy ground
    truth, loudly marked as such in the returned ``source``."""
    from learn.data import noisy_labels
    from learn.label_source import Labels, pseudo_labels
    try:
        return pseudo_labels(x, K, confidence, mode=mode, image_size=image_size, seed=seed)
    except ImportError as e:
        warnings.warn(f"learn.pseudo_labels unavailable ({e}); using NOISY GROUND TRUTH as a "
                      "stand-in for the pseudo-labels")
        sig = {"rig": 0.01, "frame": 0.04}.get(mode, 0.02)
        lab, w = noisy_labels(truth_cam, sigma=sig, outlier_ratio=0.02, seed=seed)
        return Labels(X_cam=lab, weights=w, valid=np.ones(lab.shape[:2], bool),
                      source=f"FALLBACK noisy ground truth ({mode}); learn.pseudo_labels missing",
                      info={})
