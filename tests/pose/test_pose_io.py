"""Readers and writers: OpenPose JSON, COCO JSON, calibration TOML, npz."""
import json

import numpy as np
import pytest

from pose import BODY_25B, make_people
from pose.io_calib import Calibration, read_calibration_toml, write_calibration_toml
from pose.io_coco import read_coco_keypoints, write_coco_keypoints
from pose.io_npz import (ProjectData, load_project_npz, read_videopose3d_npz, save_project_npz,
                         write_videopose3d_npz)
from pose.io_openpose import (read_openpose_cameras, read_openpose_folder, read_openpose_json,
                              write_openpose_json)

DEMO = "pose2sim_demo"
SINGLE = "Demo/S00_Demo_Session/S00_P00_SingleParticipant/"
TRIALS = {"balancing": SINGLE + "S00_P00_T01_BalancingTrial",
          "static": SINGLE + "S00_P00_T00_StaticTrial",
          "multi": "S00_Demo_BatchSession/S00_P01_MultiParticipants/S00_P01_T02_Participants1-2"}


@pytest.mark.parametrize("trial", ["balancing", "static"])
def test_raw_openpose_reproduces_demo_npz(shared_data, trial):
    ref = np.load(shared_data / DEMO / "pose2sim_demo.npz")
    folder = shared_data / DEMO / "raw" / "Pose2Sim" / TRIALS[trial] / "pose"
    kp, names = read_openpose_cameras(folder)
    assert names == ["cam01", "cam02", "cam03", "cam04"]
    np.testing.assert_allclose(kp, ref[f"{trial}_kp2d"], atol=1e-4)  # npz is float32
    allp, _ = read_openpose_cameras(folder, all_people=True)
    # the npz pads empty person slots with zeros; the reader with NaN (nobody there)
    np.testing.assert_allclose(np.nan_to_num(allp), ref[f"{trial}_kp2d_all_people"], atol=1e-4)
    assert np.all(np.isnan(allp).all(-1) == np.isnan(allp).any(-1))   # whole slots only
    assert tuple(ref["joint_names"]) == BODY_25B.names
    missing = kp[..., 2] == 0
    assert np.all(kp[missing] == 0)


def test_raw_multi_person_matches_all_people(shared_data):
    ref = np.load(shared_data / DEMO / "pose2sim_demo.npz")["multi_kp2d_all_people"]
    folder = shared_data / DEMO / "raw" / "Pose2Sim" / TRIALS["multi"] / "pose"
    allp, _ = read_openpose_cameras(folder, all_people=True)
    np.testing.assert_allclose(np.nan_to_num(allp), ref, atol=1e-4)
    assert allp.shape[2] == 4                     # up to 4 detections per frame
    assert np.isnan(allp[..., 0]).any()           # some frames have fewer: NaN slots


def test_raw_toml_reproduces_demo_calibration(shared_data, tmp_path):
    ref = np.load(shared_data / DEMO / "pose2sim_demo.npz")
    cal = read_calibration_toml(shared_data / DEMO / "raw" / "Calib_qualisys.toml")
    assert cal.names == ("cam_01", "cam_02", "cam_03", "cam_04")
    for key, got in (("K", cal.K), ("R", cal.R), ("t", cal.t), ("dist", cal.dist),
                     ("image_size_wh", cal.image_size)):
        np.testing.assert_allclose(got, ref[key], atol=1e-6, err_msg=key)
    write_calibration_toml(tmp_path / "c.toml", cal)
    again = read_calibration_toml(tmp_path / "c.toml")
    for key in ("K", "R", "t", "dist", "image_size"):
        np.testing.assert_allclose(getattr(again, key), getattr(cal, key), atol=1e-12)
    assert again.names == cal.names and cal.to_rig().image_size == (1088, 1920)


def test_openpose_roundtrip_largest_person_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    small = np.concatenate([rng.uniform(0, 50, (25, 2)), np.ones((25, 1))], -1)
    big = np.concatenate([rng.uniform(0, 500, (25, 2)), rng.uniform(.1, 1, (25, 1))], -1)
    big[3] = 0
    cam = tmp_path / "cam1_json"
    cam.mkdir()
    write_openpose_json(cam / "f_000.json", np.stack([small, big]))
    write_openpose_json(cam / "f_001.json", np.zeros((0, 25, 3)))
    write_openpose_json(cam / "f_002.json", small)
    out = read_openpose_folder(cam)
    np.testing.assert_allclose(out, np.stack([big, np.zeros((25, 3)), small]), atol=1e-6)
    assert read_openpose_folder(cam, all_people=True).shape == (3, 2, 25, 3)
    (cam / "f_003.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [1, 2]}]}))
    with pytest.raises(ValueError, match=r"f_003\.json.*pose_keypoints_2d"):
        read_openpose_folder(cam)
    (cam / "f_003.json").write_text("{not json")
    with pytest.raises(ValueError, match="f_003.json"):
        read_openpose_json(cam / "f_003.json")
    (cam / "f_003.json").write_text(json.dumps({"version": 1.3}))
    with pytest.raises(ValueError, match="f_003.json.*people"):
        read_openpose_json(cam / "f_003.json")
    with pytest.raises(ValueError, match="no camera folders"):
        read_openpose_cameras(tmp_path / "nothing")


def test_calibration_write_from_arrays_and_errors(tmp_path):
    d = make_people(1, ("turn",), 5, seed=0)
    write_calibration_toml(tmp_path / "c.toml", image_size=(1000, 1000), K=d.rig.K,
                           R=d.rig.R, t=d.rig.t, names=["left cam", "b", "c", "d"])
    cal = read_calibration_toml(tmp_path / "c.toml")
    np.testing.assert_allclose(cal.R, d.rig.R, atol=1e-12)
    np.testing.assert_allclose(cal.t, d.rig.t)
    assert cal.names[0] == "left cam" and cal.dist.shape == (4, 4)
    bad = (tmp_path / "c.toml").read_text().replace("translation = [", "translation = [ 1.0,", 1)
    (tmp_path / "bad.toml").write_text(bad)
    with pytest.raises(ValueError, match=r"bad\.toml.*translation"):
        read_calibration_toml(tmp_path / "bad.toml")
    (tmp_path / "bad.toml").write_text("[cam_1]\nname = 'x'\nsize = [1, 2]\n")
    with pytest.raises(ValueError, match=r"bad\.toml.*matrix"):
        read_calibration_toml(tmp_path / "bad.toml")
    (tmp_path / "bad.toml").write_text("size = = 3")
    with pytest.raises(ValueError, match=r"bad\.toml"):
        read_calibration_toml(tmp_path / "bad.toml")
    assert isinstance(cal, Calibration)


def test_coco_roundtrip_and_errors(tmp_path):
    rng = np.random.default_rng(1)
    kp = np.concatenate([rng.uniform(0, 640, (3, 17, 2)), rng.integers(0, 3, (3, 17, 1))], -1)
    write_coco_keypoints(tmp_path / "a.json", kp, [5, 5, 9], joint_names=["j"] * 17)
    got = read_coco_keypoints(tmp_path / "a.json")
    np.testing.assert_allclose(got.keypoints, kp, atol=1e-3)
    np.testing.assert_array_equal(got.image_id, [5, 5, 9])
    assert got.file_name[9] == "000000000009.jpg" and len(got.joint_names) == 17
    write_coco_keypoints(tmp_path / "r.json", kp, [1, 2, 3], score=[.9, .8, .7], results=True)
    res = read_coco_keypoints(tmp_path / "r.json")
    np.testing.assert_allclose(res.score, [.9, .8, .7])
    data = json.loads((tmp_path / "a.json").read_text())
    data["annotations"][1]["keypoints"] = [1, 2, 3]
    (tmp_path / "b.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"b\.json.*annotations\[1\]\.keypoints"):
        read_coco_keypoints(tmp_path / "b.json")
    (tmp_path / "b.json").write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match=r"b\.json.*annotations"):
        read_coco_keypoints(tmp_path / "b.json")


def test_project_npz_roundtrip_and_errors(tmp_path):
    d = make_people(1, ("walk",), 20, seed=0)
    data = ProjectData(K=d.rig.K, dist=d.dist, R=d.rig.R, t=d.rig.t,
                       image_size=np.tile(d.rig.image_size, (4, 1)).astype(float),
                       keypoints=d.keypoints, camera_names=("a", "b", "c", "d"),
                       joint_names=d.skeleton.names, skeleton="h36m_17", fps=50.0, X=d.X,
                       quality={"reproj_px": np.arange(20.0)})
    save_project_npz(tmp_path / "p.npz", data)
    got = load_project_npz(tmp_path / "p.npz")
    for key in ("K", "dist", "R", "t", "image_size", "keypoints", "X"):
        np.testing.assert_array_equal(getattr(got, key), getattr(data, key))
    assert got.camera_names == data.camera_names and got.joint_names == data.joint_names
    assert got.skeleton == "h36m_17" and got.fps == 50.0
    np.testing.assert_array_equal(got.quality["reproj_px"], np.arange(20.0))
    np.savez(tmp_path / "q.npz", epigeo_format=1, K=d.rig.K)
    with pytest.raises(ValueError, match=r"q\.npz.*'dist'"):
        load_project_npz(tmp_path / "q.npz")
    with pytest.raises(ValueError, match="keypoints"):
        save_project_npz(tmp_path / "z.npz", ProjectData(**{**data.__dict__,
                                                            "keypoints": d.keypoints[:2]}))


def test_videopose3d_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    p2 = {"S1": {"Walking": [rng.normal(size=(10, 17, 2)) for _ in range(4)]}}
    p3 = {"S1": {"Walking": rng.normal(size=(10, 17, 3))}}
    md = {"layout_name": "h36m", "num_joints": 17,
          "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    write_videopose3d_npz(tmp_path / "v.npz", positions_2d=p2, positions_3d=p3, metadata=md)
    got = read_videopose3d_npz(tmp_path / "v.npz")
    np.testing.assert_array_equal(got["positions_2d"]["S1"]["Walking"][3], p2["S1"]["Walking"][3])
    np.testing.assert_array_equal(got["positions_3d"]["S1"]["Walking"], p3["S1"]["Walking"])
    assert got["metadata"]["num_joints"] == 17
    np.savez(tmp_path / "w.npz", other=np.zeros(2))
    with pytest.raises(ValueError, match=r"w\.npz.*positions_2d"):
        read_videopose3d_npz(tmp_path / "w.npz")
