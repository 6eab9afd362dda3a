"""geometry.estimate_time_offsets / apply_time_offsets: synchronising a static rig."""
import numpy as np
import pytest

import geometry as geo
import pose

FINE = 10  # the motion is generated 10× finer than the camera frame rate


@pytest.fixture(scope="module")
def walking():
    """One subject walking at 500 fps (50 fps × 10) on the Human3.6M-like ring, 2 px noise and
    10 % gross outliers (20–150 px)."""
    noise = pose.DetectorNoise(sigma_px=2.0, outlier_ratio=0.1, missing_ratio=0.0, swap_ratio=0.0)
    return pose.make_people(1, ("walk",), 340 * FINE, fps=50.0 * FINE, noise=noise, seed=1)


def _cameras_with_delays(people, delays, T=300):
    """Camera ``c``'s frame ``t`` shows the instant ``t + delays[c]`` (frames at 50 fps)."""
    start = 20 * FINE
    return np.stack([people.x[c, (start + np.round((np.arange(T) + d) * FINE)).astype(int)]
                     for c, d in enumerate(delays)])


@pytest.mark.parametrize("delays", [(0, 3, -5, 1), (0, 5, -4, -1), (0, 0, 2, -3)])
def test_whole_frame_offsets_recovered_exactly(walking, delays):
    x = _cameras_with_delays(walking, delays)
    r = geo.estimate_time_offsets(x, max_offset=6)
    assert r.valid.all()
    np.testing.assert_array_equal(r.integer, -np.array(delays))
    assert np.all(np.abs(r.offsets + np.array(delays)) < 0.2)


def test_subframe_offsets_within_a_fifth_of_a_frame(walking):
    delays = np.array([0.0, 2.4, -3.7, 0.5])
    x = _cameras_with_delays(walking, delays)
    r = geo.estimate_time_offsets(x, max_offset=6)
    assert r.valid.all()
    assert np.all(np.abs(r.offsets + delays) < 0.2), r.offsets
    # the cost is lowest at the chosen whole-frame shift
    best = r.shifts[np.argmin(r.cost[1:], axis=1)]
    np.testing.assert_array_equal(best, r.integer[1:])


def test_apply_time_offsets_resynchronises(walking):
    delays = np.array([0.0, 2.0, -3.0, 1.0])
    x = _cameras_with_delays(walking, delays)
    synced = geo.apply_time_offsets(x, -delays)
    ref = _cameras_with_delays(walking, np.zeros(4))
    ok = np.isfinite(synced).all(-1)
    assert ok.mean() > 0.95
    np.testing.assert_allclose(synced[ok], ref[ok])
    # fractional: linear interpolation halfway between frames
    half = geo.apply_time_offsets(x[:1], [0.5])
    np.testing.assert_allclose(half[0, 0], 0.5 * (x[0, 0] + x[0, 1]))
    assert np.isnan(half[0, -1]).all()


def test_offset_a_hair_below_a_whole_frame_is_that_frame():
    """An offset like −3 − 4e-16 (from a 0.05-frame grid) samples frame t − 3, not a blend
    with the frame before it (which loses the first frames to NaN)."""
    x = np.random.default_rng(0).normal(size=(1, 12, 3, 2))
    for d in (-3.0, 2.0, 0.0):
        below = geo.apply_time_offsets(x, [np.nextafter(d, -np.inf)])
        np.testing.assert_array_equal(below, geo.apply_time_offsets(x, [d]))
    assert np.isfinite(geo.apply_time_offsets(x, [np.nextafter(-3.0, -np.inf)])[0, 3:]).all()


def test_camera_without_shared_joints_is_invalid():
    x = np.random.default_rng(0).uniform(0, 1000, (3, 40, 17, 2))
    x[2] = np.nan
    r = geo.estimate_time_offsets(x, max_offset=3)
    assert r.valid[0] and not r.valid[2] and r.offsets[2] == 0.0


@pytest.mark.parametrize("kwargs, name", [
    (dict(x=np.zeros((3, 10, 2))), "x"),
    (dict(max_offset=50), "max_offset"),
    (dict(max_offset=-1), "max_offset"),
    (dict(reference=5), "reference"),
    (dict(threshold=0.0), "threshold"),
    (dict(mask=np.ones((3, 10), bool)), "mask"),
])
def test_bad_arguments(kwargs, name):
    args = dict(x=np.zeros((3, 40, 17, 2)))
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        geo.estimate_time_offsets(args.pop("x"), **args)
    with pytest.raises(ValueError, match="offsets"):
        geo.apply_time_offsets(np.zeros((3, 40, 17, 2)), [0.0, 1.0])
