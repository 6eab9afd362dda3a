"""geometry.torch contract: float32/float64 in → same dtype out, masks, fully masked problems
(valid=False, NaN-free placeholders), bad arguments (ValueError naming the argument), batch-split
invariance, and no host synchronisation inside the batched computation (run on the meta device,
where any .item()/bool()/nonzero fails, with host→device constructors trapped)."""
import contextlib

import numpy as np
import pytest
import torch

import geometry as geo
import geometry.torch as gt
from geometry.torch.epipolar import essential, relative_pose
from geometry.torch.triangulation import fusion, two_view as triangulation
from geometry.torch.triangulation import hartley_sturm as _hs

torch.set_num_threads(1)
DTYPES = (torch.float32, torch.float64)


@pytest.fixture(scope="module")
def pairs():
    sc = geo.make_two_view_scene(12, 17, noise=1.0, outlier_ratio=0.1, seed=8)
    return sc


def _t(a, dt):
    return torch.as_tensor(np.ascontiguousarray(a), dtype=dt)


def _finite(*ts):
    return all(bool(torch.isfinite(t).all()) for t in ts if t.is_floating_point())


@pytest.mark.parametrize("dt", DTYPES)
def test_dtypes_masks_and_fully_masked_problems(pairs, dt):
    x1, x2, K1, K2 = (_t(a, dt) for a in (pairs.x1, pairs.x2, pairs.K1, pairs.K2))
    x1[1, :5] = float("nan")                              # NaN marks missing points
    m = torch.ones(12, 17, dtype=torch.bool)
    m[0] = False                                          # problem 0 fully masked
    m[2, 3:] = False                                      # problem 2: 3 points left
    r = gt.estimate_relative_pose(x1, x2, K1, K2, m, max_iterations=32)
    assert r.R.dtype == dt and r.t.dtype == dt and r.F.dtype == dt
    assert not bool(r.valid[0]) and not bool(r.valid[2]) and bool(r.valid[3:].all())
    assert _finite(r.R, r.t, r.F, r.E)
    assert torch.equal(r.R[0], torch.eye(3, dtype=dt)) and float(r.t[0].abs().sum()) == 0
    assert not bool(r.inliers[0].any()) and not bool(r.inliers[1, :5].any())
    assert int(r.num_inliers[0]) == 0 and int(r.num_in_front[0]) == 0
    f = gt.estimate_fundamental(x1, x2, m, max_iterations=32)
    assert f.F.dtype == dt and not bool(f.valid[0]) and float(f.F[0].abs().sum()) == 0
    F8, v8 = gt.fundamental_8point(x1, x2, m)
    assert F8.dtype == dt and not bool(v8[0]) and not bool(v8[2]) and bool(v8[3:].all())
    p = gt.recover_pose(_t(pairs.F, dt), x1, x2, K1, K2, torch.zeros_like(m))
    assert not bool(p.valid.any()) and _finite(p.R, p.t)
    P = torch.stack([K1 @ torch.eye(3, 4, dtype=dt).expand(12, 3, 4),
                     K2 @ torch.cat([_t(pairs.R, dt), _t(pairs.t, dt)[..., None]], -1)], 1)
    xs = torch.stack([x1, x2], 1)
    ms = torch.stack([m, m], 1)
    d = gt.triangulate_dlt(P, xs, ms)
    assert d.X.dtype == dt and not bool(d.valid[0].any()) and not bool(d.valid[1, :5].any())
    assert _finite(d.X, d.reproj_error) and float(d.X[0].abs().sum()) == 0
    o = gt.triangulate_optimal(x1, x2, P[:, 0], P[:, 1], mask=m)
    assert o.X.dtype == dt and not bool(o.valid[0].any()) and not bool(o.valid[1, :5].any())
    assert _finite(o.X, o.x1, o.x2, o.reproj_error)
    assert bool(o.valid[3:].all())
    v = gt.vector_median(d.X, d.valid)
    assert v.X.dtype == dt and not bool(v.valid[0]) and bool(v.valid[1:].all())
    assert int(v.index[0]) == -1 and _finite(v.X)


def test_batch_split_and_chunking_give_identical_results(pairs):
    x1, x2, K1, K2 = (_t(a, torch.float64) for a in (pairs.x1, pairs.x2, pairs.K1, pairs.K2))
    a = gt.estimate_relative_pose(x1, x2, K1, K2, max_iterations=32, seed=3)
    b = gt.estimate_relative_pose(x1, x2, K1, K2, max_iterations=32, seed=3, chunk_size=5)
    c = gt.estimate_relative_pose(x1[7:], x2[7:], K1[7:], K2[7:], max_iterations=32, seed=3)
    # the same samples and decisions; floats to rounding (batched BLAS/LAPACK block by size)
    for f in ("inliers", "valid", "num_inliers", "num_in_front"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f
        assert torch.equal(getattr(a, f)[7:], getattr(c, f)), f
    for f in ("R", "t", "F"):
        torch.testing.assert_close(getattr(a, f), getattr(b, f), rtol=0, atol=1e-10)
        torch.testing.assert_close(getattr(a, f)[7:], getattr(c, f), rtol=0, atol=1e-10)
    d = gt.estimate_relative_pose(x1, x2, K1, K2, max_iterations=32, seed=4)
    assert not torch.equal(a.F, d.F)                       # the seed matters


def test_leading_batch_dims_broadcast(pairs):
    x1 = _t(pairs.x1, torch.float64).reshape(3, 4, 17, 2)
    x2 = _t(pairs.x2, torch.float64).reshape(3, 4, 17, 2)
    K = _t(pairs.K1[0], torch.float64)                     # one K for every problem
    r = gt.estimate_relative_pose(x1, x2, K, K, max_iterations=32)
    assert r.R.shape == (3, 4, 3, 3) and r.inliers.shape == (3, 4, 17)
    flat = gt.estimate_relative_pose(x1.reshape(12, 17, 2), x2.reshape(12, 17, 2), K, K,
                                     max_iterations=32)
    torch.testing.assert_close(r.R.reshape(12, 3, 3), flat.R, rtol=0, atol=1e-10)
    assert torch.equal(r.inliers.reshape(12, 17), flat.inliers)


def _bad_calls():
    x = torch.zeros(2, 17, 2, dtype=torch.float64)
    K = torch.eye(3, dtype=torch.float64)
    P = torch.zeros(2, 3, 4, dtype=torch.float64)
    xv = torch.zeros(2, 5, 2, dtype=torch.float64)
    return [
        ("x2", lambda: gt.estimate_relative_pose(x, x[:, :16], K, K)),
        ("x1", lambda: gt.estimate_fundamental(x[..., :1], x, None)),
        ("K1", lambda: gt.estimate_relative_pose(x, x, torch.eye(2), K)),
        ("K2", lambda: gt.estimate_relative_pose(x, x, K, torch.full((3, 3), float("nan")))),
        ("mask", lambda: gt.estimate_fundamental(x, x, torch.ones(2, 16, dtype=torch.bool))),
        ("threshold", lambda: gt.estimate_fundamental(x, x, threshold=-1.0)),
        ("max_iterations", lambda: gt.estimate_fundamental(x, x, max_iterations=0)),
        ("chunk_size", lambda: gt.estimate_relative_pose(x, x, K, K, chunk_size=0)),
        ("E", lambda: gt.recover_pose(torch.zeros(3, 4), x, x, K, K)),
        ("F", lambda: gt.essential_from_fundamental(torch.zeros(2, 3), K, K)),
        ("P", lambda: gt.triangulate_dlt(torch.zeros(3, 3, 4), xv)),
        ("x", lambda: gt.triangulate_dlt(P, torch.zeros(2, 5, 3))),
        ("weights", lambda: gt.triangulate_dlt(P, xv, weights=-torch.ones(2, 5))),
        ("P1", lambda: gt.triangulate_optimal(xv[0], xv[1], torch.zeros(3, 3), P[1])),
        ("x1", lambda: gt.fundamental_7point(x[:, :6], x[:, :6])),
        ("X", lambda: gt.vector_median(torch.zeros(4))),
        ("axis", lambda: gt.vector_median(torch.zeros(3, 4, 3), axis=-1)),
        ("mask", lambda: gt.vector_median(torch.zeros(3, 4, 3), torch.ones(3, 5, dtype=torch.bool))),
    ]


@pytest.mark.parametrize("name,call", _bad_calls(), ids=[n for n, _ in _bad_calls()])
def test_bad_arguments_raise_value_error_naming_them(name, call):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()


def test_benchmark_gpu_calls_run_on_cpu():
    """The calls benchmarks/two_view.py and triangulation.py make with ``--device cuda``, on CPU
    with the same dtypes and shapes (float32 pose batch; float64 one camera pair, many points)."""
    scene = geo.make_multiview_scene(3, 17, noise=2.0, outlier_ratio=0.1, seed=0)
    sc = geo.two_view_from_multiview(scene)
    dev = dict(device="cpu", dtype=torch.float32)
    x1, x2 = torch.as_tensor(sc.x1, **dev), torch.as_tensor(sc.x2, **dev)
    K1, K2 = torch.as_tensor(sc.K1, **dev), torch.as_tensor(sc.K2, **dev)
    rel = gt.estimate_relative_pose(x1, x2, K1, K2, seed=0)
    ok = rel.valid.cpu().numpy()
    assert rel.R.dtype == torch.float32 and ok.mean() > 0.8
    R = rel.R[rel.valid].double()
    eye = torch.eye(3, dtype=torch.float64).expand_as(R)
    torch.testing.assert_close(R.transpose(-1, -2) @ R, eye, rtol=0, atol=1e-5)
    torch.testing.assert_close(rel.t[rel.valid].double().norm(dim=-1),
                               torch.ones(R.shape[0], dtype=torch.float64), rtol=0, atol=1e-5)
    # per-frame poses from 17 noisy joints are poor for every method (numpy ~29° median on
    # this ring); float32 torch must be in the same range, not broken
    rn = geo.estimate_relative_pose(sc.x1, sc.x2, sc.K1, sc.K2, seed=0)
    err = geo.rotation_error_deg(rel.R.double().cpu().numpy(), sc.R)[ok]
    err_n = geo.rotation_error_deg(rn.R, sc.R)[rn.valid]
    assert np.median(err) < 2 * np.median(err_n) + 5
    P = geo.projection_matrix(scene.rig.K, scene.rig.R, scene.rig.t)
    d = dict(device="cpu", dtype=torch.float64)
    r = gt.triangulate_optimal(torch.as_tensor(scene.x[0].reshape(-1, 2), **d),
                               torch.as_tensor(scene.x[1].reshape(-1, 2), **d),
                               torch.as_tensor(P[0], **d), torch.as_tensor(P[1], **d))
    inl = ~(scene.outlier[0] | scene.outlier[1]).reshape(-1)
    e = np.linalg.norm(r.X.cpu().numpy() - scene.X.reshape(-1, 3), axis=-1)[inl]
    assert r.valid.cpu().numpy()[inl].all() and np.median(e) < 0.05   # metres


# --------------------------------------------------------------------------- host sync
@contextlib.contextmanager
def _no_host_transfers():
    """Trap the constructors that copy host data to the device and explicit readbacks."""
    calls = []
    saved = {}

    def trap(owner, name):
        orig = getattr(owner, name)
        saved[(owner, name)] = orig

        def wrapper(*a, **k):
            # torch.as_tensor(t, device=t.device) of a tensor already there copies nothing
            if not (name == "as_tensor" and a and isinstance(a[0], torch.Tensor)
                    and torch.device(k.get("device", a[0].device)) == a[0].device):
                calls.append(name)
            return orig(*a, **k)
        setattr(owner, name, wrapper)
    for name in ("tensor", "as_tensor", "from_numpy"):
        trap(torch, name)
    for name in ("cpu", "tolist", "numpy", "item"):
        trap(torch.Tensor, name)
    try:
        yield calls
    finally:
        for (owner, name), orig in saved.items():
            setattr(owner, name, orig)


@pytest.mark.parametrize("dt", DTYPES)
def test_hot_paths_have_no_host_synchronisation(dt):
    meta = dict(device="meta", dtype=dt)
    B, N = 5, 17
    x = torch.empty(B, N, 2, **meta)
    use = torch.ones(B, N, dtype=torch.bool, device="meta")
    K = torch.empty(B, 3, 3, **meta)
    P = torch.empty(B, 3, 3, 4, **meta)
    with _no_host_transfers() as calls:
        out = relative_pose._pose_chunk(x, x, use, K, K, 3.0, 8, 0, True, 1, 50.0, 2)
        assert out[0].shape == (B, 3, 3) and out[4].shape == (B, N)
        essential.recover_core(K, x, x, K, K, use, 50.0, 2)
        triangulation._dlt_core(P, x[:, None].expand(B, 3, N, 2), use[:, None].expand(B, 3, N),
                                torch.ones(B, 3, N, **meta), x[:, None].expand(B, 3, N, 2))
        f64 = dict(device="meta", dtype=torch.float64)
        F, xa = torch.empty(B, 3, 3, **f64), torch.empty(B, N, 2, **f64)
        _hs.correct_matches(F, xa, xa, use, chunk_size=2)
        triangulation._distinct_centres(torch.empty(B, 3, 4, **f64), torch.empty(B, 3, 4, **f64))
        fusion.vector_median(torch.empty(B, 7, 3, **meta), use[:, :7])
    assert calls == []
