"""The ``epigeo`` command: end to end on small synthetic inputs, clear errors, the real demo data."""
import json
from pathlib import Path

import numpy as np
import pytest

import geometry as geo
import pose
from learn.cli import main
from learn.pseudo_labels import load_pseudo_labels

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
TRIAL = ("pose2sim_demo/raw/Pose2Sim/Demo/S00_Demo_Session/S00_P00_SingleParticipant/"
         "S00_P00_T01_BalancingTrial")


@pytest.fixture(scope="module")
def people():
    rig = pose.make_people_rig("h36m", 3, seed=0)
    noise = pose.DetectorNoise(sigma_px=1.0, outlier_ratio=0.02, missing_ratio=0.02,
                               swap_ratio=0.0)
    return pose.make_people(1, ("walk", "squat"), 20, rig=rig, noise=noise, seed=0)


def _keypoints(people):
    return np.concatenate([np.nan_to_num(people.x), people.confidence[..., None]], -1)


def _write_openpose(root, people, frames=None):
    kp = _keypoints(people)
    for c in range(kp.shape[0]):
        d = root / "pose" / f"cam{c + 1:02d}_json"
        d.mkdir(parents=True)
        for f in range(kp.shape[1] if frames is None else frames[c]):
            pose.write_openpose_json(d / f"trial_{f:06d}_keypoints.json", kp[c, f])
    return root


def _write_calib(path, people):
    rig = people.rig
    C = rig.num_cameras
    pose.write_calibration_toml(path, names=[f"cam_{c + 1:02d}" for c in range(C)],
                                image_size=np.tile(rig.image_size, (C, 1)), K=rig.K,
                                dist=np.zeros((C, 4)), R=rig.R, t=rig.t)
    return path


def _run(capsys, *argv):
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _pair_rotation_errors(R, rig):
    return [geo.rotation_error_deg(R[j] @ R[i].T, rig.R[j] @ rig.R[i].T)
            for i in range(len(R)) for j in range(i + 1, len(R))]


def test_reconstruct_openpose_folder_end_to_end(tmp_path, people, capsys):
    src = _write_openpose(tmp_path / "trial", people)
    out = tmp_path / "out"
    rc, stdout, err = _run(capsys, "reconstruct", src, "--image-size", 1000, 1000,
                           "--skeleton", "h36m_17", "--out", out, "--quiet")
    assert rc == 0, err
    for f in ("pseudo_labels.npz", "reconstruction.npz", "calibration.toml", "report.json",
              "rig.png", "skeleton.png", "reprojection.png"):
        assert (out / f).stat().st_size > 0, f
    report = json.loads((out / "report.json").read_text())
    assert report["cameras"] == ["cam01", "cam02", "cam03"] and report["frames"] == 40
    assert report["reprojection_px"]["median"] < 3.0
    # the written calibration: rotations close to the truth, focal length estimated
    cal = pose.read_calibration_toml(out / "calibration.toml")
    assert max(_pair_rotation_errors(cal.R, people.rig)) < 1.0
    assert abs(cal.K[0, 0, 0] / people.rig.K[0, 0, 0] - 1) < 0.1
    labels, extras = load_pseudo_labels(out / "pseudo_labels.npz")
    assert labels.X_cam.shape == (3, 40, 17, 3) and labels.valid.mean() > 0.9
    assert extras["x"].shape == (3, 40, 17, 2)
    data = pose.load_project_npz(out / "reconstruction.npz")
    assert data.X.shape == (40, 17, 3) and data.camera_names == ("cam01", "cam02", "cam03")


def test_intrinsics_only_reports_errors_against_the_calibration(tmp_path, people, capsys):
    src = _write_openpose(tmp_path / "trial", people)
    calib = _write_calib(tmp_path / "calib.toml", people)
    rc, stdout, err = _run(capsys, "reconstruct", src, "--calib", calib, "--intrinsics-only",
                           "--out", tmp_path / "out", "--quiet")
    assert rc == 0, err
    a = json.loads((tmp_path / "out" / "report.json").read_text())["against_calibration"]
    assert len(a["pairs"]) == 3 and a["max_rotation_deg"] < 0.5
    assert "median relative rotation error" in stdout


def test_calibration_cameras_are_matched_by_name(tmp_path, people, capsys):
    """Regression: a calibration listing the cameras in another order than the input folders."""
    src = _write_openpose(tmp_path / "trial", people)
    rig, order = people.rig, [2, 0, 1]
    pose.write_calibration_toml(tmp_path / "calib.toml", names=[f"cam_{c + 1:02d}" for c in order],
                                image_size=np.tile(rig.image_size, (3, 1)), K=rig.K[order],
                                dist=np.zeros((3, 4)), R=rig.R[order], t=rig.t[order])
    rc, _, err = _run(capsys, "reconstruct", src, "--calib", tmp_path / "calib.toml",
                      "--intrinsics-only", "--out", tmp_path / "out", "--quiet")
    assert rc == 0, err
    a = json.loads((tmp_path / "out" / "report.json").read_text())["against_calibration"]
    assert a["max_rotation_deg"] < 0.5


def test_full_calibration_gives_metric_labels(tmp_path, people, capsys):
    src = _write_openpose(tmp_path / "trial", people)
    calib = _write_calib(tmp_path / "calib.toml", people)
    rc, _, err = _run(capsys, "reconstruct", src, "--calib", calib, "--skeleton", "h36m_17",
                      "--out", tmp_path / "out", "--quiet")
    assert rc == 0, err
    labels, _ = load_pseudo_labels(tmp_path / "out" / "pseudo_labels.npz")
    assert labels.mode == "calibrated" and labels.units == "metric"
    ok = labels.weights > 0
    err_m = np.linalg.norm(labels.X - people.X, axis=-1)[ok[0]]
    assert np.median(err_m) < 0.01                               # metres


def test_npz_and_coco_inputs(tmp_path, people, capsys):
    kp = _keypoints(people)
    C = kp.shape[0]
    rig = people.rig
    pose.save_project_npz(tmp_path / "in.npz", pose.ProjectData(
        K=rig.K, dist=np.zeros((C, 5)), R=rig.R, t=rig.t,
        image_size=np.tile(np.array(rig.image_size, float), (C, 1)), keypoints=kp,
        camera_names=("a", "b", "c"), skeleton="h36m_17"))
    rc, _, err = _run(capsys, "reconstruct", tmp_path / "in.npz", "--out", tmp_path / "o1",
                      "--quiet")
    assert rc == 0, err
    assert json.loads((tmp_path / "o1" / "report.json").read_text())["skeleton"] == "h36m_17"
    coco = tmp_path / "coco"
    coco.mkdir()
    for c in range(C):
        pose.write_coco_keypoints(coco / f"cam{c}.json", kp[c], np.arange(kp.shape[1]))
    rc, _, err = _run(capsys, "reconstruct", coco, "--image-size", 1000, 1000, "--out",
                      tmp_path / "o2", "--quiet")
    assert rc == 0, err
    report = json.loads((tmp_path / "o2" / "report.json").read_text())
    assert report["cameras"] == ["cam0", "cam1", "cam2"] and report["frames"] == 40


def test_malformed_json_names_the_file(tmp_path, people, capsys):
    src = _write_openpose(tmp_path / "trial", people)
    bad = src / "pose" / "cam02_json" / "trial_000007_keypoints.json"
    bad.write_text('{"people": [ {"pose_keypoints_2d": [1, 2')
    rc, _, err = _run(capsys, "reconstruct", src, "--image-size", 1000, 1000,
                      "--out", tmp_path / "out", "--quiet")
    assert rc != 0 and "trial_000007_keypoints.json" in err and "cam02_json" in err
    assert not (tmp_path / "out").exists()                       # nothing written half-way


def test_different_frame_counts_name_the_cameras(tmp_path, people, capsys):
    src = _write_openpose(tmp_path / "trial", people, frames=[40, 37, 40])
    args = ["reconstruct", src, "--image-size", 1000, 1000, "--out", tmp_path / "out", "--quiet"]
    rc, _, err = _run(capsys, *args)
    assert rc != 0 and "cam02: 37" in err and "different frame counts" in err
    assert not (tmp_path / "out").exists()
    rc, _, err = _run(capsys, *args, "--trim")
    assert rc == 0, err
    assert json.loads((tmp_path / "out" / "report.json").read_text())["frames"] == 37


def test_missing_camera_is_named(tmp_path, people, capsys):
    src = _write_openpose(tmp_path / "trial", people)
    calib = _write_calib(tmp_path / "calib.toml", people)
    for f in (src / "pose" / "cam03_json").iterdir():
        f.unlink()
    rc, _, err = _run(capsys, "reconstruct", src, "--calib", calib, "--out", tmp_path / "o")
    assert rc != 0 and "cam03_json" in err and "no .json files" in err
    (src / "pose" / "cam03_json").rmdir()
    rc, _, err = _run(capsys, "reconstruct", src, "--calib", calib, "--out", tmp_path / "o")
    assert rc != 0 and "cam_03" in err and "no detections" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv, match", [
    (["reconstruct", "{tmp}/nowhere"], "does not exist"),
    (["reconstruct", "{tmp}/empty"], "no '*_json' camera folders"),
    (["reconstruct", "{tmp}/trial"], "--image-size"),
    (["reconstruct", "{tmp}/trial", "--calib", "{tmp}/bad.toml"], "bad.toml"),
    (["reconstruct", "{tmp}/trial", "--image-size", "1000", "1000", "--skeleton", "body_25"],
     "--skeleton"),
])
def test_bad_inputs_give_clear_messages(tmp_path, people, capsys, argv, match):
    _write_openpose(tmp_path / "trial", people)
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.toml").write_text("[cam_01]\nsize = [1, 2, 3]\n")
    rc, _, err = _run(capsys, *[a.format(tmp=tmp_path) for a in argv], "--out",
                      tmp_path / "out", "--quiet")
    assert rc == 2 and match in err and err.startswith("epigeo: error:")
    assert not (tmp_path / "out").exists()


def test_demo_prints_camera_errors_and_nmpjpe_beside_the_oracle(tmp_path, capsys):
    rc, out, err = _run(capsys, "demo", "--frames", 8, "--out", tmp_path)
    assert rc == 0, err
    assert "Camera errors" in out and "| 0-1 |" in out
    assert "oracle (true cameras)" in out and "epigeo rig" in out and "epigeo frame" in out
    report = json.loads((tmp_path / "demo_report.json").read_text())
    rows = {r["method"]: r for r in report["rows"]}
    assert rows["epigeo rig"]["vs_oracle"] < 1.2
    assert rows["epigeo frame"]["n_mpjpe_mm"] > 3 * rows["epigeo rig"]["n_mpjpe_mm"]


@pytest.mark.skipif(not (DATA / TRIAL).is_dir(), reason="../shared/data is absent")
def test_pose2sim_balancing_trial_intrinsics_only(tmp_path, capsys):
    calib = DATA / "pose2sim_demo" / "raw" / "Calib_qualisys.toml"
    rc, out, err = _run(capsys, "reconstruct", DATA / TRIAL, "--calib", calib,
                        "--intrinsics-only", "--fps", 60, "--out", tmp_path, "--quiet")
    assert rc == 0, err
    report = json.loads((tmp_path / "report.json").read_text())
    a = report["against_calibration"]
    assert len(a["pairs"]) == 6
    assert a["median_rotation_deg"] < 2.0 and a["max_rotation_deg"] < 3.0
    assert report["reprojection_px"]["median"] < 10.0
    assert pose.read_calibration_toml(tmp_path / "calibration.toml").num_cameras == 4
