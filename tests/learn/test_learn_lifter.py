"""learn.lifter, learn.losses, learn.data, learn.train, learn.label_source: the 2D→3D lifter
trained a few steps on tiny synthetic data (loss decreases, shapes, determinism, ValueErrors),
the 3D-to-2D correction term on exact data, and the label sources."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from learn.data import (camera_frame, lifter_features, make_lifting_set, normalize_scale,
                        normalized_coordinates, temporal_window)
from learn.label_source import pseudo_labels, truth_labels
from learn.lifter import Lifter
from learn.losses import (beta_for_labels, projection_consistency, solve_translation,
                          weighted_smooth_l1)
from learn.train import predict, seed_everything, to_tensor, train_loop
from pose.metrics import n_mpjpe
from pose.synthetic import make_people

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def people():
    return make_people(num_subjects=2, frames_per_clip=12, seed=3)


@pytest.fixture(scope="module")
def lifting(people):
    rig = people.rig
    truth = camera_frame(people.X, rig.R, rig.t)
    return make_lifting_set(people.x, rig.K, people.confidence, np.ones(people.num_frames, bool),
                            labels=truth, truth=truth, clip=people.clip)


def _train(ls, seed, steps=30, correction=0.0, window=1):
    gen = seed_everything(seed)
    model = Lifter(window=window, hidden=64, num_blocks=1, dropout=0.1)
    tens = {k: to_tensor(getattr(ls, k)) for k in
            ("inputs", "x_norm", "confidence", "target", "weights")}
    beta = beta_for_labels(ls.target)

    def loss_fn(m, b):
        pred = m(b["inputs"])
        loss = weighted_smooth_l1(pred, b["target"], b["weights"], beta)
        if correction:
            loss = loss + correction * projection_consistency(pred, b["x_norm"],
                                                              b["confidence"])
        return loss

    hist = train_loop(model, loss_fn, tens, epochs=100, batch_size=64, lr=3e-3, generator=gen,
                      progress=False, max_steps=steps)
    return model, hist


# --- data -----------------------------------------------------------------------------------

def test_lifting_set_shapes_and_units(people, lifting):
    C, T = people.x.shape[:2]
    assert len(lifting) == C * T
    assert lifting.inputs.shape == (C * T, 1, 17, 3)
    assert lifting.x_norm.shape == (C * T, 17, 2) and lifting.target.shape == (C * T, 17, 3)
    assert lifting.truth.dtype == np.float64
    # targets: root-relative, RMS distance to the root 1
    rms = np.sqrt((lifting.target.astype(np.float64) ** 2).sum(-1).mean(-1))
    np.testing.assert_allclose(rms, 1.0, atol=1e-5)
    np.testing.assert_allclose(lifting.target[:, 0], 0.0, atol=1e-6)
    rig, T = people.rig, np.arange(4)
    with pytest.raises(ValueError, match=r"x: expected shape \(C, T, J, 2\)"):
        make_lifting_set(people.x[0], rig.K, people.confidence, T)
    with pytest.raises(ValueError, match="confidence"):
        make_lifting_set(people.x, rig.K, people.confidence[:, :3], T)
    with pytest.raises(ValueError, match="labels"):
        make_lifting_set(people.x, rig.K, people.confidence, T, labels=np.zeros((1, 2, 17, 3)))


def test_lifter_features_invariant_to_image_scale_and_shift(rng):
    xn = rng.normal(size=(5, 17, 2))
    f1 = lifter_features(xn)
    f2 = lifter_features(3.0 * xn + np.array([0.4, -1.0]))
    np.testing.assert_allclose(f1, f2, atol=1e-12)
    np.testing.assert_allclose(f1[..., 0, :2], 0.0)
    xn[0, 5] = np.nan
    f = lifter_features(xn)
    assert np.all(f[0, 5] == 0.0) and np.isfinite(f).all()


def test_normalized_coordinates_inverts_K(people):
    rig = people.rig
    xn = normalized_coordinates(people.x_clean, rig.K)
    Xc = camera_frame(people.X, rig.R, rig.t)
    np.testing.assert_allclose(xn, Xc[..., :2] / Xc[..., 2:], atol=1e-9)
    with pytest.raises(ValueError, match="K"):
        normalized_coordinates(people.x_clean, rig.K[:2])


def test_temporal_window_clamps_inside_clips():
    a = np.arange(6.0)[None, :, None]                       # (1, T=6, 1)
    clip = np.array([0, 0, 0, 1, 1, 1])
    w = temporal_window(a, clip, 3)[0, :, :, 0]
    np.testing.assert_array_equal(w, [[0, 0, 1], [0, 1, 2], [1, 2, 2], [3, 3, 4], [3, 4, 5],
                                      [4, 5, 5]])
    with pytest.raises(ValueError, match="window"):
        temporal_window(a, clip, 2)
    with pytest.raises(ValueError, match="clip"):
        temporal_window(a, clip[:4], 3)


# --- model ----------------------------------------------------------------------------------

def test_lifter_shapes_root_and_bad_input():
    m = Lifter(window=3, hidden=32, num_blocks=2).eval()
    y = m(torch.randn(4, 3, 17, 3))
    assert y.shape == (4, 17, 3)
    assert torch.all(y[:, 0] == 0)
    with pytest.raises(ValueError, match=r"x: expected shape \(B, 3, 17, 3\)"):
        m(torch.randn(4, 17, 3))
    with pytest.raises(ValueError, match="x: expected"):
        Lifter(hidden=32)(torch.randn(4, 16, 3))
    with pytest.raises(ValueError, match="num_joints"):
        Lifter(window=0)


def test_lifter_training_reduces_loss_and_error(lifting):
    model, hist = _train(lifting, seed=0, steps=60)
    assert np.mean(hist["step_loss"][-10:]) < 0.6 * np.mean(hist["step_loss"][:5])
    before = Lifter(hidden=64, num_blocks=1).eval()
    e0 = np.mean(n_mpjpe(predict(before, lifting.inputs), lifting.truth, root=0))
    e1 = np.mean(n_mpjpe(predict(model, lifting.inputs), lifting.truth, root=0))
    assert e1 < 0.7 * e0


def test_lifter_training_is_deterministic_with_a_seed(lifting):
    m1, h1 = _train(lifting, seed=5, steps=8, correction=0.1)
    m2, h2 = _train(lifting, seed=5, steps=8, correction=0.1)
    m3, h3 = _train(lifting, seed=6, steps=8, correction=0.1)
    assert h1["step_loss"] == h2["step_loss"]
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    assert h1["step_loss"] != h3["step_loss"]


def test_lifter_with_temporal_window_trains(people):
    rig = people.rig
    truth = camera_frame(people.X, rig.R, rig.t)
    ls = make_lifting_set(people.x, rig.K, people.confidence, np.arange(people.num_frames),
                          labels=truth, truth=truth, clip=people.clip, window=3)
    assert ls.inputs.shape[1:] == (3, 17, 3)
    _, hist = _train(ls, seed=0, steps=30, window=3)
    assert np.mean(hist["step_loss"][-5:]) < np.mean(hist["step_loss"][:5])


# --- losses ---------------------------------------------------------------------------------

def test_weighted_smooth_l1_weights_and_errors():
    p = torch.zeros(2, 3, 3)
    t = torch.zeros(2, 3, 3)
    t[0, 1] = 10.0                                           # an outlier joint
    w = torch.ones(2, 3)
    assert float(weighted_smooth_l1(p, t, w, beta=1.0)) > 1.0
    w[0, 1] = 0.0
    assert float(weighted_smooth_l1(p, t, w, beta=1.0)) == 0.0
    # linear beyond beta, quadratic below
    t2 = torch.full((1, 1, 3), 0.5)
    assert float(weighted_smooth_l1(torch.zeros(1, 1, 3), t2, beta=1.0)) == pytest.approx(0.375)
    with pytest.raises(ValueError, match="target"):
        weighted_smooth_l1(p, t[:1])
    with pytest.raises(ValueError, match="weights"):
        weighted_smooth_l1(p, t, w[:, :2])
    with pytest.raises(ValueError, match="beta"):
        weighted_smooth_l1(p, t, beta=0.0)


def test_beta_follows_label_units(rng):
    X = rng.normal(size=(50, 17, 3))
    assert beta_for_labels(1000.0 * X) == pytest.approx(1000.0 * beta_for_labels(X))


def test_solve_translation_and_correction_are_exact_on_exact_data(people, lifting):
    Y = torch.as_tensor(lifting.truth[:40])                  # root-relative, camera axes, m
    T = torch.tensor([0.3, -0.2, 5.0], dtype=torch.float64).expand(40, 3)
    P = Y + T[:, None]
    x = P[..., :2] / P[..., 2:]
    torch.testing.assert_close(solve_translation(Y, x), T, atol=2e-5, rtol=0)
    # the term is scale-free and ~0 for the true 3D in any unit
    assert float(projection_consistency(1000.0 * Y, x)) < 1e-8
    # and grows with a wrong pose (depth flipped)
    flipped = Y * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    assert float(projection_consistency(flipped, x)) > 1e-4
    with pytest.raises(ValueError, match="x: expected shape"):
        projection_consistency(Y, x[:, :5])
    with pytest.raises(ValueError, match="pred"):
        projection_consistency(Y[..., :2], x)
    with pytest.raises(ValueError, match="weights"):
        projection_consistency(Y, x, torch.ones(40, 3, dtype=torch.float64))


def test_correction_gradient_moves_towards_the_2d(lifting):
    Y = torch.as_tensor(lifting.truth[:16])
    T = torch.tensor([0.0, 0.0, 5.0], dtype=torch.float64)
    x = ((Y + T)[..., :2] / (Y + T)[..., 2:])
    g = torch.Generator().manual_seed(0)
    pred = (Y + 0.05 * torch.randn(Y.shape, generator=g, dtype=torch.float64)).requires_grad_()
    opt = torch.optim.Adam([pred], lr=2e-3)
    first = float(projection_consistency(pred.detach(), x))
    for _ in range(100):
        loss = projection_consistency(pred, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(projection_consistency(pred.detach(), x)) < 0.3 * first


# --- label sources --------------------------------------------------------------------------

def test_truth_labels_are_the_camera_frame(people):
    rig = people.rig
    lab = truth_labels(people.X, rig.R, rig.t)
    np.testing.assert_allclose(lab.X_cam, camera_frame(people.X, rig.R, rig.t))
    assert lab.valid.all() and lab.weights.shape == people.x.shape[:3]


def test_rig_pseudo_labels_come_from_the_geometry(people):
    rig = people.rig
    lab = pseudo_labels(people.x, rig.K, people.confidence, mode="rig",
                        image_size=rig.image_size, seed=0)
    assert lab.source == "make_pseudo_labels(mode='rig')"
    assert lab.X_cam.shape == people.x.shape[:3] + (3,) and lab.X_cam.dtype == np.float64
    assert lab.valid.mean() > 0.9
    truth = camera_frame(people.X, rig.R, rig.t)
    ok = lab.valid
    err = n_mpjpe(lab.X_cam[ok], truth[ok], root=0, mask=lab.weights[ok] > 0)
    assert np.median(err) < 0.03                             # metres: 2 px detections
    tn, _ = normalize_scale(truth)
    assert np.median(n_mpjpe(np.zeros_like(tn[ok]) + tn[ok].mean(0), truth[ok], root=0)) > 0.05
    assert "median_reprojection_px" in lab.info
