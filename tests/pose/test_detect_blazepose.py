"""The blazepose backend on pixels: rendered people (learn.render) with known joints, a real
Pose2Sim video frame against OpenPose's detections of the same frame, and ``epigeo detect``
on the real videos (resume, OpenPose output the project reads back). Needs ../shared/data
(the .tflite models and videos) and LiteRT; skips otherwise."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

import pose  # noqa: E402

LIMBS = ["LShoulder", "RShoulder", "LElbow", "RElbow", "LWrist", "RWrist", "LHip", "RHip",
         "LKnee", "RKnee", "LAnkle", "RAnkle"]


@pytest.fixture
def models(shared_data, monkeypatch):
    monkeypatch.setenv("EPIGEO_MODELS", str(shared_data / "models"))
    return shared_data


def _idx(skeleton, names):
    sk = pose.get_skeleton(skeleton)
    return [sk.index(n) for n in names]


def test_landmarks_on_rendered_people(models):
    from learn.render import render_people
    from pose.detect import make_detector

    p = pose.make_people(num_subjects=1, motions=("walk",), frames_per_clip=8, seed=1)
    Xc = np.einsum("cij,tkj->ctki", p.rig.R, p.X) + p.rig.t[:, None, None]
    X = Xc.reshape(-1, 17, 3)                              # 4 cameras × 8 frames
    K = np.repeat(p.rig.K, Xc.shape[1], axis=0)
    r = render_people(X, K, size=384, seed=2, margin=0.3)
    det = make_detector("blazepose")
    errs = []
    for img, truth in zip(r.images[5:30:5], r.joints[5:30:5]):   # 5 views/poses
        det.reset()
        res = det(np.ascontiguousarray(img.transpose(1, 2, 0)[..., ::-1]))   # RGB → BGR
        assert res.num_people == 1 and res.scores[0] > 0.5
        kp = res.keypoints[0, _idx("blazepose_33", LIMBS)]
        errs.append(np.linalg.norm(kp - truth[_idx("h36m_17", LIMBS)], axis=-1))
    errs = np.concatenate(errs)
    # people ≈ 290 px tall in 384-px images; measured median 5.5 px, 80th percentile 10 px
    assert np.median(errs) < 8.0 and np.percentile(errs, 80) < 15.0, np.round(errs, 1)


def test_real_frame_agrees_with_openpose(models):
    from pose import video as pv
    from pose.detect import make_detector

    ref = np.load(models / "pose2sim_demo" / "pose2sim_demo.npz")["balancing_kp2d"]
    names = LIMBS + ["Nose"]
    det = make_detector("blazepose")
    errs = []
    for c in range(4):
        video = models / "pose2sim_videos" / "Demo_SinglePerson" / f"cam0{c + 1}.mp4"
        (_, frame), = list(pv.read_frames(video, [0]))
        det.reset()
        res = det(frame)
        assert res.num_people == 1
        op = ref[c, 0, _idx("body_25b", names)]
        assert (op[:, 2] > 0).all()
        errs.append(np.linalg.norm(res.keypoints[0, _idx("blazepose_33", names), :2] -
                                   op[:, :2], axis=-1))
    errs = np.concatenate(errs)
    # 1920-px-high frames, the subject ≈ 800 px tall; two detectors' joint definitions differ
    # (measured: median 12 px, max 34 px)
    assert np.median(errs) < 20.0 and errs.max() < 45.0, np.round(errs)


def test_two_people_small_in_a_tall_frame_are_found_with_tiles(models):
    from pose import video as pv
    from pose.detect import make_detector

    video = models / "pose2sim_videos" / "Demo_MultiPerson" / "cam03.mp4"
    (_, frame), = list(pv.read_frames(video, [0]))
    det = make_detector("blazepose", max_people=2)
    assert len(det.detect_people(frame, bgr=True)[0]) == 1     # letterboxed 1088 × 1920: one
    boxes = det.detect_people(frame, bgr=True, tiles=True)[0]
    assert len(boxes) == 2                                      # tiles find the second person
    res = det(frame)
    assert res.num_people == 2 and (res.scores > 0.5).all()
    assert box_overlap(res.boxes[0], res.boxes[1]) < 0.1        # two different people
    assert det.max_people == 2 and make_detector("blazepose")(frame).num_people == 1


def box_overlap(a, b):
    from pose.detect import box_iou
    return float(box_iou(a, b[None])[0])


def test_epigeo_detect_writes_resumable_openpose(models, tmp_path):
    from learn.cli import main
    from learn.inputs import load_detections
    from pose.detect import frame_json_path

    videos = models / "pose2sim_videos" / "Demo_SinglePerson"
    out = tmp_path / "det"
    args = ["detect", str(videos), "--out", str(out), "--end", "0.05", "--overlay", "1",
            "--quiet"]
    assert main(args) == 0
    meta = json.loads((out / "detect.json").read_text())
    assert meta["backend"] == "blazepose" and meta["frames"] == [0, 1, 2]
    assert meta["image_size"][0] == [1080, 1920] and meta["image_size"][2] == [1088, 1920]
    det = load_detections(out, skeleton="blazepose_33", progress=False)
    assert det.keypoints.shape == (4, 3, 33, 3) and det.camera_names == ("cam01", "cam02",
                                                                          "cam03", "cam04")
    assert (det.keypoints[..., 2] > 0).mean() > 0.9
    assert len(list((out / "overlay").glob("*.jpg"))) == 4
    # resume: only the deleted frame is detected again, to the same keypoints
    f = frame_json_path(out, "cam02", 1)
    before = pose.read_openpose_json(f, num_joints=33)
    f.unlink()
    from pose.detect import detect_videos
    again = detect_videos(videos, out, end=0.05, progress=False)
    assert again["frames_detected"] == 1
    np.testing.assert_allclose(pose.read_openpose_json(f, num_joints=33)[0, :, :2],
                               before[0, :, :2], atol=25.0)   # re-detected without tracking
    assert main(["detect", str(tmp_path), "--out", str(out), "--quiet"]) == 2   # no videos
    # cameras in parallel worker processes: the same files
    assert main(["detect", str(videos), "--out", str(tmp_path / "par"), "--end", "0.05",
                 "--jobs", "2", "--quiet"]) == 0
    par = load_detections(tmp_path / "par", skeleton="blazepose_33", progress=False)
    np.testing.assert_allclose(par.keypoints, det.keypoints, atol=1e-4)


def test_reconstruct_hook_detects_videos_first(models, tmp_path):
    from learn.cli import build_parser
    from learn.cmd_detect import videos_to_detections

    videos = models / "pose2sim_videos" / "Demo_SinglePerson"
    args = build_parser().parse_args(["reconstruct", str(videos), "--out", str(tmp_path),
                                      "--detect-end", "0.04", "--quiet"])
    videos_to_detections(args)
    assert args.input == str(tmp_path / "detections") and args.skeleton == "blazepose_33"
    assert args.fps == 60.0 and args.image_size == [1080, 1920]
    assert len(list((tmp_path / "detections" / "cam04_json").glob("*.json"))) == 3
    args2 = build_parser().parse_args(["reconstruct", args.input, "--out", str(tmp_path)])
    videos_to_detections(args2)                          # not a video folder: unchanged
    assert args2.input == args.input and args2.skeleton is None
