"""The onnx backend end to end with a tiny ONNX model built here (torch.onnx.export): a
"brightest spot" network whose SimCC outputs peak at the brightest input column/row, so the
keypoint it returns must land on a bright dot drawn in the frame."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")   # torch's legacy exporter

from pose.detect import make_detector  # noqa: E402

H_IN, W_IN, K = 64, 48, 3


class _BrightSpot(torch.nn.Module):
    """simcc_x[k] = column maxima of the grey input, upsampled ×2 (split ratio 2); joint k sees
    channel k only (R, G, B), so three dots of three colours are three joints."""

    def forward(self, x):                      # (1, 3, H, W), ImageNet-normalised
        sx = x.amax(2).repeat_interleave(2, -1)     # (1, 3, 2W)
        sy = x.amax(3).repeat_interleave(2, -1)     # (1, 3, 2H)
        return torch.sigmoid(sx), torch.sigmoid(sy)


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "bright.onnx"
    torch.onnx.export(_BrightSpot().eval(), (torch.zeros(1, 3, H_IN, W_IN),), str(path),
                      dynamo=False, input_names=["input"], output_names=["simcc_x", "simcc_y"])
    return path


def _frame(dots):
    img = np.zeros((240, 320, 3), np.uint8)
    for (u, v), ch in zip(dots, (2, 1, 0)):          # BGR: R dot → joint 0 (RGB channel 0)
        img[v - 1:v + 2, u - 1:u + 2, ch] = 255
    return img


def test_onnx_backend_finds_the_dots(tiny_onnx):
    dots = [(150, 100), (170, 160), (140, 180)]
    det = make_detector("onnx", model=str(tiny_onnx), max_people=2)
    res = det(_frame(dots), boxes=np.array([[120, 80, 200, 200]]))
    assert res.keypoints.shape == (1, K, 2) and res.confidence.shape == (1, K)
    # input px per image px: 64 / (120 · 1.25) = 0.43 → one input px is 2.3 image px
    np.testing.assert_allclose(res.keypoints[0], dots, atol=2.5)
    assert (res.confidence > 0.8).all()               # sigmoid of the blurred dot peaks
    np.testing.assert_allclose(res.boxes[0], [140, 100, 170, 180], atol=2.5)
    out = res.openpose()
    assert out.shape == (1, K, 3) and np.allclose(out[..., :2], res.keypoints)


def test_onnx_backend_with_a_person_detector_and_top_k(tiny_onnx):
    boxes = np.array([[120, 80, 200, 200], [0, 0, 100, 100], [10, 10, 20, 20]])
    det = make_detector("onnx", model=str(tiny_onnx), max_people=2,
                        person_detector=lambda rgb: boxes)
    res = det(_frame([(150, 100), (170, 160), (140, 180)]))
    assert res.num_people == 2                                # top-k of the detector's boxes
    np.testing.assert_allclose(res.keypoints[0, 0], [150, 100], atol=2.5)
    assert det(_frame([(150, 100)] * 3), boxes=np.zeros((0, 4))).num_people == 0


def test_onnx_backend_bad_inputs(tiny_onnx, tmp_path):
    with pytest.raises(ValueError, match="model"):
        make_detector("onnx")
    with pytest.raises(ValueError, match="nothing.onnx"):
        make_detector("onnx", model=str(tmp_path / "nothing.onnx"))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.onnx"):
        make_detector("onnx", model=str(junk))
    with pytest.raises(ValueError, match="backend"):
        make_detector("openpose")
    det = make_detector("onnx", model=str(tiny_onnx))
    with pytest.raises(ValueError, match="frame"):
        det(np.zeros((10, 10), np.uint8), boxes=np.zeros((1, 4)))


def _write_video(path, frames, fourcc="MJPG"):
    import cv2
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25.0, (320, 240))
    assert w.isOpened()
    for f in frames:
        w.write(f)
    w.release()


def test_detect_videos_writes_openpose_json_and_resumes(tiny_onnx, tmp_path):
    import cv2

    from pose import read_openpose_cameras
    from pose.detect import detect_videos, frame_json_path

    def dots(t, c):
        return [(140 + 3 * t + 5 * c, 100), (170, 150 + 2 * t), (150, 185)]

    vids = tmp_path / "videos"
    vids.mkdir()
    for c in range(2):
        _write_video(vids / f"cam0{c + 1}.avi",
                     [cv2.dilate(_frame(dots(t, c)), np.ones((3, 3), np.uint8))
                      for t in range(8)])
    det = make_detector("onnx", model=str(tiny_onnx),
                        person_detector=lambda rgb: np.array([[110.0, 70, 210, 210]]))
    out = tmp_path / "out"
    meta = detect_videos(vids, out, detector=det, stride=2, overlay=2, progress=False)
    assert meta["frames"] == [0, 2, 4, 6] and meta["frames_detected"] == 8
    assert meta["cameras"] == ["cam01", "cam02"] and meta["fps"] == 25.0
    kp, names = read_openpose_cameras(out, num_joints=None)      # the project's reader
    assert kp.shape == (2, 4, K, 3) and names == ["cam01", "cam02"]
    for c in range(2):
        for k, t in enumerate([0, 2, 4, 6]):
            np.testing.assert_allclose(kp[c, k, :, :2], dots(t, c), atol=3.0)
    assert sorted(p.name for p in (out / "overlay").glob("*.jpg")) == [
        "cam01_000000.jpg", "cam01_000006.jpg", "cam02_000000.jpg", "cam02_000006.jpg"]
    # resume: nothing to do, then only the two deleted frames
    assert detect_videos(vids, out, detector=det, stride=2, progress=False)[
        "frames_detected"] == 0
    frame_json_path(out, "cam01", 4).unlink()
    frame_json_path(out, "cam02", 0).unlink()
    assert detect_videos(vids, out, detector=det, stride=2, progress=False)[
        "frames_detected"] == 2
    kp2, _ = read_openpose_cameras(out, num_joints=None)
    np.testing.assert_allclose(kp2, kp, atol=1e-6)
    assert not list(out.rglob("*.tmp"))                  # atomic writes leave no temporaries
    # resuming with other settings would mix detections: refused, naming the difference
    det2 = make_detector("onnx", model=str(tiny_onnx), max_people=2,
                        person_detector=lambda rgb: np.array([[110.0, 70, 210, 210]]))
    with pytest.raises(ValueError, match="max_people 1 .now 2."):
        detect_videos(vids, out, detector=det2, stride=2, progress=False)
    # videos of different lengths: named, unless trimmed
    _write_video(vids / "cam03.avi", [_frame(dots(0, 0))] * 5)
    with pytest.raises(ValueError, match="cam01.avi: 8, cam02.avi: 8, cam03.avi: 5"):
        detect_videos(vids, out, detector=det, progress=False)
    assert detect_videos(vids, tmp_path / "trim", detector=det, trim=True,
                         progress=False)["frames"] == [0, 1, 2, 3, 4]
