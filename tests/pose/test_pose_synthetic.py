"""Synthetic people: motion plausibility, rigs and the detector-noise model."""
import numpy as np
import pytest

from pose import (H36M_17, MOTIONS, DetectorNoise, apply_detector_noise, bone_lengths,
                  make_motion, make_people, make_people_rig, make_subject, random_distortion)
from pose.motion import forward_kinematics


@pytest.mark.parametrize("motion", MOTIONS)
def test_motion_is_rigid_on_the_floor_and_human_sized(motion):
    X = make_motion(motion, 80, seed=3)
    assert X.shape == (80, 17, 3) and np.isfinite(X).all()
    assert bone_lengths(X).std(0).max() < 1e-9
    np.testing.assert_allclose(np.minimum(X[:, 3, 2], X[:, 6, 2]).min(), X[..., 2].min(), atol=0.08)
    assert 0.0 < X[..., 2].min() < 0.15 and 1.3 < X[:, 10, 2].max() < 2.1
    assert np.abs(X[..., :2]).max() < 3.0
    np.testing.assert_array_equal(X, make_motion(motion, 80, seed=3))


@pytest.mark.parametrize("motion", MOTIONS)
def test_motion_has_no_jumps(motion):
    """No joint moves more than 0.15 m between frames at 50 fps (7.5 m/s): a jump is no human
    motion, and a sampled step carries no sub-frame timing (12 s clips cross reach's arm
    switches, where the resting elbows used to flip by 70°: 0.24–0.32 m in one frame)."""
    for seed in range(6):
        X = make_motion(motion, 600, fps=50.0, seed=seed)
        assert np.linalg.norm(np.diff(X, axis=0), axis=-1).max() < 0.15


def test_walk_faces_where_it_goes():
    X = make_motion("walk", 150, seed=0)
    v = np.gradient(X[:, 0, :2], axis=0)
    facing = np.cross(X[:, 4] - X[:, 1], [0, 0, 1])[:, :2]  # left × up = forward
    cos = np.sum(v * facing, 1) / np.linalg.norm(v, axis=1) / np.linalg.norm(facing, axis=1)
    assert cos.min() > 0.95
    assert 0.8 < np.linalg.norm(v, axis=1).mean() * 50 < 1.6  # m/s


def test_rest_pose_fk_gives_offsets_and_subject_heights():
    off = make_subject(1.72, seed=0)
    X = forward_kinematics(off, np.zeros((1, 17, 3)), floor=False)
    np.testing.assert_allclose(X[0, 3] - X[0, 2], off[3])
    heights = [forward_kinematics(make_subject(seed=s), np.zeros((1, 17, 3)))[0, 10, 2]
               for s in range(10)]
    assert np.ptp(heights) > 0.1 and 1.35 < min(heights) and max(heights) < 2.0


def test_squat_bends_knees_forward():
    X = make_motion("squat", 120, seed=1)
    i = np.argmin(X[:, 0, 2])
    fwd = np.cross(X[i, 4] - X[i, 1], [0, 0, 1])
    fwd /= np.linalg.norm(fwd)
    assert X[i, 0, 2] < 0.8 and np.dot(X[i, 2] - X[i, 1], fwd) > 0.2


def test_make_people_shapes_truth_and_noise_rates():
    d = make_people(2, frames_per_clip=100, seed=4)
    C, T = 4, 2 * len(MOTIONS) * 100
    assert d.X.shape == (T, 17, 3) and d.x.shape == (C, T, 17, 2)
    assert d.confidence.shape == (C, T, 17)
    assert np.all(np.isnan(d.x[~d.visible])) and np.all(d.confidence[~d.visible] == 0)
    x_ref = np.stack([(d.X @ d.rig.R[c].T + d.rig.t[c]) @ d.rig.K[c].T for c in range(C)])
    np.testing.assert_allclose(d.x_clean, x_ref[..., :2] / x_ref[..., 2:], atol=1e-9)
    inl = d.visible & ~d.outlier & ~d.swapped
    r = (d.x - d.x_clean)[inl]
    assert abs(r.std() - 2.0) < 0.1
    assert abs(d.outlier.mean() - 0.02) < 0.006 and 0.95 < d.visible.mean() < 0.99
    assert np.all(np.linalg.norm((d.x - d.x_clean)[d.outlier & ~d.swapped], axis=-1) > 10)
    assert d.bone_lengths.shape == (2, 16) and not np.allclose(d.bone_lengths[0], d.bone_lengths[1])
    kp = d.keypoints
    assert kp.shape == (C, T, 17, 3) and np.all(kp[~d.visible] == 0)
    np.testing.assert_array_equal(d.x, make_people(2, frames_per_clip=100, seed=4).x)


def test_time_offsets_shift_detections_within_clips():
    noise = DetectorNoise(sigma_px=0, outlier_ratio=0, missing_ratio=0, swap_ratio=0,
                          max_time_offset=3)
    d = make_people(1, ("walk", "turn"), 60, noise=noise, seed=2)
    assert np.any(d.time_offset != 0)
    for c, o in enumerate(d.time_offset):
        for k in range(2):
            s = slice(60 * k + max(0, -o), 60 * (k + 1) - max(0, o))
            ref = d.x_clean[c, 60 * k + max(0, o):60 * (k + 1) - max(0, -o)]
            vis = d.visible[c, s]
            np.testing.assert_allclose(d.x[c, s][vis], ref[vis])


def test_swaps_exchange_left_and_right():
    xc = np.random.default_rng(0).uniform(100, 900, (2, 50, 17, 2))
    det = apply_detector_noise(xc, DetectorNoise(0, 0, (20, 150), 0, 0.5), image_size=(1000, 1000),
                               symmetry=H36M_17.symmetry, seed=1)
    sw = det.swapped
    assert 0.3 < sw[..., 1].mean() < 0.7 and not sw[..., 0].any()
    np.testing.assert_allclose(det.x[sw], xc[:, :, H36M_17.symmetry][sw])
    np.testing.assert_allclose(det.x[~sw], xc[~sw])


def test_rigs_and_distortion_stay_in_view():
    for kind, size in (("h36m", (1000, 1000)), ("random", (1000, 1000)),
                       ("portrait", (1088, 1920))):
        rig = make_people_rig(kind, seed=1)
        assert rig.image_size == size
        f = rig.K[:, 0, 0]
        assert np.all((1100 <= f) & (f <= 1700))
        d = make_people(1, ("walk", "random"), 60, rig=rig, dist=random_distortion(4, seed=1),
                        noise=DetectorNoise(missing_ratio=0.0), seed=1)
        assert d.visible.mean() > 0.9, kind
    with pytest.raises(ValueError, match="kind"):
        make_people_rig("fisheye")
    with pytest.raises(ValueError, match="motions"):
        make_people(1, ("dance",))
    with pytest.raises(ValueError, match="dist"):
        make_people(1, dist=np.zeros((3, 5)))


def test_distorted_projection_matches_opencv():
    import cv2
    rig = make_people_rig("portrait", seed=2)
    dist = random_distortion(4, seed=3)
    d = make_people(1, ("reach",), 20, rig=rig, dist=dist, seed=0)
    for c in range(4):
        rvec = cv2.Rodrigues(rig.R[c])[0]
        ref, _ = cv2.projectPoints(d.X.reshape(-1, 1, 3), rvec, rig.t[c], rig.K[c], dist[c])
        np.testing.assert_allclose(d.x_clean[c].reshape(-1, 2), ref.reshape(-1, 2), atol=1e-6)


def test_confidence_tracks_detection_quality():
    noise = DetectorNoise(outlier_ratio=0.1, swap_ratio=0.05)
    d = make_people(1, ("walk", "turn"), 100, noise=noise, seed=3)
    good = d.visible & ~d.outlier & ~d.swapped
    assert d.confidence[good].mean() > d.confidence[d.outlier].mean() + 0.3
    assert np.all((d.confidence[d.visible] > 0) & (d.confidence[d.visible] <= 1))
    with pytest.raises(ValueError, match="outlier_ratio"):
        DetectorNoise(outlier_ratio=1.5)
    with pytest.raises(ValueError, match="x_clean"):
        apply_detector_noise(np.zeros((4, 10, 17)), DetectorNoise(), image_size=(10, 10))


def test_film_cmu_motion_with_virtual_cameras(shared_data):
    from pose import film_motion
    from pose.bvh import bvh_to_h36m
    X = bvh_to_h36m(shared_data / "cmu_mocap_131" / "scaled_131_02.bvh")[::4]
    d = film_motion(X, make_people_rig("random", seed=0), fps=30.0, center=True, seed=1)
    assert d.X.shape == X.shape and d.x.shape == (4, len(X), 17, 2)
    assert d.visible.mean() > 0.9 and abs(d.X[:, 0, :2].mean(0)).max() < 1e-9
    assert d.bone_lengths.shape == (1, 16)
    with pytest.raises(ValueError, match="X"):
        film_motion(X[:, :16])
    with pytest.raises(ValueError, match="clip"):
        film_motion(X, clip=np.arange(len(X))[::-1])
