"""Value makers of the ``geometry`` fuzz suite (:mod:`tests.geometry.test_fuzz`): clean
examples from small synthetic scenes, and their corruptions (NaN, ±inf, huge and tiny values,
duplicates, empty and wrong shapes, lists, ints, wrong types)."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import geometry as geo

SPECIAL = np.array([np.nan, np.inf, -np.inf, 1e160, -1e160, 1e300, -1e300, 1e-300, 0.0, 1e12])
_TWO = geo.make_two_view_scene(4, 17, noise=1.0, outlier_ratio=0.2, seed=0)
_MV = geo.make_multiview_scene(8, 5, noise=1.0, outlier_ratio=0.1, seed=0)
_RING = geo.make_ring_rig(3)


def _rng(draw):
    return np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))


def corrupt(draw, a, *, clean_weight=3):
    """``a`` (a clean example) or a corrupted variant of it."""
    a = np.array(a, dtype=np.float64)
    modes = ["clean"] * clean_weight + ["special", "special", "huge", "one_huge", "dup", "const",
                                         "empty", "shape", "list", "int", "badtype"]
    mode = draw(st.sampled_from(modes))
    rng = _rng(draw)
    if mode == "clean":
        return a
    if mode == "special" and a.size:
        k = int(rng.integers(1, max(2, a.size // 3 + 1)))
        a.flat[rng.choice(a.size, k)] = rng.choice(SPECIAL, k)
        return a
    if mode == "huge":
        return a * 10.0 ** rng.choice([150.0, 160.0, 300.0, -300.0])
    if mode == "one_huge" and a.size:
        a.flat[rng.integers(a.size)] = rng.choice([1e160, -1e160, 1e300, 1e200])
        return a
    if mode == "dup" and a.ndim >= 2 and a.shape[-2] > 0:
        a[..., :, :] = a[..., :1, :]
        return a
    if mode == "const":
        return np.full_like(a, rng.choice([0.0, 1.0, 1e8]))
    if mode == "empty" and a.ndim >= 1:
        ax = int(rng.integers(a.ndim))
        return np.take(a, np.arange(0), axis=ax)
    if mode == "shape":
        shape = tuple(int(s) for s in rng.integers(0, 4, int(rng.integers(0, 5))))
        return rng.normal(size=shape) * 100.0
    if mode == "list":
        return a.tolist()
    if mode == "int":
        return np.nan_to_num(a, posinf=0, neginf=0).astype(np.int64) if a.size else a.astype(int)
    if mode == "badtype":
        return draw(st.sampled_from([None, "abc", [[1, 2], [3]], np.array(["x"] * 3), 1 + 2j,
                                     {"a": 1}, object()]))
    return a


def scalar(draw, good, *, extra=()):
    """A good value most of the time, otherwise something odd."""
    odd = [0, -1, 0.5, np.nan, np.inf, -np.inf, 1e300, True, None, "x", 10 ** 30, *extra]
    return draw(st.one_of(st.just(good), st.just(good), st.just(good), st.sampled_from(odd)))


def batch(draw):
    return draw(st.sampled_from([(), (1,), (3,), (2, 2), (0,)]))


def npts(draw, lo=0):
    return draw(st.sampled_from([n for n in (0, 1, 2, 5, 7, 8, 9, 17) if n >= lo]))


def points(draw, b, n, d=2, scale=500.0):
    """Points ``b + (n, d)``: from the synthetic scene when they fit, else random."""
    rng = _rng(draw)
    if d == 2 and n <= 17 and draw(st.booleans()):
        idx = rng.integers(0, 4, size=b) if b else 0
        x = _TWO.x1[idx][..., :n, :] if draw(st.booleans()) else _TWO.x2[idx][..., :n, :]
        return corrupt(draw, x)
    return corrupt(draw, rng.normal(size=b + (n, d)) * scale + (scale if d == 2 else 0.0))


def two_view(draw):
    """``x1, x2`` of equal shapes from one two-view scene (then corrupted independently)."""
    b, n = batch(draw), npts(draw)
    rng = _rng(draw)
    idx = rng.integers(0, 4, size=b) if b else 0
    return b, n, corrupt(draw, _TWO.x1[idx][..., :n, :]), corrupt(draw, _TWO.x2[idx][..., :n, :])


def rot(draw, b):
    rng = _rng(draw)
    return corrupt(draw, geo.rodrigues_to_matrix(rng.normal(size=b + (3,))))


def vec(draw, b, d=3, scale=1.0):
    return corrupt(draw, _rng(draw).normal(size=b + (d,)) * scale)


def intr(draw, b):
    rng = _rng(draw)
    K = np.zeros(b + (3, 3))
    K[..., 0, 0] = K[..., 1, 1] = rng.uniform(300, 2000, b)
    K[..., :2, 2] = 500.0
    K[..., 2, 2] = 1.0
    return corrupt(draw, K)


def mat(draw, b, r=3, c=3, clean=None):
    return corrupt(draw, _rng(draw).normal(size=b + (r, c)) if clean is None else clean)


def mask(draw, shape):
    m = draw(st.sampled_from(["none", "none", "rand", "all_false", "wrong", "float"]))
    rng = _rng(draw)
    if m == "none":
        return None
    if m == "rand":
        return rng.random(shape) < 0.7
    if m == "all_false":
        return np.zeros(shape, bool)
    if m == "wrong":
        return rng.random(tuple(int(s) + 1 for s in shape)) < 0.5
    return rng.random(shape)


def weights(draw, shape):
    if draw(st.booleans()):
        return None
    return corrupt(draw, _rng(draw).uniform(0, 2, shape))


def views(draw):
    """``x (C, T, J, 2)`` from the multi-view scene (subset, then corrupted), its K and size."""
    rng = _rng(draw)
    C = draw(st.sampled_from([1, 2, 3, 4]))
    T = draw(st.sampled_from([1, 2, 5, 8]))
    J = draw(st.sampled_from([1, 3, 5]))
    cams = rng.choice(4, C, replace=False)
    x = _MV.x[cams][:, :T, :J]
    return corrupt(draw, x, clean_weight=4), _MV.rig.K[cams], C, T, J


