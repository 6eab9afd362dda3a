"""Readers that keep every detected person: OpenPose JSON, COCO JSON, the project npz."""
import json

import numpy as np
import pytest

from pose.io_coco import coco_frames, read_coco_keypoints, write_coco_keypoints
from pose.io_npz import ProjectData, load_project_npz, save_project_npz
from pose.io_openpose import (people_pixels, read_openpose_cameras, read_openpose_folder,
                              write_openpose_json)

MULTI = ("pose2sim_demo/raw/Pose2Sim/S00_Demo_BatchSession/S00_P01_MultiParticipants/"
         "S00_P01_T02_Participants1-2/pose")


def _person(rng, J=25, lo=0, hi=500):
    p = np.concatenate([rng.uniform(lo, hi, (J, 2)), rng.uniform(0.2, 1, (J, 1))], -1)
    p[1] = 0                                          # a joint OpenPose did not find
    return p


def test_openpose_all_people_empty_frames_and_unknown_joint_count(tmp_path, rng):
    a, b, c = _person(rng), _person(rng), _person(rng)
    cam1, cam2 = tmp_path / "cam01_json", tmp_path / "cam02_json"
    cam1.mkdir(), cam2.mkdir()
    write_openpose_json(cam1 / "f0.json", np.stack([a, b]))
    write_openpose_json(cam1 / "f1.json", np.zeros((0, 25, 3)))        # nobody
    (cam1 / "f2.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": []}]}))
    write_openpose_json(cam2 / "f0.json", c)
    write_openpose_json(cam2 / "f1.json", np.stack([c, a, b]))         # 3 people
    for nj in (25, None):                                               # None crashed before
        kp, names = read_openpose_cameras(tmp_path, num_joints=nj, all_people=True)
        assert names == ["cam01", "cam02"] and kp.shape == (2, 3, 3, 25, 3)
        np.testing.assert_allclose(kp[0, 0, :2], np.stack([a, b]), atol=1e-6)
        assert np.isnan(kp[0, 0, 2]).all() and np.isnan(kp[0, 1:]).all()
        np.testing.assert_allclose(kp[1, 1], np.stack([c, a, b]), atol=1e-6)
        assert np.isnan(kp[1, 2]).all()                                 # past cam02's end
        assert (kp[0, 0, 0, 1] == 0).all()                              # joint not found: 0
    x, conf = people_pixels(kp)
    assert x.shape == (2, 3, 3, 25, 2) and conf.shape == (2, 3, 3, 25)
    assert np.isnan(x[0, 0, 0, 1]).all() and conf[0, 0, 0, 1] == 0     # (0, 0) → NaN
    assert np.isnan(x[0, 1]).all() and (conf[0, 1] == 0).all()          # empty slot → NaN, 0
    np.testing.assert_allclose(x[1, 1, 2, 2:], b[2:, :2], atol=1e-6)
    # a folder whose every frame is empty, joint count from the other camera
    cam3 = tmp_path / "cam03_json"
    cam3.mkdir()
    write_openpose_json(cam3 / "f0.json", np.zeros((0, 25, 3)))
    kp, _ = read_openpose_cameras(tmp_path, num_joints=None, all_people=True)
    assert kp.shape == (3, 3, 3, 25, 3) and np.isnan(kp[2]).all()
    assert read_openpose_folder(cam3, num_joints=None, all_people=True).shape == (1, 1, 0, 3)
    # the single-person default is unchanged: largest person, zeros where nobody
    one, _ = read_openpose_cameras(tmp_path, num_joints=None)
    assert one.shape == (3, 3, 25, 3) and not np.isnan(one).any() and (one[2] == 0).all()
    cam4 = tmp_path / "cam04_json"
    cam4.mkdir()
    write_openpose_json(cam4 / "f0.json", _person(rng, J=17))
    with pytest.raises(ValueError, match="different joint counts.*cam04_json"):
        read_openpose_cameras(tmp_path, num_joints=None, all_people=True)


def test_coco_all_persons_by_score(tmp_path, rng):
    people = np.stack([_person(rng, 17) for _ in range(4)])
    ids = np.array([7, 3, 7, 7])
    write_coco_keypoints(tmp_path / "r.json", people, ids, score=[0.5, 0.9, 0.8, 0.1],
                         results=True)
    c = read_coco_keypoints(tmp_path / "r.json")
    frames, kp = coco_frames(c, all_people=True)
    np.testing.assert_array_equal(frames, [3, 7])
    assert kp.shape == (2, 3, 17, 3)
    np.testing.assert_allclose(kp[1], people[[2, 0, 3]], atol=1e-3)    # by descending score
    np.testing.assert_allclose(kp[0, 0], people[1], atol=1e-3)
    assert np.isnan(kp[0, 1:]).all()
    frames, best = coco_frames(c)                                       # the single-person view
    np.testing.assert_allclose(best, people[[1, 2]], atol=1e-3)
    frames, kp = coco_frames(c, all_people=True, image_ids=[1, 3])     # an image with nobody
    assert np.isnan(kp[0]).all() and kp.shape == (2, 1, 17, 3)


def test_npz_keeps_people(tmp_path, rng):
    C, T, P, J = 2, 3, 2, 5
    kp = rng.uniform(0, 100, (C, T, P, J, 3))
    kp[0, 1, 1] = np.nan
    d = ProjectData(K=np.tile(np.eye(3), (C, 1, 1)), dist=np.zeros((C, 5)),
                    R=np.tile(np.eye(3), (C, 1, 1)), t=np.zeros((C, 3)),
                    image_size=np.full((C, 2), 640.0), keypoints=kp,
                    X=rng.normal(size=(T, 3, J, 3)))
    save_project_npz(tmp_path / "p.npz", d)
    back = load_project_npz(tmp_path / "p.npz")
    np.testing.assert_array_equal(back.keypoints, kp)
    assert back.X.shape == (T, 3, J, 3)
    with pytest.raises(ValueError, match="X"):
        save_project_npz(tmp_path / "q.npz", ProjectData(**{**d.__dict__, "X": np.zeros((T, J, 3))}))


def test_pose2sim_multi_person_trial_all_people(shared_data):
    kp, names = read_openpose_cameras(shared_data / MULTI, num_joints=None, all_people=True)
    assert names == ["cam01", "cam02", "cam03", "cam04"]
    assert kp.ndim == 5 and kp.shape[0] == 4 and 2 <= kp.shape[2] <= 4 and kp.shape[3] == 25
    present = ~np.isnan(kp[..., 0]).all(-1)                             # (C, T, P)
    per_frame = present.sum(-1)
    assert per_frame.max() <= 4 and (per_frame >= 2).mean() > 0.5      # two participants
