"""Skeleton definitions and joint maps."""
import numpy as np
import pytest

from pose import (BODY_25, BODY_25B, COCO_17, COMMON_12, H36M_17, MPII_16, SKELETONS, bone_lengths,
                  flip_left_right, get_skeleton, joint_map, map_joints)


@pytest.mark.parametrize("name", sorted(SKELETONS))
def test_skeleton_is_a_tree_with_consistent_pairs(name):
    sk = SKELETONS[name]
    assert len(sk.names) == len(set(sk.names)) == sk.num_joints
    assert sum(p < 0 for p in sk.parents) == 1
    assert len(sk.bones) == sk.num_joints - 1
    perm = sk.symmetry
    np.testing.assert_array_equal(perm[perm], np.arange(sk.num_joints))
    for a, b in sk.flip_pairs:
        assert sk.names[a][0] == "L" and sk.names[b][0] == "R"
        assert sk.names[a][1:] == sk.names[b][1:]
    # every joint reaches the root
    for j in range(sk.num_joints):
        seen = 0
        while sk.parents[j] >= 0 and seen <= sk.num_joints:
            j, seen = sk.parents[j], seen + 1
        assert seen <= sk.num_joints


def test_known_layouts():
    assert H36M_17.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
    assert H36M_17.num_joints == 17 and COCO_17.num_joints == 17 and MPII_16.num_joints == 16
    assert BODY_25.num_joints == 25 and BODY_25B.names[:17] == COCO_17.names
    assert BODY_25B.names[17:19] == ("UpperNeck", "HeadTop")
    assert get_skeleton("H36M_17") is H36M_17
    with pytest.raises(ValueError, match="skeleton"):
        get_skeleton("smpl")
    with pytest.raises(ValueError, match="Tail"):
        H36M_17.index("Tail")


def test_map_coco_to_h36m_by_name_and_midpoints(rng):
    x = rng.normal(size=(5, 17, 2))
    out = map_joints(x, COCO_17, H36M_17)
    np.testing.assert_allclose(out[:, H36M_17.index("LKnee")], x[:, COCO_17.index("LKnee")])
    np.testing.assert_allclose(out[:, 0], 0.5 * (x[:, 11] + x[:, 12]))
    np.testing.assert_allclose(joint_map(BODY_25B, COCO_17), np.eye(25)[:17])
    conf = np.ones((5, 17))
    conf[0, COCO_17.index("LHip")] = 0.0
    out, c = map_joints(x, COCO_17, H36M_17, confidence=conf)
    assert c[0, 0] == 0 and np.all(out[0, 0] == 0) and c[1, 0] == 1
    with pytest.raises(ValueError, match="cannot be made"):
        joint_map(H36M_17, COCO_17)
    with pytest.raises(ValueError, match="x"):
        map_joints(np.zeros((3, 16, 2)), COCO_17, H36M_17)


@pytest.mark.parametrize("name", sorted(set(SKELETONS) - {"common_12"}))
def test_every_format_maps_to_common_subset(name):
    W = joint_map(name, COMMON_12)
    assert W.shape == (12, SKELETONS[name].num_joints)
    assert np.all(W.sum(1) == 1) and np.all(W.max(1) == 1)


def test_h36m_to_common_roundtrip_through_body25b(rng):
    X = rng.normal(size=(4, 17, 3))
    a = map_joints(X, H36M_17, COMMON_12)
    assert a.shape == (4, 12, 3)
    np.testing.assert_allclose(a[:, COMMON_12.index("RWrist")], X[:, 16])


def test_flip_left_right_mirrors_and_preserves_bones(rng):
    from pose import make_motion
    X = make_motion("reach", 5, seed=2)
    F = flip_left_right(X, H36M_17)
    np.testing.assert_allclose(np.sort(bone_lengths(F), -1), np.sort(bone_lengths(X), -1))
    np.testing.assert_allclose(flip_left_right(F, H36M_17), X)
    u = flip_left_right(np.full((17, 2), 10.0), H36M_17, width=100)
    assert np.all(u[:, 0] == 89.0)


def test_mpii_file_order():
    from pose.skeletons import MPII_FILE_ORDER
    file_names = ["r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax",
                  "upper_neck", "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder",
                  "l_elbow", "l_wrist"]
    ours = [n.lower().replace("upperneck", "upper_neck").replace("headtop", "head_top")
            for n in MPII_16.names]
    ours = [("r_" + n[1:]) if n[0] == "r" and n not in ("upper_neck",) else
            ("l_" + n[1:]) if n[0] == "l" else n for n in ours]
    assert [ours[k] for k in MPII_FILE_ORDER] == file_names
