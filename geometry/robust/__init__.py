"""Robust estimation: the generic batched RANSAC engine (``engine.py``, read it first).

The outer loop runs over *problems* (thousands of frame pairs of 17 joints) in a Numba ``prange``;
an estimator plugs in its minimal solver, non-minimal refit and residual (see
``geometry.epipolar.fundamental_ransac`` for the F estimator). Per-problem masks, adaptive
termination, local optimisation and deterministic per-problem seeds.

DESIGN: a new robust estimator (e.g. a homography or a P3P pose) gets its kernels next to its
model (in its room: ``epipolar/`` for two-view models) and calls :func:`engine.ransac_engine`;
a new sampler or scoring rule (PROSAC, MAGSAC) goes here.
"""
from .engine import collect_inliers, ransac_engine

__all__ = ["collect_inliers", "ransac_engine"]
