"""BVH parsing and forward kinematics."""
import numpy as np
import pytest

from pose import bone_lengths
from pose.bvh import bvh_forward_kinematics, bvh_to_h36m, read_bvh

TINY = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Arm
  {
    OFFSET 1 0 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 -2 0
    }
  }
}
MOTION
Frames: 3
Frame Time: 0.5
0 0 0 0 0 0 0 0 0
10 20 30 90 0 0 0 0 0
0 0 0 0 0 0 0 90 0
"""


def test_tiny_bvh_by_hand(tmp_path):
    (tmp_path / "t.bvh").write_text(TINY)
    clip = read_bvh(tmp_path / "t.bvh")
    assert clip.names == ("Hips", "Arm", "Arm_End") and clip.parents == (-1, 0, 1)
    assert clip.fps == 2.0 and clip.motion.shape == (3, 9)
    P = bvh_forward_kinematics(clip)
    np.testing.assert_allclose(P[0], [[0, 0, 0], [1, 0, 0], [1, -2, 0]], atol=1e-12)
    # root turned 90° about Z: x → y, y → -x; then translated
    np.testing.assert_allclose(P[1], [[10, 20, 30], [10, 21, 30], [12, 21, 30]], atol=1e-12)
    # arm rotated 90° about its X: (0, -2, 0) → (0, 0, -2)
    np.testing.assert_allclose(P[2, 2], [1, 0, -2], atol=1e-12)


def test_malformed_bvh_names_file_and_field(tmp_path):
    bad = tmp_path / "bad.bvh"
    bad.write_text(TINY.replace("Frames: 3", "Frames: 4"))
    with pytest.raises(ValueError, match=r"bad\.bvh.*MOTION"):
        read_bvh(bad)
    bad.write_text("MOTION\nFrames: 0\n")
    with pytest.raises(ValueError, match=r"bad\.bvh.*HIERARCHY"):
        read_bvh(bad)
    bad.write_text(TINY.replace("OFFSET 1 0 0", "OFFSET 1 zero 0"))
    with pytest.raises(ValueError, match=r"bad\.bvh"):
        read_bvh(bad)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_cmu_clips_rigid_and_upright(shared_data, k):
    path = shared_data / "cmu_mocap_131" / f"scaled_131_0{k}.bvh"
    clip = read_bvh(path)
    assert clip.num_frames in (995, 1248) and abs(clip.fps - 120) < 0.1
    P = bvh_forward_kinematics(clip)
    par = np.array(clip.parents)
    seg = np.linalg.norm(P[:, 1:] - P[:, par[1:]], axis=-1)
    assert seg.std(0).max() < 1e-3  # every BVH bone
    X = bvh_to_h36m(clip)
    assert X.shape == (clip.num_frames, 17, 3)
    bl = bone_lengths(X)
    assert bl.std(0).max() < 1e-3  # std < 1 mm for every Human3.6M bone
    assert 0.35 < bl[:, 1].mean() < 0.45  # thigh, metres
    # z up: ankles near the floor, head above the pelvis above the knees
    assert X[:, [3, 6], 2].min() > -0.05 and X[:, [3, 6], 2].mean() < 0.2
    assert np.all(X[:, 10, 2] > X[:, 0, 2]) and np.all(X[:, 0, 2] > X[:, 2, 2])
    # person's left is +x when facing -y: left hip minus right hip, crossed with up, is forward
    lr = X[:, 4] - X[:, 1]
    fwd = np.cross(lr, [0, 0, 1])[:, :2]
    v = np.gradient(X[:, 0, :2], axis=0)
    sp = np.linalg.norm(v, axis=1)
    moving = sp > np.median(sp)
    cos = np.sum(fwd * v, 1)[moving] / np.linalg.norm(fwd, axis=1)[moving] / sp[moving]
    if k in (1, 2):  # "start, walk, stop": walks forward, not backward (left/right kept)
        assert np.median(cos) > 0.8
