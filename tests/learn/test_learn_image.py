"""learn.render, learn.heatmap_net, learn.train: the image pipeline on tiny rendered data
(renderer geometry and determinism, soft-argmax read-outs, a few training steps of the 2D and
3D branches: loss decreases, shapes, determinism with a seed, ValueErrors)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from learn.data import camera_frame, normalize_scale
from learn.heatmap_net import HeatmapNet, soft_argmax_2d, soft_argmax_3d
from learn.losses import weighted_smooth_l1
from learn.render import crop_boxes, render_people
from learn.train import predict, seed_everything, to_tensor, train_loop
from pose.synthetic import make_people

torch.set_num_threads(1)
SIZE = 32


@pytest.fixture(scope="module")
def views():
    p = make_people(num_subjects=1, motions=("walk",), frames_per_clip=16, seed=1)
    Xc = camera_frame(p.X, p.rig.R, p.rig.t)                   # (C, T, J, 3)
    X = Xc.reshape(-1, 17, 3)
    K = np.repeat(p.rig.K, Xc.shape[1], axis=0)
    return X, K, render_people(X, K, size=SIZE, seed=2, jitter=0.05)


# --- renderer -------------------------------------------------------------------------------

def test_render_shapes_crop_geometry_and_determinism(views):
    X, K, r = views
    N = len(X)
    assert r.images.shape == (N, 3, SIZE, SIZE) and r.images.dtype == np.uint8
    assert r.joints.shape == (N, 17, 2) and r.offset.shape == (N, 2) and r.scale.shape == (N,)
    # crop ↔ full-image pixels agree with the pinhole projection
    full = np.einsum("nij,nkj->nki", K, X)
    full = full[..., :2] / full[..., 2:]
    np.testing.assert_allclose(r.to_full(r.joints), full, atol=1e-9)
    # the person fits in the crop (margin 0.2, jitter 0.05)
    assert r.joints.min() > -1 and r.joints.max() < SIZE
    again = render_people(X, K, size=SIZE, seed=2, jitter=0.05)
    np.testing.assert_array_equal(again.images, r.images)
    other = render_people(X, K, size=SIZE, seed=3, jitter=0.05)
    assert np.abs(other.images.astype(int) - r.images.astype(int)).mean() > 5


def _torso_chromaticity(r):
    """Mean r, g, b / (r + g + b) of a 3x3 patch midway between pelvis and thorax (the shirt)."""
    u = np.round((r.joints[:, 0] + r.joints[:, 8]) / 2).astype(int)
    c = np.array([r.images[i, :, y - 1:y + 2, x - 1:x + 2].reshape(3, -1).mean(1)
                  for i, (x, y) in enumerate(u)])
    return c / c.sum(1, keepdims=True)


def test_render_appearance_ids_keep_clothes_across_images(views):
    X, K, _ = views
    X1, K1 = np.repeat(X[:1], 24, 0), np.repeat(K[:1], 24, 0)   # one pose, 24 images
    ids = np.arange(24) % 2
    same = _torso_chromaticity(render_people(X1, K1, size=64, seed=5, appearance=ids))
    free = _torso_chromaticity(render_people(X1, K1, size=64, seed=5))
    # the same id: the same shirt (only light and noise differ); no ids: a new shirt each time
    for k in (0, 1):
        assert same[ids == k].std(0).max() < 0.02
    assert free.std(0).min() > 0.05
    assert np.abs(same[ids == 0].mean(0) - same[ids == 1].mean(0)).max() > 0.03
    with pytest.raises(ValueError, match="appearance"):
        render_people(X1, K1, appearance=np.zeros(23, int))
    with pytest.raises(ValueError, match="appearance"):
        render_people(X1, K1, appearance=np.full(24, -1))


def test_render_draws_the_person_where_the_joints_are(views):
    X, K, _ = views
    r = render_people(X[:8], K[:8], size=64, seed=0)
    bg = render_people(X[:8] + np.array([0.0, 0.0, 1e6]), K[:8], size=64, seed=0)  # too far
    diff = np.abs(r.images.astype(int) - bg.images.astype(int)).sum(1)      # (N, S, S)
    ij = np.round(r.joints[:, [0, 7, 8]]).astype(int)                       # pelvis, spine, neck
    at = diff[np.arange(8)[:, None], ij[..., 1], ij[..., 0]]
    assert np.median(at) > 30 and np.median(diff) < np.median(at)


def test_render_bad_input():
    with pytest.raises(ValueError, match=r"X_cam: expected shape \(N, 17, 3\)"):
        render_people(np.zeros((2, 16, 3)), np.eye(3))
    with pytest.raises(ValueError, match="K"):
        render_people(np.ones((2, 17, 3)), np.eye(3)[None].repeat(3, 0))
    with pytest.raises(ValueError, match="size"):
        render_people(np.ones((2, 17, 3)), np.eye(3), size=4)


def test_crop_boxes_centre_and_side():
    x = np.array([[[10.0, 20.0], [30.0, 60.0]]])
    off, sc = crop_boxes(x, size=40, margin=0.0)
    assert sc[0] == pytest.approx(1.0)                   # side 40 px over 40 crop pixels
    np.testing.assert_allclose(off[0] + sc[0] * 19.5, [20.0, 40.0])


# --- soft-argmax ----------------------------------------------------------------------------

def test_soft_argmax_2d_reads_a_peak_in_input_pixels():
    logits = torch.full((1, 2, 8, 8), -1e4)
    logits[0, 0, 2, 5] = 0.0                             # row 2, column 5
    logits[0, 1, 7, 0] = 0.0
    xy, conf = soft_argmax_2d(logits, stride=4.0)
    torch.testing.assert_close(xy[0], torch.tensor([[5 * 4 + 1.5, 2 * 4 + 1.5],
                                                    [1.5, 7 * 4 + 1.5]]))
    torch.testing.assert_close(conf, torch.ones(1, 2))
    flat = soft_argmax_2d(torch.zeros(1, 1, 8, 8))[1]
    assert float(flat) == pytest.approx(16 / 64)          # no peak: the 4x4 cells near the centre
    with pytest.raises(ValueError, match="logits"):
        soft_argmax_2d(torch.zeros(8, 8))


def test_soft_argmax_3d_reads_a_peak_in_unit_cube():
    D, H, W = 4, 8, 8
    logits = torch.full((1, 1, D, H, W), -1e4)
    logits[0, 0, 3, 0, 7] = 0.0
    p = soft_argmax_3d(logits.reshape(1, D, H, W), D)
    torch.testing.assert_close(p[0, 0], torch.tensor([7.5 / 4 - 1, 0.5 / 4 - 1, 3.5 / 2 - 1]))
    with pytest.raises(ValueError, match="logits"):
        soft_argmax_3d(torch.zeros(1, 5, 8, 8), 4)


# --- network --------------------------------------------------------------------------------

def test_heatmap_net_shapes_and_bad_input(views):
    net = HeatmapNet(width=8, depth=4).eval()
    img = torch.as_tensor(views[2].images[:3])
    xy, conf = net.forward_2d(img)
    assert xy.shape == (3, 17, 2) and conf.shape == (3, 17)
    assert ((conf >= 0) & (conf <= 1)).all()
    y = net.forward_3d(img)
    assert y.shape == (3, 17, 3) and torch.all(y[:, 0] == 0)
    assert y.abs().max() <= 2 * net.extent
    with pytest.raises(ValueError, match=r"x: expected images of shape \(B, 3, S, S\)"):
        net.forward_3d(img[:, :2])
    with pytest.raises(ValueError, match="x: expected"):
        net.forward_2d(torch.zeros(1, 3, 30, 30))


def test_predict_keeps_uint8_images_uint8(views):
    # regression: predict() cast uint8 images to float32 in [0, 255], which skipped the
    # network's [-1, 1] normalisation (the 2D net then looked untrained: 187 px errors)
    net = HeatmapNet(width=8, depth=4).eval()
    imgs = views[2].images[:4]
    with torch.no_grad():
        direct = net.forward_3d(torch.as_tensor(imgs)).double().numpy()
    np.testing.assert_allclose(predict(net, imgs), direct, atol=1e-6)


def _train_2d(images, joints, seed, steps):
    gen = seed_everything(seed)
    net = HeatmapNet(width=8, depth=4)
    tens = {"img": to_tensor(images, None, torch.uint8), "xy": to_tensor(joints / SIZE)}

    def loss(m, b):
        return weighted_smooth_l1(m.forward_2d(b["img"])[0] / SIZE, b["xy"], beta=1.0 / SIZE)

    hist = train_loop(net, loss, tens, epochs=100, batch_size=16, lr=3e-3, generator=gen,
                      progress=False, max_steps=steps,
                      params=list(net.backbone.parameters()) + list(net.head2d.parameters()))
    return net, hist


def test_2d_branch_training_reduces_loss_and_is_deterministic(views):
    _, _, r = views
    net, h = _train_2d(r.images, r.joints, seed=0, steps=40)
    assert np.mean(h["step_loss"][-5:]) < 0.7 * np.mean(h["step_loss"][:3])
    _, h2 = _train_2d(r.images, r.joints, seed=0, steps=5)
    _, h3 = _train_2d(r.images, r.joints, seed=0, steps=5)
    assert h2["step_loss"] == h3["step_loss"]


def test_3d_branch_training_reduces_loss_and_is_deterministic(views):
    X, _, r = views
    y, _ = normalize_scale(X)

    def run(seed, steps):
        gen = seed_everything(seed)
        net = HeatmapNet(width=8, depth=4)
        tens = {"img": to_tensor(r.images, None, torch.uint8), "y": to_tensor(y)}
        hist = train_loop(net, lambda m, b: weighted_smooth_l1(m.forward_3d(b["img"]), b["y"],
                                                               beta=0.05),
                          tens, epochs=100, batch_size=16, lr=3e-3, generator=gen,
                          progress=False, max_steps=steps)
        return net, hist

    net, h = run(0, 40)
    assert np.mean(h["step_loss"][-5:]) < 0.7 * np.mean(h["step_loss"][:3])
    a, ha = run(1, 5)
    b, hb = run(1, 5)
    assert ha["step_loss"] == hb["step_loss"]
    torch.testing.assert_close(predict(a, r.images[:4]), predict(b, r.images[:4]))
