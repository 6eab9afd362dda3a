"""``epigeo reconstruct SESSION``: one calibration from every trial folder, labels per trial."""
import json

import numpy as np
import pytest

import geometry as geo
import pose
from learn.cli import main
from learn.pseudo_labels import load_pseudo_labels
from learn.session import find_trials


@pytest.fixture(scope="module")
def session_people():
    rig = pose.make_people_rig("h36m", 3, seed=1)
    noise = pose.DetectorNoise(sigma_px=1.0, outlier_ratio=0.02, missing_ratio=0.02,
                               swap_ratio=0.0)
    return [pose.make_people(1, (m,), n, rig=rig, noise=noise, seed=s)
            for m, n, s in (("walk", 40, 0), ("squat", 25, 1), ("turn", 30, 2))]


def _write_trial(root, people):
    kp = np.concatenate([np.nan_to_num(people.x), people.confidence[..., None]], -1)
    for c in range(kp.shape[0]):
        d = root / "pose" / f"cam{c + 1:02d}_json"
        d.mkdir(parents=True)
        for f in range(kp.shape[1]):
            pose.write_openpose_json(d / f"t_{f:06d}_keypoints.json", kp[c, f])


def _write_calib(path, rig):
    C = rig.num_cameras
    pose.write_calibration_toml(path, names=[f"cam{c + 1:02d}" for c in range(C)],
                                image_size=np.tile(rig.image_size, (C, 1)), K=rig.K,
                                dist=np.zeros((C, 4)), R=rig.R, t=rig.t)
    return path


def test_session_folder_calibrates_once_and_labels_every_trial(tmp_path, session_people,
                                                                capsys):
    sess = tmp_path / "S01"
    for i, p in enumerate(session_people):             # Pose2Sim layout: participant/trial
        _write_trial(sess / "P01" / f"T0{i}", p)
    bad = sess / "P01" / "T09" / "pose" / "cam01_json"  # a corrupt trial: reported, skipped
    bad.mkdir(parents=True)
    (bad / "t_000000_keypoints.json").write_text("{not json")
    assert [t.name for t in find_trials(sess)] == ["T00", "T01", "T02", "T09"]
    rig = session_people[0].rig
    calib = _write_calib(tmp_path / "calib.toml", rig)
    out = tmp_path / "out"
    rc = main(["reconstruct", str(sess), "--calib", str(calib), "--intrinsics-only",
               "--out", str(out), "--quiet"])
    err = capsys.readouterr()
    assert rc == 0, err
    rep = json.loads((out / "session_report.json").read_text())
    assert rep["frames"] == 95 and len(rep["trials"]) == 3
    assert any("T09" in k for k in rep["failed"])
    assert "T09" in err.out                              # the warning names the trial
    assert rep["against_calibration"]["median_rotation_deg"] < 0.5
    cal = pose.read_calibration_toml(out / "calibration.toml")
    assert cal.num_cameras == 3
    errs = [geo.rotation_error_deg(cal.R[j] @ cal.R[i].T, rig.R[j] @ rig.R[i].T)
            for i in range(3) for j in range(i + 1, 3)]
    assert max(errs) < 0.5
    for i, p in enumerate(session_people):
        labels, extra = load_pseudo_labels(out / "P01" / f"T0{i}" / "pseudo_labels.npz")
        assert labels.X_cam.shape[:2] == (3, p.x.shape[1]) and labels.valid.mean() > 0.9
        assert labels.mode == "calibrated"
    # no temporary files left behind
    assert not [f for f in out.rglob(".*tmp*")]


def test_session_without_readable_trials_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "S" / "T0" / "cam01_json"
    bad.mkdir(parents=True)
    (bad / "x_keypoints.json").write_text("[]")
    rc = main(["reconstruct", str(tmp_path / "S"), "--image-size", "1000", "1000",
               "--out", str(tmp_path / "o"), "--quiet"])
    assert rc == 2
    assert "no trial could be read" in capsys.readouterr().err
