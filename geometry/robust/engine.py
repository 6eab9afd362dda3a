"""The generic RANSAC engine (one problem), compiled with Numba.

Estimator protocol — plain ``@njit`` functions passed as arguments (Numba specialises the engine
for each set, so the calls inline):

- ``minimal_fit(q, sample, models, ws, S) -> int``: models from ``q[sample]`` into the rows of
  ``models (max_models, D)``; returns how many;
- ``nonminimal_fit(q, idx, m, model, ws, S) -> bool``: least-squares refit on ``q[idx[:m]]``,
  warm-started from and written to ``model (D,)``;
- ``refine(q, idx, m, model, ws, S) -> bool``: iterative minimisation of the residual on the same
  subset (e.g. Sampson-error Levenberg–Marquardt);
- ``residual_sq(model, q, i) -> float``: squared residual of point ``i``, in the units of ``thr2``.

Scoring is MSAC (sum of residuals truncated at ``thr2``; lower is better) with an exact bail-out
as soon as a partial sum exceeds the best score. Local optimisation runs whenever a sample
gives a new best model on a problem of at least ``lo_min_points`` points — the non-minimal
refit on its inliers only (the refinement there cost ~10 % of the run for no measured accuracy
gain) — and (``final_lo``) once at the end.
Iterations stop adaptively at ``log(1 − confidence) / log(1 − w^sample_size)`` with ``w`` the
best inlier ratio. Sampling uses the caller's splitmix64 ``state``, so results depend only on the
seed the caller derives for the problem.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..common.nb_linalg import random_below


@njit(cache=True)
def msac_score(model, q, n, thr2, residual_sq, bound):
    """``(score, inliers, complete)``; stops early (``complete=False``) once ``score > bound``."""
    s = 0.0
    c = 0
    for i in range(n):
        r = residual_sq(model, q, i)
        if r < thr2:
            s += r
            c += 1
        else:
            s += thr2
        if s > bound:
            return s, c, False
    return s, c, True


@njit(cache=True)
def collect_inliers(model, q, n, thr2, residual_sq, idx):
    """Indices of points with ``residual_sq < thr2`` into ``idx``; returns their count."""
    m = 0
    for i in range(n):
        if residual_sq(model, q, i) < thr2:
            idx[m] = i
            m += 1
    return m


@njit(cache=True)
def _local_opt(q, n, thr2, lo_thr2, nonmin_size, nonminimal_fit, refine, residual_sq, best,
               best_score, best_cnt, cand, idx, ws, S, rounds, do_refine):
    """Up to ``rounds`` of: non-minimal refit on the inliers of ``best`` (within ``lo_thr2``),
    then, if ``do_refine``, ``refine`` on them; a candidate replaces ``best`` only when its MSAC
    score is lower. Returns the new ``(best_score, best_cnt)``."""
    D = best.shape[0]
    for _ in range(rounds):
        improved = False
        m = collect_inliers(best, q, n, lo_thr2, residual_sq, idx)
        if m < nonmin_size:
            break
        for a in range(D):
            cand[a] = best[a]
        if nonminimal_fit(q, idx, m, cand, ws, S):
            s, c, done = msac_score(cand, q, n, thr2, residual_sq, best_score)
            if done and s < best_score:
                best_score = s
                best_cnt = c
                for a in range(D):
                    best[a] = cand[a]
                improved = True
                m = collect_inliers(best, q, n, lo_thr2, residual_sq, idx)
        if m < nonmin_size or not do_refine:
            break
        for a in range(D):
            cand[a] = best[a]
        if refine(q, idx, m, cand, ws, S):
            s, c, done = msac_score(cand, q, n, thr2, residual_sq, best_score)
            if done and s < best_score:
                best_score = s
                best_cnt = c
                for a in range(D):
                    best[a] = cand[a]
                improved = True
        if not improved:
            break
    return best_score, best_cnt


@njit(cache=True)
def ransac_engine(q, n, thr2, lo_thr2, confidence, max_iterations, state, sample_size, nonmin_size,
                  minimal_fit, nonminimal_fit, refine, residual_sq,
                  best, models, cand, sample, idx, ws, S, final_lo=2, lo_min_points=0):
    """Run RANSAC on the ``n`` rows of ``q``; the best model goes to ``best (D,)``.

    Buffers: ``models (max_models, D)``, ``cand (D,)``, ``sample (sample_size,)`` int,
    ``idx (n,)`` int, ``ws``/``S`` estimator scratch. ``final_lo``: the local optimisation of the
    final model — 2 refit and refinement, 1 refit only, 0 none (for callers that refine the
    result themselves). ``lo_min_points``: the in-loop local optimisation runs only on problems
    of at least this many points (on a few dozen points a minimal model's inlier count is
    already close to the refit's, so the refit costs more iterations' worth than it saves).
    Returns ``(score, num_inliers,
    iterations)``; ``num_inliers = 0`` when no model was found.
    """
    D = best.shape[0]
    best_score = np.inf
    best_cnt = np.int64(0)  # not Literal[int](0), which compiles a spare variant
    if n < sample_size:
        return best_score, 0, 0
    k_max = max_iterations
    log_fail = np.log(1.0 - confidence)
    it = 0
    while it < k_max:
        it += 1
        for a in range(sample_size):
            while True:
                j = random_below(state, n)
                dup = False
                for b in range(a):
                    if sample[b] == j:
                        dup = True
                        break
                if not dup:
                    break
            sample[a] = j
        nm = minimal_fit(q, sample, models, ws, S)
        improved = False
        for k in range(nm):
            s, c, done = msac_score(models[k], q, n, thr2, residual_sq, best_score)
            if done and s < best_score:
                best_score = s
                best_cnt = c
                for a in range(D):
                    best[a] = models[k, a]
                improved = True
        if improved and n >= lo_min_points:
            best_score, best_cnt = _local_opt(q, n, thr2, lo_thr2, nonmin_size, nonminimal_fit,
                                              refine,
                                              residual_sq, best, best_score, best_cnt, cand, idx,
                                              ws, S, 1, False)
        if improved:
            w = best_cnt / n
            p = w ** sample_size
            if p >= 1.0:
                k_max = 0
            elif p > 0.0:
                need = log_fail / np.log(1.0 - p)
                if need < k_max:
                    k_max = int(np.ceil(need))
    if best_cnt > 0 and final_lo > 0:
        best_score, best_cnt = _local_opt(q, n, thr2, lo_thr2, nonmin_size, nonminimal_fit, refine,
                                          residual_sq, best, best_score, best_cnt, cand, idx,
                                          ws, S, 1, final_lo > 1)
    return best_score, best_cnt, it
