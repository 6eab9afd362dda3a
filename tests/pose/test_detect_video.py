"""pose.video: decoding real video files written here with OpenCV (MJPG .avi, MPEG-4 .mp4),
frame ranges, and the errors for bad inputs, each naming the file."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pose import video as pv


def _write(path, n, size=(64, 48), fourcc="MJPG", fps=30.0):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert w.isOpened()
    for i in range(n):
        img = np.zeros((size[1], size[0], 3), np.uint8)
        img[10:20, 2 * i:2 * i + 6] = 255                 # a bar moving 2 px per frame
        w.write(img)
    w.release()
    return path


def _bar_column(frame):
    cols = np.flatnonzero(frame[15, :, 0] > 127)
    return cols.min()


def test_probe_and_read_frames_with_stride_range_and_skip(tmp_path):
    p = _write(tmp_path / "cam01.avi", 20)
    _write(tmp_path / "cam02.mp4", 20, fourcc="mp4v")
    (tmp_path / "notes.txt").write_text("not a video")
    vids = pv.find_videos(tmp_path)
    assert [v.name for v in vids] == ["cam01.avi", "cam02.mp4"]
    info = pv.probe_video(p)
    assert (info.frames, info.fps, info.width, info.height, info.name) == (20, 30.0, 64, 48,
                                                                            "cam01")
    np.testing.assert_array_equal(pv.frame_indices(info, stride=3), np.arange(0, 20, 3))
    # [0.2, 0.5) s at 30 fps: frames 6 … 14
    np.testing.assert_array_equal(pv.frame_indices(info, start=0.2, end=0.5), np.arange(6, 15))
    got = [(i, _bar_column(f)) for i, f in pv.read_frames(p, [2, 5, 9, 13], skip=[9])]
    assert [i for i, _ in got] == [2, 5, 13]
    assert all(abs(c - 2 * i) <= 1 for i, c in got)       # the right frames were decoded
    with pytest.raises(ValueError, match="stride"):
        pv.frame_indices(info, stride=0)
    with pytest.raises(ValueError, match="selects no frame"):
        pv.frame_indices(info, start=1.0, end=2.0)


def test_folder_without_videos(tmp_path):
    (tmp_path / "readme.txt").write_text("no videos here")
    with pytest.raises(ValueError, match=f"{tmp_path}.*no video files"):
        pv.find_videos(tmp_path)
    with pytest.raises(ValueError, match="not a folder"):
        pv.find_videos(tmp_path / "missing")


def test_unreadable_file_is_named(tmp_path):
    bad = tmp_path / "cam03.mp4"
    bad.write_bytes(b"\x00\x01 this is not a video " * 100)
    with pytest.raises(ValueError, match="cam03.mp4.*not a readable video"):
        pv.probe_video(bad)
    with pytest.raises(ValueError, match="cam09.mp4"):
        pv.probe_video(tmp_path / "cam09.mp4")


def test_truncated_videos_are_named(tmp_path):
    for name, fourcc in (("cam01.avi", "MJPG"), ("cam02.mp4", "mp4v")):
        p = _write(tmp_path / name, 20, fourcc=fourcc)
        data = p.read_bytes()
        p.write_bytes(data[:len(data) // 2])
    # AVI: opens and declares 20 frames, the data stop early
    info = pv.probe_video(tmp_path / "cam01.avi")
    with pytest.raises(ValueError, match="cam01.avi: truncated or corrupt video"):
        list(pv.read_frames(info.path, pv.frame_indices(info)))
    # MP4 cut before its index: OpenCV cannot open it at all
    with pytest.raises(ValueError, match="cam02.mp4.*not a readable video"):
        pv.probe_video(tmp_path / "cam02.mp4")


def test_videos_of_different_lengths_are_named(tmp_path):
    a = pv.probe_video(_write(tmp_path / "cam01.avi", 20))
    b = pv.probe_video(_write(tmp_path / "cam02.avi", 15))
    with pytest.raises(ValueError, match=r"different lengths.*cam01.avi: 20, cam02.avi: 15"):
        pv.common_length([a, b])
    assert pv.common_length([a, b], trim=True) == 15
    assert pv.common_length([a, a]) == 20
