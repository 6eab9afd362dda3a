"""pose.synthetic_crowd: multi-person scenes with ground-truth identities, and the
permutation-invariant assignment accuracy."""
import numpy as np
import pytest

from pose.synthetic_crowd import assignment_accuracy, make_crowd_scene


def test_detections_are_the_true_people_projected():
    sc = make_crowd_scene(4, 4, 120, noise_px=1.0, outlier_rate=0.0, false_detection_rate=0.1,
                          seed=0)
    C, T, P, J, _ = sc.x.shape
    assert (C, T, J) == (4, 120, 17) and P >= 4
    assert sc.confidence.shape == (C, T, P, J) and sc.identity.shape == (C, T, P)
    assert sc.points3d.shape == (T, 4, J, 3) and sc.present.shape == (T, 4)
    filled = np.isfinite(sc.x).all(-1).any(-1)
    assert np.array_equal(filled, (sc.identity >= 0) | sc.false_detection)
    assert not (sc.false_detection & (sc.identity >= 0)).any()
    assert sc.false_detection.any()
    c, t, p = np.nonzero(sc.identity >= 0)
    n = sc.identity[c, t, p]
    X = sc.points3d[t, n]                                        # (M, J, 3)
    Xc = np.einsum("mij,mkj->mki", sc.rig.R[c], X) + sc.rig.t[c][:, None]
    uv = np.einsum("mij,mkj->mki", sc.rig.K[c], Xc)
    uv = uv[..., :2] / uv[..., 2:]
    err = np.linalg.norm(uv - sc.x[c, t, p], axis=-1)
    assert np.nanmedian(err) < 2.0                               # 1 px noise, no outliers
    assert np.all(sc.confidence[~np.isfinite(sc.x).all(-1)] == 0)
    # a person is in at most one slot per camera-frame
    for k in range(4):
        assert ((sc.identity == k).sum(-1) <= 1).all()


def test_people_enter_leave_and_slots_are_shuffled():
    sc = make_crowd_scene(6, 4, 200, seed=1)
    assert not sc.present.all()                                   # someone enters or leaves
    assert sc.present[:, :2].all()
    for n in range(6):                                            # absent people: no detection
        assert not (sc.identity[:, ~sc.present[:, n]] == n).any()
    # shuffled: person 0 is not always in the same slot
    slots = np.argmax(sc.identity == 0, axis=-1)[(sc.identity == 0).any(-1)]
    assert len(np.unique(slots)) > 1
    # detected people miss joints (occlusion by nearer people, image borders, missing joints)
    seen = sc.visible.any(-1)
    assert (sc.visible.sum(-1)[seen] < 17).mean() > 0.2


def test_deterministic_in_seed():
    a = make_crowd_scene(3, 3, 50, seed=7)
    b = make_crowd_scene(3, 3, 50, seed=7)
    c = make_crowd_scene(3, 3, 50, seed=8)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.identity, b.identity)
    assert not np.array_equal(np.nan_to_num(a.x), np.nan_to_num(c.x))


def test_id_swaps_without_shuffling():
    sc = make_crowd_scene(2, 2, 300, shuffle=False, id_swap_rate=0.05, false_detection_rate=0.0,
                          seed=2)
    # slot order follows detector IDs that swap now and then: slot 0 holds both people
    assert set(np.unique(sc.identity[:, :, 0])) >= {0, 1}
    calm = make_crowd_scene(2, 2, 300, shuffle=False, id_swap_rate=0.0,
                            false_detection_rate=0.0, seed=2)
    both = (calm.identity >= 0).all(-1)
    assert (calm.identity[both][:, 0] == 0).all()


def test_assignment_accuracy_is_permutation_invariant():
    truth = np.array([[[0, 1, -1], [1, 0, -1]], [[1, -1, 0], [0, 1, -1]]])
    fd = np.zeros(truth.shape, bool)
    fd[0, 0, 2] = True                                            # a false detection
    est = np.where(truth >= 0, 1 - truth, -1)                     # people renumbered
    assert assignment_accuracy(est, truth, fd) == 1.0
    est2 = est.copy()
    est2[0, 0, 2] = 0                                             # false detection taken
    est2[1, 0, 0] = -1                                            # a true one missed
    assert assignment_accuracy(est2, truth, fd) == pytest.approx(7 / 9)
    with pytest.raises(ValueError, match="^identity:"):
        assignment_accuracy(est[:1], truth)


def test_bad_arguments():
    with pytest.raises(ValueError, match="^num_people:"):
        make_crowd_scene(0)
    with pytest.raises(ValueError, match="^outlier_rate:"):
        make_crowd_scene(2, outlier_rate=1.5)
    with pytest.raises(ValueError, match="^num_cameras:"):
        make_crowd_scene(2, 1)
