"""Metrics against independent reference formulas, and their invariances."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pose import (H36M_17, auc, bone_length_consistency, fit_pss, joint_errors, load_pss, mpjpe,
                  n_mpjpe, pa_mpjpe, pck3d, pss, make_motion)
from pose.metrics import procrustes_align


def _poses(rng, n=20, J=17):
    gt = rng.normal(0, 0.3, (n, J, 3))
    pred = gt + rng.normal(0, 0.05, (n, J, 3))
    return pred, gt


def test_mpjpe_reference_loop(rng):
    pred, gt = _poses(rng)
    ref = np.array([np.mean([np.sqrt(np.sum((pred[i, j] - gt[i, j]) ** 2)) for j in range(17)])
                    for i in range(len(gt))])
    np.testing.assert_allclose(mpjpe(pred, gt), ref, rtol=1e-12)
    rr = np.array([np.mean([np.linalg.norm((pred[i, j] - pred[i, 0]) - (gt[i, j] - gt[i, 0]))
                            for j in range(17)]) for i in range(len(gt))])
    np.testing.assert_allclose(mpjpe(pred, gt, root=0), rr, rtol=1e-12)
    assert mpjpe(pred, gt, per_joint=True).shape == (20, 17)


def test_mpjpe_mask_and_nan(rng):
    pred, gt = _poses(rng, 3)
    m = np.ones((3, 17), bool)
    m[0, 5:] = False
    m[2] = False
    out = mpjpe(pred, gt, mask=m)
    np.testing.assert_allclose(out[0], np.linalg.norm(pred[0, :5] - gt[0, :5], axis=-1).mean())
    assert np.isnan(out[2])
    p2 = pred.copy()
    p2[1, 3] = np.nan
    np.testing.assert_allclose(mpjpe(p2, gt)[1], np.delete(
        np.linalg.norm(pred[1] - gt[1], axis=-1), 3).mean())


def test_root_relative_removes_translation(rng):
    pred, gt = _poses(rng)
    shifted = pred + rng.normal(0, 1, (20, 1, 3))
    np.testing.assert_allclose(mpjpe(shifted, gt, root=0), mpjpe(pred, gt, root=0), atol=1e-12)
    assert np.all(mpjpe(shifted, gt) > mpjpe(pred, gt) - 1e-12)


def test_n_mpjpe_scale_invariant_and_reference(rng):
    pred, gt = _poses(rng)
    s = rng.uniform(0.3, 3.0, (20, 1, 1))
    a = n_mpjpe(pred, gt, root=0)
    np.testing.assert_allclose(n_mpjpe(pred * s, gt, root=0), a, rtol=1e-10)
    # reference: numerical minimisation of the squared error over the scale
    from scipy.optimize import minimize_scalar
    p0, g0 = pred - pred[:, :1], gt - gt[:, :1]
    for i in range(3):
        best = minimize_scalar(lambda c: np.sum((c * p0[i] - g0[i]) ** 2), bounds=(0.1, 10),
                               method="bounded", options={"xatol": 1e-12}).x
        np.testing.assert_allclose(n_mpjpe(pred[i], gt[i], root=0),
                                   np.linalg.norm(best * p0[i] - g0[i], axis=-1).mean(),
                                   rtol=1e-8)
    # (the fitted scale minimises squared error, so N-MPJPE < MPJPE only on average)
    assert a.mean() < mpjpe(pred, gt, root=0).mean()


def test_pa_mpjpe_similarity_invariance(rng):
    pred, gt = _poses(rng)
    R = Rotation.random(20, random_state=1).as_matrix()
    s = rng.uniform(0.2, 5.0, 20)
    t = rng.normal(0, 3, (20, 3))
    moved = s[:, None, None] * np.einsum("bij,bnj->bni", R, pred) + t[:, None]
    np.testing.assert_allclose(pa_mpjpe(moved, gt), pa_mpjpe(pred, gt), rtol=1e-9)
    # exact similarity copy of gt → 0
    exact = s[:, None, None] * np.einsum("bij,bnj->bni", R, gt) + t[:, None]
    np.testing.assert_allclose(pa_mpjpe(exact, gt), 0, atol=1e-10)
    assert pa_mpjpe(pred, gt).mean() < n_mpjpe(pred, gt, root=0).mean()


def test_procrustes_matches_scipy_orthogonal_procrustes(rng):
    from scipy.linalg import orthogonal_procrustes
    pred, gt = _poses(rng, 1)
    p0, g0 = pred[0] - pred[0].mean(0), gt[0] - gt[0].mean(0)
    Rr, sc = orthogonal_procrustes(p0, g0)  # p0 @ Rr ≈ g0
    s_ref = sc / np.sum(p0 ** 2)
    _, s, R, _ = procrustes_align(pred[0], gt[0])
    assert np.linalg.det(Rr) > 0  # generic data: no reflection
    np.testing.assert_allclose(R, Rr.T, atol=1e-10)
    np.testing.assert_allclose(s, s_ref, rtol=1e-10)


def test_pa_mpjpe_never_uses_reflection():
    gt = np.random.default_rng(3).normal(size=(17, 3))
    mirrored = gt * np.array([-1, 1, 1])
    _, _, R, _ = procrustes_align(mirrored, gt)
    assert np.linalg.det(R) > 0.999
    assert pa_mpjpe(mirrored, gt) > 0.1


def test_pck_and_auc_reference(rng):
    pred, gt = _poses(rng)
    e = np.linalg.norm(pred - gt, axis=-1)
    np.testing.assert_allclose(pck3d(pred, gt), (e < 0.15).mean(-1))
    np.testing.assert_allclose(pck3d(pred, gt, threshold=0.05), (e < 0.05).mean(-1))
    th = np.linspace(0, 0.15, 31)
    np.testing.assert_allclose(auc(pred, gt), np.mean([(e < a).mean(-1) for a in th], 0))
    np.testing.assert_allclose(joint_errors(pred, gt), e)


def test_bad_arguments():
    with pytest.raises(ValueError, match="gt"):
        mpjpe(np.zeros((2, 17, 3)), np.zeros((2, 16, 3)))
    with pytest.raises(ValueError, match="pred"):
        mpjpe(np.zeros((2, 17, 2)), np.zeros((2, 17, 2)))
    with pytest.raises(ValueError, match="root"):
        mpjpe(np.zeros((2, 17, 3)), np.zeros((2, 17, 3)), root=40)
    with pytest.raises(ValueError, match="mask"):
        mpjpe(np.zeros((2, 17, 3)), np.zeros((2, 17, 3)), mask=np.ones((3, 17), bool))


def test_bone_length_consistency():
    X = make_motion("walk", 60, seed=0)
    assert bone_length_consistency(X).max() < 1e-12
    noisy = X + np.random.default_rng(0).normal(0, 0.01, X.shape)
    c = bone_length_consistency(noisy, H36M_17)
    assert c.shape == (16,) and np.all(c > 0.003) and np.all(c < 0.03)
    batched = bone_length_consistency(np.stack([X, noisy]))
    np.testing.assert_allclose(batched[1], c)


def test_pss_perfect_and_saved(tmp_path):
    from pose import make_people
    d = make_people(2, frames_per_clip=60, seed=1)
    model = fit_pss(d.X, k=10, seed=0)
    assert model.centres.shape == (10, 51)
    assert pss(d.X, d.X, model) == 1.0
    # scale and translation do not change the normalised pose
    assert pss(d.X * 1.7 + 3.0, d.X, model) == 1.0
    model.save(tmp_path / "pss.npz")
    again = load_pss(tmp_path / "pss.npz")
    np.testing.assert_array_equal(again.assign(d.X), model.assign(d.X))
    shuffled = d.X[np.random.default_rng(0).permutation(len(d.X))]
    assert pss(shuffled, d.X, model) < 0.6
    (tmp_path / "bad.npz").write_bytes(b"nope")
    np.savez(tmp_path / "bad.npz", other=np.zeros(3))
    with pytest.raises(ValueError, match="centres"):
        load_pss(tmp_path / "bad.npz")


def test_pss_k50_degrades_with_noise():
    from pose import make_people
    d = make_people(3, frames_per_clip=80, seed=2, noise=None)
    model = fit_pss(d.X, k=50, seed=1)
    assert model.k == 50
    rng = np.random.default_rng(0)
    scores = [pss(d.X + rng.normal(0, s, d.X.shape), d.X, model) for s in (0.0, 0.03, 0.3)]
    assert scores[0] == 1.0 and scores[0] > scores[1] > scores[2]
    assert pss(d.X, d.X, 20) == 1.0
    with pytest.raises(ValueError, match="k=50"):
        fit_pss(d.X[:10], k=50)


from hypothesis import given, settings, strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 8), st.data())
def test_metrics_never_crash_and_stay_in_range(B, J, data):
    vals = st.one_of(st.floats(-10, 10, width=64), st.just(np.nan))
    pred = data.draw(arrays(np.float64, (B, J, 3), elements=vals))
    gt = data.draw(arrays(np.float64, (B, J, 3), elements=vals))
    root = data.draw(st.sampled_from([None, 0]))
    for fn in (mpjpe, n_mpjpe, pa_mpjpe):
        v = fn(pred, gt, root=root)
        assert v.shape == (B,)
        assert np.all(np.isnan(v) | (v >= 0))
    p = pck3d(pred, gt, root=root)
    a = auc(pred, gt, root=root)
    ok = ~np.isnan(p)
    assert np.all((p[ok] >= 0) & (p[ok] <= 1)) and np.all(a[ok] <= p[ok] + 1e-12)
    # a pose with any finite joint pair is scored; exact copies score 0 error
    fin = np.isfinite(gt).all(-1)
    np.testing.assert_allclose(mpjpe(np.where(fin[..., None], gt, np.nan), gt)[fin.any(-1)], 0)
