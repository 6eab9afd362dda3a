"""Each plot renders to a PNG file."""
import numpy as np
import pytest

from pose import COCO_17, joint_errors, make_people
from pose.plots import plot_2d_overlay, plot_joint_error_histogram, plot_skeleton_3d


@pytest.fixture(scope="module")
def data():
    return make_people(1, ("walk",), 10, seed=0)


def _png(path):
    b = path.read_bytes()
    assert b[:8] == b"\x89PNG\r\n\x1a\n" and len(b) > 5000


def test_plot_skeleton_3d(tmp_path, data):
    fig = plot_skeleton_3d(data.X[0], rig=data.rig, gt=data.X[1], path=tmp_path / "a.png")
    _png(tmp_path / "a.png")
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match="X"):
        plot_skeleton_3d(np.zeros((16, 3)))


def test_plot_2d_overlay(tmp_path, data):
    plot_2d_overlay(data.keypoints[0, 0], image_size=data.rig.image_size,
                    reference=data.x_clean[0, 0], path=tmp_path / "b.png")
    _png(tmp_path / "b.png")
    img = np.zeros((100, 120, 3))
    plot_2d_overlay(np.random.default_rng(0).uniform(0, 100, (17, 2)), COCO_17, image=img,
                    path=tmp_path / "c.png")
    _png(tmp_path / "c.png")
    with pytest.raises(ValueError, match="x"):
        plot_2d_overlay(np.zeros((17, 4)))


def test_plot_joint_error_histogram(tmp_path, data):
    err = joint_errors(data.X + np.random.default_rng(0).normal(0, .03, data.X.shape), data.X)
    plot_joint_error_histogram(err, path=tmp_path / "d.png")
    _png(tmp_path / "d.png")
    with pytest.raises(ValueError, match="errors"):
        plot_joint_error_histogram(err[:, :5])
