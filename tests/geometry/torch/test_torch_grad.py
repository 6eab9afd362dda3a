"""geometry.torch gradients: torch.autograd.gradcheck (float64, central differences) on the
differentiable functions — DLT triangulation in P, x and weights; Sampson and symmetric
epipolar distances; F from projections; Hartley normalisation; the vector median's value."""
import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

import geometry as geo
import geometry.torch as gt

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def views():
    sc = geo.make_multiview_scene(2, 4, noise=1.0, outlier_ratio=0.0, seed=1)
    P = geo.projection_matrix(sc.rig.K, sc.rig.R, sc.rig.t)           # (4, 3, 4)
    x = np.moveaxis(sc.x, 0, 1)                                       # (2, 4, 4, 2)
    return torch.as_tensor(P), torch.as_tensor(x)


def test_gradcheck_dlt_in_cameras_pixels_and_weights(views):
    P, x = views
    w = torch.rand(x.shape[:-1], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    w = (w + 0.5).requires_grad_()
    # pixels in units of 1000 px (P's image rows likewise) so every input is O(1) and central
    # differences are well conditioned
    S = torch.tensor([1e3, 1e3, 1.0], dtype=torch.float64)[:, None]
    xs = (x / 1e3).requires_grad_()
    Ps = (P / S).requires_grad_()

    def f(Pv, xv, wv):
        r = gt.triangulate_dlt(Pv * S, xv * 1e3, weights=wv)
        return r.X, r.reproj_error
    assert gradcheck(f, (Ps, xs, w), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_dlt_gradient_is_zero_for_invalid_points_and_nan_free(views):
    P, x = views
    x = x.clone()
    x[:, 1:, 0] = float("nan")                # point 0 seen by one view only → invalid
    xs = x.clone().requires_grad_()
    r = gt.triangulate_dlt(P, xs)
    assert not bool(r.valid[:, 0].any()) and bool(r.valid[:, 1:].all())
    (r.X.sum() + r.reproj_error.sum()).backward()
    g = xs.grad
    assert bool(torch.isfinite(g).all())       # NaN inputs give zero, not NaN, gradients
    assert float(g[:, :, 0].abs().max()) == 0.0
    assert float(g[:, :, 1:].abs().max()) > 0.0


def test_gradcheck_dlt_float32_gradients_match_float64(views):
    P, x = views
    x64 = x.clone().requires_grad_()
    x32 = x.float().requires_grad_()
    gt.triangulate_dlt(P, x64).X.sum().backward()
    gt.triangulate_dlt(P.float(), x32).X.sum().backward()
    rel = (x32.grad.double() - x64.grad).abs().max() / x64.grad.abs().max()
    assert rel < 1e-3


def test_gradcheck_epipolar_distances_and_fundamental_from_projections(views):
    P, x = views
    P = P / P.abs().amax((-1, -2), keepdim=True)
    F = gt.fundamental_from_projections(P[0], P[1]).detach()
    x1 = (x[0, 0] / 100).requires_grad_()
    x2 = (x[0, 1] / 100 + 0.01).requires_grad_()  # off the epipolar lines: nonzero residuals
    Fv = (F + 0.01 * torch.randn(3, 3, dtype=torch.float64,
                                 generator=torch.Generator().manual_seed(1))).requires_grad_()
    for fn in (gt.sampson_distance, gt.symmetric_epipolar_distance):
        assert gradcheck(lambda f, a, b: fn(f, a * 100, b * 100), (Fv, x1, x2), eps=1e-6,
                         atol=1e-5)
    Pa = P[0].clone().requires_grad_()
    Pb = P[1].clone().requires_grad_()
    assert gradcheck(gt.fundamental_from_projections, (Pa, Pb), eps=1e-6, atol=1e-5)


def test_gradcheck_hartley_normalize_and_vector_median_value():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 6, 2, dtype=torch.float64, generator=g).requires_grad_()
    assert gradcheck(lambda v: gt.hartley_normalize(v)[0], (x,), eps=1e-6, atol=1e-6)
    X = torch.randn(4, 5, 3, dtype=torch.float64, generator=g).requires_grad_()
    assert gradcheck(lambda v: gt.vector_median(v).X, (X,), eps=1e-6, atol=1e-6)
    r = gt.vector_median(X)
    r.X.sum().backward()
    # the gradient selects the chosen member: ones there, zeros elsewhere
    sel = torch.zeros(4, 5, dtype=torch.bool)
    sel[torch.arange(4), r.index] = True
    assert bool((X.grad[sel] == 1).all()) and bool((X.grad[~sel] == 0).all())
