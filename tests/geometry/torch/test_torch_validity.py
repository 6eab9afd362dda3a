"""geometry.torch validity contract, as the numpy path: too few or no points, float16/bfloat16
input (computed in float32, returned in the input dtype), NaN/inf and astronomically scaled
coordinates → ``valid=False`` results with finite placeholders (never RuntimeError,
NotImplementedError or LinAlgError), and the same validity flags as :mod:`geometry`."""
import warnings

import numpy as np
import pytest
import torch

import geometry as geo
import geometry.torch as gt

torch.set_num_threads(1)
HALF = (torch.float16, torch.bfloat16)


@pytest.fixture(scope="module")
def scene():
    return geo.make_two_view_scene(6, 17, noise=1.0, outlier_ratio=0.1, seed=11)


def T(a, dt=torch.float64):
    return torch.as_tensor(np.ascontiguousarray(a), dtype=dt)


def _finite(*ts):
    return all(bool(torch.isfinite(t).all()) for t in ts if t.is_floating_point())


def _projections(sc, dt=torch.float64):
    P1 = T(sc.K1, dt) @ torch.eye(3, 4, dtype=dt)
    P2 = T(sc.K2, dt) @ torch.cat([T(sc.R, dt), T(sc.t, dt)[..., None]], -1)
    return P1, P2


@pytest.mark.parametrize("n", [0, 5])
def test_too_few_points_give_invalid_results_like_numpy(scene, n):
    x1, x2 = scene.x1[:, :n], scene.x2[:, :n]
    rn = geo.estimate_fundamental(x1, x2)
    rt = gt.estimate_fundamental(T(x1), T(x2))
    assert not rn.valid.any() and not bool(rt.valid.any())
    assert rt.F.shape == (6, 3, 3) and rt.inliers.shape == (6, n)
    assert float(rt.F.abs().max()) == 0 and int(rt.num_inliers.max()) == 0
    pn = geo.estimate_relative_pose(x1, x2, scene.K1, scene.K2)
    pt = gt.estimate_relative_pose(T(x1), T(x2), T(scene.K1), T(scene.K2))
    assert not pn.valid.any() and not bool(pt.valid.any())
    assert torch.equal(pt.R, torch.eye(3, dtype=torch.float64).expand(6, 3, 3))
    assert _finite(pt.R, pt.t, pt.F, pt.E) and pt.inliers.shape == (6, n)
    F8, v8 = gt.fundamental_8point(T(x1), T(x2))
    assert not geo.fundamental_8point(x1, x2)[1].any() and not bool(v8.any())
    assert F8.shape == (6, 3, 3) and float(F8.abs().max()) == 0
    E = gt.essential_from_fundamental(T(scene.F), T(scene.K1), T(scene.K2))
    p = gt.recover_pose(E, T(x1), T(x2), T(scene.K1), T(scene.K2))
    assert p.in_front.shape == (6, n) and _finite(p.R, p.t)
    assert bool(p.valid.all()) == (n > 0)          # cheirality needs one point, not eight


def test_triangulation_and_median_of_empty_sets(scene):
    P1, P2 = _projections(scene)
    x = torch.stack([T(scene.x1), T(scene.x2)], 1)[:, :, :0]               # (6, 2, 0, 2)
    d = gt.triangulate_dlt(torch.stack([P1, P2], 1), x)
    assert d.X.shape == (6, 0, 3) and d.valid.shape == (6, 0)
    o = gt.triangulate_optimal(x[:, 0], x[:, 1], P1, P2)
    assert o.X.shape == (6, 0, 3) and o.x1.shape == (6, 0, 2)
    m = gt.vector_median(torch.zeros(3, 0, 3, dtype=torch.float64))
    n = geo.vector_median(np.zeros((3, 0, 3)))
    assert not bool(m.valid.any()) and not n.valid.any()
    assert m.index.tolist() == n.index.tolist() == [-1, -1, -1] and float(m.X.abs().max()) == 0


@pytest.mark.parametrize("dt", HALF, ids=["float16", "bfloat16"])
def test_half_precision_is_computed_in_float32_and_returned_in_its_dtype(scene, dt):
    """Every function on float16/bfloat16 gives exactly the float32 result on the same (rounded)
    values, cast back to the input dtype; the solvers find solutions (float16 pixels are exact
    to 0.5 px here, bfloat16 to 4 px)."""
    h = {k: T(getattr(scene, k)).to(dt) for k in ("x1", "x2", "K1", "K2")}
    f = {k: v.float() for k, v in h.items()}

    def same(a, b):
        assert a.dtype == (dt if b.is_floating_point() else b.dtype)
        assert torch.equal(a, b.to(dt) if b.is_floating_point() else b)

    a = gt.estimate_fundamental(h["x1"], h["x2"], seed=1)
    b = gt.estimate_fundamental(f["x1"], f["x2"], seed=1)
    for k in ("F", "inliers", "num_inliers", "valid"):
        same(getattr(a, k), getattr(b, k))
    assert bool(b.valid.any())
    a = gt.estimate_relative_pose(h["x1"], h["x2"], h["K1"], h["K2"], seed=1)
    b = gt.estimate_relative_pose(f["x1"], f["x2"], f["K1"], f["K2"], seed=1)
    for k in ("R", "t", "F", "E", "inliers", "valid"):
        same(getattr(a, k), getattr(b, k))
    for a, b in zip(gt.fundamental_8point(h["x1"], h["x2"]), gt.fundamental_8point(f["x1"], f["x2"])):
        same(a, b)
    F7, c7 = gt.fundamental_7point(h["x1"][:, :7], h["x2"][:, :7])
    G7, d7 = gt.fundamental_7point(f["x1"][:, :7], f["x2"][:, :7])
    same(F7, G7)
    assert torch.equal(c7, d7) and bool((c7 >= 1).all())                  # solutions found
    Fh = T(scene.F).to(dt) * 1e4 if dt == torch.float16 else T(scene.F).to(dt)  # no underflow
    same(gt.sampson_distance(Fh, h["x1"], h["x2"]),
         gt.sampson_distance(Fh.float(), f["x1"], f["x2"]))
    same(gt.symmetric_epipolar_distance(Fh, h["x1"], h["x2"]),
         gt.symmetric_epipolar_distance(Fh.float(), f["x1"], f["x2"]))
    Eh = gt.essential_from_fundamental(Fh, h["K1"], h["K2"])
    same(Eh, gt.essential_from_fundamental(Fh.float(), f["K1"], f["K2"]))
    for a, b in zip(gt.decompose_essential(Eh), gt.decompose_essential(Eh.float())):
        same(a, b)
    pa = gt.recover_pose(Eh, h["x1"], h["x2"], h["K1"], h["K2"])
    pb = gt.recover_pose(Eh.float(), f["x1"], f["x2"], f["K1"], f["K2"])
    for k in ("R", "t", "in_front", "valid"):
        same(getattr(pa, k), getattr(pb, k))
    assert bool(pb.valid.all())
    P1, P2 = _projections(scene, torch.float32)
    P1, P2 = P1.to(dt), P2.to(dt)
    xh = torch.stack([h["x1"], h["x2"]], 1)
    da = gt.triangulate_dlt(torch.stack([P1, P2], 1), xh)
    db = gt.triangulate_dlt(torch.stack([P1, P2], 1).float(), xh.float())
    for k in ("X", "valid", "reproj_error"):
        same(getattr(da, k), getattr(db, k))
    assert bool(db.valid.any())
    # P entries ~1e3: products of four of them overflow float16 if computed there
    same(gt.fundamental_from_projections(P1, P2),
         gt.fundamental_from_projections(P1.float(), P2.float()))
    oa = gt.triangulate_optimal(h["x1"], h["x2"], P1, P2)
    ob = gt.triangulate_optimal(f["x1"], f["x2"], P1.float(), P2.float())
    for k in ("X", "x1", "valid"):
        same(getattr(oa, k), getattr(ob, k))
    ma, mb = gt.vector_median(h["x1"]), gt.vector_median(f["x1"])  # distances² > 65504 px²
    same(ma.X, mb.X)
    assert torch.equal(ma.index, mb.index)
    xn, Tn = gt.hartley_normalize(h["x1"])
    xm, Tm = gt.hartley_normalize(f["x1"])
    same(xn, xm)
    same(Tn, Tm)


def _bad_coordinates(sc):
    x1 = sc.x1.copy()
    x1[0] = np.nan                       # no point
    x1[1, :3] = np.inf                   # three missing points, still solvable
    x1[2] *= 1e160                       # astronomically scaled image 1
    x1[3, 0] = 1e308                     # one point at the float64 limit
    x1[4] = 1e308                        # every point there (the centroid overflows)
    x1[4, ::2] = -1e308
    return x1


def test_non_finite_and_huge_coordinates_give_numpys_validity(scene):
    x1 = _bad_coordinates(scene)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)                   # numpy's overflow notes
        rn = geo.estimate_fundamental(x1, scene.x2)
        Fn, vn = geo.fundamental_8point(x1, scene.x2)
        pn = geo.estimate_relative_pose(x1, scene.x2, scene.K1, scene.K2)
        hn = geo.hartley_normalize(x1)
    rt = gt.estimate_fundamental(T(x1), T(scene.x2))
    np.testing.assert_array_equal(rt.valid.numpy(), rn.valid)
    assert rn.valid[[1, 5]].all() and _finite(rt.F)
    Ft, vt = gt.fundamental_8point(T(x1), T(scene.x2))
    np.testing.assert_array_equal(vt.numpy(), vn)
    assert vn[2] and _finite(Ft)                   # the 1e160-scaled problem is solvable
    np.testing.assert_allclose(Ft.numpy(), Fn, atol=1e-9)
    pt = gt.estimate_relative_pose(T(x1), T(scene.x2), T(scene.K1), T(scene.K2))
    np.testing.assert_array_equal(pt.valid.numpy(), pn.valid)
    assert _finite(pt.R, pt.t, pt.F, pt.E)
    xt, Tt = gt.hartley_normalize(T(x1))
    assert _finite(Tt)
    np.testing.assert_allclose(Tt.numpy(), hn[1], rtol=1e-12, atol=0)
    # float32: coordinates whose squares overflow it (1e20..1e30) are no longer a NaN hazard
    x32 = T(scene.x1, torch.float32)
    x32[0, 0] = 1e30
    x32[1] *= 1e20
    F32, v32 = gt.fundamental_8point(x32, T(scene.x2, torch.float32))
    assert _finite(F32) and bool(v32[2:].all())


def test_scaled_matrices_give_the_unscaled_results(scene):
    """E, its decomposition and the cheirality test are scale-free: F, E or K multiplied by 1e300
    give the unscaled result (not an overflow to inf/NaN or identity placeholders)."""
    F, K1, K2 = T(scene.F), T(scene.K1), T(scene.K2)
    E = gt.essential_from_fundamental(F, K1, K2)
    torch.testing.assert_close(gt.essential_from_fundamental(F * 1e300, K1, K2), E)
    torch.testing.assert_close(gt.essential_from_fundamental(F, K1 * 1e300, K2 * 1e-300), E)
    for a, b in zip(gt.decompose_essential(E * 1e300), gt.decompose_essential(E)):
        torch.testing.assert_close(a, b)
    x1, x2 = T(scene.x1), T(scene.x2)
    p = gt.recover_pose(E, x1, x2, K1, K2)
    q = gt.recover_pose(E * 1e300, x1, x2, K1 * 1e300, K2)
    assert bool(p.valid.all()) and torch.equal(p.valid, q.valid)
    torch.testing.assert_close(q.R, p.R)
    assert geo.rotation_error_deg(q.R.numpy(), scene.R).max() < 1e-5
