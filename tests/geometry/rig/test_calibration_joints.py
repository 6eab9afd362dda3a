"""reconstruct_rig(calibration_joints=...): the cameras come from the chosen joints, every joint
is triangulated with them; and the skeleton that names such joints (BlazePose's face)."""
import numpy as np
import pytest

import geometry as geo
import pose

from .test_rig import _pair_rotation_errors


def _scene_with_biased_joints():
    """A ring scene whose joints 0-4 carry a view-dependent error (different in every camera,
    constant over time, 15 px): like detector landmarks that move with the viewing angle."""
    sc = geo.make_multiview_scene(150, 17, noise=1.0, outlier_ratio=0.0, seed=4)
    x = sc.x.copy()
    rng = np.random.default_rng(0)
    x[:, :, :5] += rng.normal(0, 15.0, (x.shape[0], 1, 5, 2))
    return sc, x


def test_calibrating_without_biased_joints_gives_better_cameras_and_all_3d():
    sc, x = _scene_with_biased_joints()
    every = geo.reconstruct_rig(x, sc.rig.K, joint_bias=False, seed=0)
    clean = geo.reconstruct_rig(x, sc.rig.K, joint_bias=False, seed=0,
                                calibration_joints=np.arange(5, 17))
    e_every = np.median(_pair_rotation_errors(every.R, sc.rig.R))
    e_clean = np.median(_pair_rotation_errors(clean.R, sc.rig.R))
    assert e_clean < 0.5 * e_every, (e_every, e_clean)
    assert clean.summary["calibration_joints"] == 12
    assert clean.point_valid[:, :5].mean() > 0.95          # the left-out joints still get 3D
    assert clean.point_valid[:, 5:].mean() > 0.99


def test_all_joints_as_calibration_joints_is_the_default():
    sc = geo.make_multiview_scene(40, 6, noise=1.0, outlier_ratio=0.0, seed=5)
    a = geo.reconstruct_rig(sc.x, sc.rig.K, seed=0)
    b = geo.reconstruct_rig(sc.x, sc.rig.K, seed=0, calibration_joints=np.arange(6))
    np.testing.assert_array_equal(a.R, b.R)
    np.testing.assert_array_equal(a.X, b.X)


@pytest.mark.parametrize("bad", [[17], [], [[0, 1]], [0.5]])
def test_bad_calibration_joints_name_the_argument(bad):
    sc = geo.make_multiview_scene(10, 17, seed=1)
    with pytest.raises(ValueError, match="calibration_joints"):
        geo.reconstruct_rig(sc.x, sc.rig.K, calibration_joints=bad)


def test_blazepose_leaves_its_face_out_of_calibration():
    bp = pose.get_skeleton("blazepose_33")
    cal = bp.calibration_joints
    left_out = sorted(set(range(33)) - set(cal.tolist()))
    assert [bp.names[j] for j in left_out] == ["LEyeInner", "LEye", "LEyeOuter", "REyeInner",
                                               "REye", "REyeOuter", "LEar", "REar", "LMouth",
                                               "RMouth"]
    assert bp.index("Nose") in cal
    assert pose.get_skeleton("body_25b").calibration_joints is None
