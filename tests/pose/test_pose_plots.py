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


def test_plot_people_3d_colours_each_person(tmp_path, data):
    from pose.plots import PERSON_COLOURS, plot_people_3d
    X = np.stack([data.X, data.X + [1.5, 0, 0]], 1)          # (T, 2, J, 3): two people
    X[:3, 1] = np.nan                                          # person 2 enters late
    fig = plot_people_3d(X, rig=data.rig, path=tmp_path / "p.png")
    _png(tmp_path / "p.png")
    leg = fig.axes[0].get_legend()
    assert [t.get_text() for t in leg.get_texts()] == ["person 1", "person 2"]
    import matplotlib.colors as mc
    assert [mc.to_hex(h.get_color()) for h in leg.legend_handles] == list(PERSON_COLOURS[:2])
    with pytest.raises(ValueError, match="points3d"):
        plot_people_3d(X[:, 0])
