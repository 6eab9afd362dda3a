"""``epigeo reconstruct --people``: a synthetic crowd written as OpenPose JSON, end to end."""
import json

import numpy as np
import pytest

from learn.cli import main
from pose.io_calib import write_calibration_toml
from pose.io_openpose import write_openpose_json
from pose.io_trc import read_trc
from pose.synthetic_crowd import assignment_accuracy, make_crowd_scene


def _write_scene(folder, scene):
    """OpenPose JSON per camera and frame (a missing joint: 0, 0, 0; empty slots dropped)."""
    C, T, P = scene.identity.shape
    for c in range(C):
        cam = folder / f"cam{c + 1:02d}_json"
        cam.mkdir(parents=True)
        for t in range(T):
            people = []
            for p in range(P):
                xy = scene.x[c, t, p]
                if np.isnan(xy).all():
                    continue
                kp = np.concatenate([np.nan_to_num(xy), scene.confidence[c, t, p, :, None]], -1)
                kp[np.isnan(xy).any(-1)] = 0.0
                people.append(kp)
            write_openpose_json(cam / f"f_{t:05d}.json",
                                np.stack(people) if people else np.zeros((0, 17, 3)))


@pytest.fixture(scope="module")
def crowd(tmp_path_factory):
    root = tmp_path_factory.mktemp("crowd")
    scene = make_crowd_scene(3, 4, 80, noise_px=1.0, outlier_rate=0.05,
                             false_detection_rate=0.02, seed=3)
    _write_scene(root / "pose", scene)
    rig = scene.rig
    write_calibration_toml(root / "calib.toml", names=[f"cam{c + 1:02d}" for c in
                                                       range(rig.num_cameras)],
                           image_size=np.tile(np.array(rig.image_size, float), (rig.num_cameras, 1)),
                           K=rig.K, dist=np.zeros((rig.num_cameras, 4)), R=rig.R, t=rig.t)
    return root, scene


def _match(points, truth):
    """Estimated person → true person by mean 3D distance (m), and that distance."""
    N, M = points.shape[1], truth.shape[1]
    d = np.full((N, M), np.inf)
    for n in range(N):
        for m in range(M):
            e = np.linalg.norm(points[:, n] - truth[:, m], axis=-1)
            if np.isfinite(e).any():
                d[n, m] = np.nanmedian(e)
    return d.argmin(1), d.min(1)


def test_people_auto_end_to_end(crowd, tmp_path, capsys):
    root, scene = crowd
    out = tmp_path / "out"
    (out).mkdir()
    (out / "pseudo_labels.npz").write_bytes(b"stale")          # a single-person run's file
    (out / "person_07.trc").write_text("stale")                 # a bigger people run's file
    rc = main(["reconstruct", str(root), "--people", "auto", "--calib", str(root / "calib.toml"),
               "--skeleton", "h36m_17", "--fps", "50", "--out", str(out), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    rep = json.loads((out / "report.json").read_text())
    assert rep["mode"] == "people" and rep["num_people"] >= 2 and rep["units"] == "m"
    assert all(r["track_length"] > 20 and r["median_reprojection_px"] < 5 for r in rep["people"])
    assert rep["against_calibration"]["median_rotation_deg"] < 1.0
    assert not (out / "pseudo_labels.npz").exists() and not (out / "person_07.trc").exists()
    d = np.load(out / "people.npz")
    N = int(rep["num_people"])
    assert d["points3d"].shape == (80, N, 17, 3) and d["identity"].shape == scene.identity.shape
    acc = assignment_accuracy(d["identity"], scene.identity)
    assert acc > 0.9, acc
    match, err = _match(d["points3d"], scene.points3d)
    assert len(set(match[:3])) >= 2 and np.sort(err)[:2].max() < 0.10, err   # metres
    trc = read_trc(out / "person_01.trc")                       # metres, 50 fps, joint names
    assert trc.units == "m" and trc.data_rate == 50 and trc.points.shape == (80, 17, 3)
    assert trc.marker_names == tuple(scene.skeleton.names)
    np.testing.assert_allclose(trc.points, d["points3d"][:, 0][..., [1, 2, 0]], atol=1e-5)  # Y up
    for n in range(N):
        lab = np.load(out / f"pseudo_labels_person_{n + 1:02d}.npz")
        assert lab["valid"].shape == (4, 80) and lab["valid"].any()
    html = (out / "report.html").read_text()
    assert "person 1" in html and "track length" in html and (out / "people.png").stat().st_size
    from pose.plots import PERSON_COLOURS
    assert all(PERSON_COLOURS[n] in html for n in range(N))      # each person's colour
    digests = rep["outputs_sha256"]
    assert set(digests) >= {"people.npz", "calibration.toml", "person_01.trc", "report.html"}


def test_people_bad_option_and_single_path_unchanged(crowd, tmp_path, capsys):
    root, _ = crowd
    rc = main(["reconstruct", str(root), "--people", "zero", "--image-size", "1000", "1000",
               "--out", str(tmp_path / "o"), "--quiet"])
    assert rc == 2 and "--people" in capsys.readouterr().err
    rc = main(["reconstruct", str(root), "--people", "2", "--mode", "frame",
               "--out", str(tmp_path / "o"), "--quiet", "--image-size", "1000", "1000"])
    assert rc == 2 and "--mode" in capsys.readouterr().err
    rc = main(["reconstruct", str(root), str(root), "--people", "auto", "--out",
               str(tmp_path / "o"), "--quiet"])
    assert rc == 2 and "one INPUT" in capsys.readouterr().err


def test_load_detections_all_people_coco_and_blazepose_guess(tmp_path, rng):
    from learn.inputs import load_detections
    from pose.io_coco import write_coco_keypoints
    # COCO, one file per camera: image 1 has two people, image 2 one, image 3 nobody listed
    people = np.concatenate([rng.uniform(10, 500, (3, 17, 2)), np.full((3, 17, 1), 0.9)], -1)
    for cam in ("a", "b"):
        write_coco_keypoints(tmp_path / f"{cam}.json", people, [1, 1, 2], score=[0.5, 0.8, 0.7])
    det = load_detections(tmp_path, progress=False, all_people=True)
    assert det.keypoints.shape == (2, 2, 2, 17, 3) and det.skeleton == "coco_17"
    np.testing.assert_allclose(det.keypoints[0, 0], people[[1, 0]], atol=1e-3)   # by score
    assert np.isnan(det.x[0, 1, 1]).all() and (det.confidence[0, 1, 1] == 0).all()
    single = load_detections(tmp_path, progress=False)                             # unchanged
    np.testing.assert_allclose(single.keypoints[0], people[[1, 2]], atol=1e-3)
    # OpenPose-format folders with 33 joints (epigeo detect's BlazePose) → blazepose_33
    op = tmp_path / "op"
    for cam in ("cam01_json", "cam02_json"):
        (op / cam).mkdir(parents=True)
        write_openpose_json(op / cam / "f0.json", np.concatenate(
            [rng.uniform(10, 500, (2, 33, 2)), np.ones((2, 33, 1))], -1))
        write_openpose_json(op / cam / "f1.json", np.zeros((0, 33, 3)))
    det = load_detections(op, progress=False, all_people=True)
    assert det.skeleton == "blazepose_33" and det.keypoints.shape == (2, 2, 2, 33, 3)
    assert load_detections(op, progress=False).skeleton == "blazepose_33"
