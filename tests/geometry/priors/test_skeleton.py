"""The skeleton- and time-aware 3D step: beats the plain robust DLT on outliers, repairs
injected left/right swaps, equals the plain solution on noise-free data, rejects bad shapes."""
from __future__ import annotations

import numpy as np
import pytest

import geometry as geo
import pose


def _case(outliers=0.1, swaps=0.0, sigma=2.0, frames=30, seed=0):
    noise = pose.DetectorNoise(sigma_px=sigma, outlier_ratio=outliers, missing_ratio=0.0,
                               swap_ratio=swaps)
    return pose.make_people(1, ("walk", "reach"), frames, rig=pose.make_people_rig("h36m", 4),
                            noise=noise, seed=seed)


def _kw(p, **extra):
    kw = dict(bones=p.skeleton.bone_array, swap_pairs=np.array(p.skeleton.flip_pairs),
              segments=p.clip, confidence=p.confidence)
    kw.update(extra)
    return kw


PLAIN = dict(bone_weight=0.0, smooth_weight=0.0, swap_pairs=None, reject=False)


def _err(X, valid, truth):
    return np.linalg.norm(X - truth, axis=-1)[valid]


def test_beats_plain_robust_dlt_on_outliers():
    p = _case()
    rig = p.rig
    C, T, J = p.x.shape[:3]
    P = geo.projection_matrix(rig.K, rig.R, rig.t)
    dlt = geo.triangulate_multiview(P, np.moveaxis(p.x, 0, 1),
                                    weights=np.moveaxis(p.confidence, 0, 1), threshold=8.0)
    e_dlt = _err(dlt.X, dlt.valid, p.X)
    res = geo.refine_skeleton(p.x, rig.K, rig.R, rig.t, **_kw(p))
    e = _err(res.X, res.valid, p.X)
    assert res.valid.mean() > 0.99
    assert np.mean(e) < 0.8 * np.mean(e_dlt)
    assert np.percentile(e, 99) < 0.05                     # no gross failures left (m)
    # the views kept are mostly the true inliers
    assert (res.inliers & p.outlier).sum() < 0.1 * p.outlier.sum()
    assert res.bone_lengths.shape == (2, J - 1)             # one row per segment (clip)
    np.testing.assert_allclose(res.bone_lengths, p.bone_lengths[[0, 0]], atol=0.01)


def test_swap_repair_finds_injected_swaps():
    p = _case(outliers=0.0, swaps=0.08, seed=3)
    rig = p.rig
    res = geo.refine_skeleton(p.x, rig.K, rig.R, rig.t, **_kw(p))
    pairs = np.array(p.skeleton.flip_pairs)
    true = p.swapped[:, :, pairs[:, 0]]                                   # (C, T, S)
    # swaps that matter: the pair's two joints lie apart in that view
    gap = np.linalg.norm(p.x_clean[:, :, pairs[:, 0]] - p.x_clean[:, :, pairs[:, 1]], axis=-1)
    visible = true & (gap > 15.0)
    assert visible.sum() > 20
    found = res.swaps
    assert (found & ~true).sum() <= 0.05 * max(1, found.sum())           # precision
    assert (found & visible).sum() >= 0.9 * visible.sum()               # recall
    off = geo.refine_skeleton(p.x, rig.K, rig.R, rig.t, **_kw(p, swap_pairs=None))
    assert not off.swaps.size
    e_on = np.mean(_err(res.X, res.valid, p.X))
    e_off = np.mean(_err(off.X, off.valid, p.X))
    assert e_on < e_off


def test_noise_free_equals_plain_and_truth():
    p = _case(outliers=0.0, sigma=0.0, frames=20)
    rig = p.rig
    plain = geo.refine_skeleton(p.x, rig.K, rig.R, rig.t, **_kw(p, **PLAIN))
    assert plain.valid.all()
    assert np.abs(plain.X - p.X).max() < 1e-6
    for extra in ({}, dict(bone_weight=0.0), dict(smooth_weight=0.0), dict(reject=False),
                  dict(swap_pairs=None), dict(velocity_weight=1.0)):
        res = geo.refine_skeleton(p.x, rig.K, rig.R, rig.t, **_kw(p, **extra))
        assert res.valid.all()
        assert np.abs(res.X - plain.X).max() < 1e-6, extra
        assert not res.swaps.any()


def test_each_prior_switches_off_and_changes_noisy_result():
    p = _case(frames=20, seed=1)
    rig = p.rig
    full = geo.refine_skeleton(p.x, rig.K, rig.R, rig.t, **_kw(p))
    for extra in (dict(bone_weight=0.0), dict(smooth_weight=0.0), dict(reject=False)):
        res = geo.refine_skeleton(p.x, rig.K, rig.R, rig.t, **_kw(p, **extra))
        both = full.valid & res.valid
        assert np.abs(res.X - full.X)[both].max() > 1e-4, extra


def test_given_start_and_noise_estimates():
    p = _case(outliers=0.0, frames=40, seed=2)
    rig = p.rig
    x = p.x.copy()
    x[1, :, 3, 0] += 6.0                     # camera 1's joint 3 is biased by +6 px in u
    x[2] += np.random.default_rng(0).normal(0.0, 4.0, x[2].shape)   # camera 2 is noisier
    res = geo.refine_skeleton(x, rig.K, rig.R, rig.t, p.X, bones=p.skeleton.bone_array,
                              segments=p.clip, smooth_weight=0.0, bone_weight=0.0)
    assert res.valid.mean() > 0.99
    nz = geo.observation_noise(x, p.X, rig.K, rig.R, rig.t)
    assert nz.bias.shape == (4, 17, 2) and nz.noise.shape == (4, 17)
    assert abs(nz.bias[1, 3, 0] - 6.0) < 1.0
    assert np.abs(np.delete(nz.bias[1, :, 0], 3)).max() < 1.5
    assert np.median(nz.noise[2]) > 1.6 * np.median(nz.noise[0])
    assert np.median(nz.weights[2]) < np.median(nz.weights[0])


@pytest.mark.parametrize("arg,kwargs,pattern", [
    ("x", dict(x=np.zeros((4, 5, 17))), "x: expected shape"),
    ("K", dict(K=np.zeros((3, 3, 3))), "K: expected shape"),
    ("t", dict(t=np.zeros((4, 2))), "t"),
    ("X0", dict(X0=np.zeros((5, 16, 3))), "X0: expected shape"),
    ("bones", dict(bones=np.array([[0, 17]])), "bones"),
    ("bones", dict(bones=np.zeros((3, 3), int)), "bones"),
    ("swap_pairs", dict(swap_pairs=np.array([1, 4])), "swap_pairs"),
    ("segments", dict(segments=np.zeros(4, int)), "segments"),
    ("confidence", dict(confidence=np.zeros((4, 5, 16))), "confidence"),
    ("smooth_weight", dict(smooth_weight=-1.0), "smooth_weight"),
])
def test_bad_input_names_the_argument(arg, kwargs, pattern):
    rig = pose.make_people_rig("h36m", 4)
    args = dict(x=np.zeros((4, 5, 17, 2)), K=rig.K, R=rig.R, t=rig.t, X0=None,
                bones=np.array([[0, 1]]))
    args.update(kwargs)
    with pytest.raises(ValueError, match=pattern):
        geo.refine_skeleton(args.pop("x"), args.pop("K"), args.pop("R"), args.pop("t"),
                            args.pop("X0"), **args)


def test_observation_noise_bad_input_names_the_argument():
    rig = pose.make_people_rig("h36m", 4)
    x = np.zeros((4, 5, 17, 2))
    with pytest.raises(ValueError, match="X: expected shape"):
        geo.observation_noise(x, np.zeros((5, 16, 3)), rig.K, rig.R, rig.t)
    with pytest.raises(ValueError, match="mask"):
        geo.observation_noise(x, np.zeros((5, 17, 3)), rig.K, rig.R, rig.t,
                              mask=np.ones((4, 5, 16), bool))
    with pytest.raises(ValueError, match="R"):
        geo.observation_noise(x, np.zeros((5, 17, 3)), rig.K, rig.R[:3], rig.t)
