"""geometry.fundamental: normalisation, 7-/8-point solvers, Sampson LS, epipolar distances."""
import cv2
import numpy as np
import pytest

from geometry import (fundamental_7point, fundamental_8point, fundamental_least_squares,
                      hartley_normalize, make_two_view_scene, sampson_distance,
                      symmetric_epipolar_distance)


def _same_up_to_sign(A, B):
    A = A / np.linalg.norm(A)
    B = B / np.linalg.norm(B)
    return min(np.abs(A - B).max(), np.abs(A + B).max())


def test_hartley_normalize_centroid_and_scale(rng):
    x = rng.uniform(0, 1000, (3, 20, 2))
    mask = np.ones((3, 20), bool)
    mask[0, :5] = False
    x[1, 3] = np.nan
    xn, T = hartley_normalize(x, mask)
    for b in range(3):
        use = mask[b] & np.isfinite(x[b]).all(-1)
        np.testing.assert_allclose(xn[b, use].mean(0), 0, atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(xn[b, use], axis=1).mean(), np.sqrt(2))
        h = np.c_[x[b, use], np.ones(use.sum())] @ T[b].T
        np.testing.assert_allclose(h[:, :2], xn[b, use], atol=1e-12)


def test_seven_point_exact_data_recovers_true_F():
    sc = make_two_view_scene(20, 7, structure="random", seed=1)
    F, count = fundamental_7point(sc.x1, sc.x2)
    assert F.shape == (20, 3, 3, 3) and np.all((count == 1) | (count == 3))
    for b in range(20):
        k = count[b]
        assert min(_same_up_to_sign(F[b, j], sc.F[b]) for j in range(k)) < 1e-7
        assert sampson_distance(F[b, :k], sc.x1[b], sc.x2[b]).max() < 1e-8
        assert np.all(np.abs(np.linalg.det(F[b, :k])) < 1e-10)
        assert np.all(F[b, k:] == 0)


def test_seven_point_degenerate_sample_gives_no_model():
    sc = make_two_view_scene(2, 7, seed=2)
    x1, x2 = sc.x1.copy(), sc.x2.copy()
    x1[0, :] = x1[0, 0]
    x2[0, :] = x2[0, 0]  # all coincident
    x1[1, 3] = np.nan
    F, count = fundamental_7point(x1, x2)
    assert list(count) == [0, 0] and np.all(F == 0)


def test_eight_point_exact_and_agrees_with_opencv():
    sc = make_two_view_scene(10, 25, structure="random", seed=3)
    F, valid = fundamental_8point(sc.x1, sc.x2)
    assert valid.all()
    assert sampson_distance(F, sc.x1, sc.x2).max() < 1e-8
    assert max(_same_up_to_sign(F[b], sc.F[b]) for b in range(10)) < 1e-8
    noisy = make_two_view_scene(10, 25, noise=1.0, seed=4)
    F, valid = fundamental_8point(noisy.x1, noisy.x2)
    for b in range(10):
        Fc, _ = cv2.findFundamentalMat(noisy.x1[b], noisy.x2[b], cv2.FM_8POINT)
        assert _same_up_to_sign(F[b], Fc) < 1e-6


def test_eight_point_weights_and_mask():
    sc = make_two_view_scene(4, 20, noise=0.5, seed=5)
    x2 = sc.x2.copy()
    x2[:, 0] += 80.0  # an outlier
    w = np.ones((4, 20))
    w[:, 0] = 0.0
    Fw, vw = fundamental_8point(sc.x1, x2, weights=w)
    mask = w > 0
    Fm, vm = fundamental_8point(sc.x1, x2, mask=mask)
    np.testing.assert_allclose(Fw, Fm, atol=1e-10)
    assert vw.all() and vm.all()
    F7, v7 = fundamental_8point(sc.x1[:, :7], sc.x2[:, :7])
    assert not v7.any() and np.all(F7 == 0)


def test_least_squares_lowers_sampson_error_and_keeps_exact():
    sc = make_two_view_scene(8, 30, noise=1.5, seed=6)
    F8, _ = fundamental_8point(sc.x1, sc.x2)
    Fl, valid = fundamental_least_squares(sc.x1, sc.x2)
    assert valid.all()
    e8 = (sampson_distance(F8, sc.x1, sc.x2) ** 2).sum(-1)
    el = (sampson_distance(Fl, sc.x1, sc.x2) ** 2).sum(-1)
    assert np.all(el <= e8 + 1e-9) and el.sum() < e8.sum()
    assert np.all(np.abs(np.linalg.det(Fl)) < 1e-10)
    ex = make_two_view_scene(3, 12, seed=7)
    Fe, _ = fundamental_least_squares(ex.x1, ex.x2)
    assert sampson_distance(Fe, ex.x1, ex.x2).max() < 1e-8


def test_distances_against_epipolar_lines():
    sc = make_two_view_scene(1, 10, seed=8)
    F = sc.F[0]
    x2 = sc.x2[0].copy()
    l2 = np.c_[sc.x1[0], np.ones(10)] @ F.T  # lines in image 2
    nrm = l2[:, :2] / np.linalg.norm(l2[:, :2], axis=1, keepdims=True)
    x2 += 2.0 * nrm  # move 2 px off the line in image 2
    d_sym = symmetric_epipolar_distance(F, sc.x1[0], x2, squared=True)
    l1 = np.c_[x2, np.ones(10)] @ F
    e = np.einsum("ni,ni->n", np.c_[x2, np.ones(10)], l2)
    want = e ** 2 / (l2[:, :2] ** 2).sum(1) + e ** 2 / (l1[:, :2] ** 2).sum(1)
    np.testing.assert_allclose(d_sym, want, rtol=1e-10)
    np.testing.assert_allclose(np.sqrt(e ** 2 / (l2[:, :2] ** 2).sum(1)), 2.0, rtol=1e-9)
    s = sampson_distance(F, sc.x1[0], x2)
    assert np.all(s > 0) and np.all(s <= 2.0 + 1e-9)  # Sampson ≤ distance moved in one image
    np.testing.assert_allclose(sampson_distance(F, sc.x1[0], x2, squared=True), s ** 2)


@pytest.mark.parametrize("call", [
    lambda: fundamental_8point(np.zeros((10, 3)), np.zeros((10, 3))),
    lambda: fundamental_8point(np.zeros((10, 2)), np.zeros((9, 2))),
    lambda: fundamental_7point(np.zeros((8, 2)), np.zeros((8, 2))),
    lambda: fundamental_8point(np.full((10, 2), "a"), np.zeros((10, 2))),
    lambda: fundamental_8point(np.zeros((10, 2)), np.zeros((10, 2)), mask=np.ones(9, bool)),
    lambda: fundamental_8point(np.zeros((10, 2)), np.zeros((10, 2)), weights=-np.ones(10)),
    lambda: sampson_distance(np.eye(4), np.zeros((10, 2)), np.zeros((10, 2))),
    lambda: fundamental_least_squares(np.zeros((10, 2)), np.zeros((10, 2)), iterations=-1),
])
def test_bad_arguments_raise_value_error(call):
    with pytest.raises(ValueError, match=r"x1|x2|mask|weights|F|iterations"):
        call()


def test_generated_seven_point_module_is_current():
    from pathlib import Path
    import geometry.epipolar._seven_point_gen as gen
    assert Path(gen.TARGET).read_text() == gen.generate(), \
        "geometry/epipolar/_seven_point_null.py is stale: run python geometry/epipolar/_seven_point_gen.py"


def test_seven_point_fast_path_matches_svd_and_general_elimination(rng):
    """The unrolled elimination gives the same models as an SVD null space + np.roots, and as
    the general Gauss–Jordan path it falls back to."""
    from geometry.epipolar._seven_point import _det9, _det_comb, _general_null
    from geometry.epipolar._seven_point_null import seven_point_models
    checked = 0
    for trial in range(40):
        q = rng.normal(size=(7, 4))
        sample = np.arange(7)
        models = np.zeros((3, 9))
        cnt = seven_point_models(q, sample, models)
        A = np.stack([np.kron(np.r_[q[i, 2:], 1.0], np.r_[q[i, :2], 1.0]) for i in range(7)])
        N = np.linalg.svd(A)[2][-2:]
        # every model lies in the null space, has unit norm and det 0
        assert cnt in (1, 3)
        for k in range(cnt):
            f = models[k]
            assert np.abs(A @ f).max() < 1e-9
            assert abs(np.linalg.norm(f) - 1) < 1e-12
            assert abs(np.linalg.det(f.reshape(3, 3))) < 1e-9
        # the count equals the number of real roots of det(N0 + λ N1) (or its reverse)
        lam = np.linspace(-3, 3, 7)
        d = [np.linalg.det((N[0] + s * N[1]).reshape(3, 3)) for s in lam]
        roots = np.roots(np.polyfit(lam, d, 3))
        n_real = int(np.sum(np.abs(roots.imag) < 1e-7 * np.maximum(1, np.abs(roots.real))))
        assert cnt == n_real
        ws = np.zeros(256)
        assert _general_null(q, sample, ws)
        f1, f2 = ws[63:72].copy(), ws[72:81].copy()
        for k in range(cnt):  # each fast model is f1 + λ f2 of the general basis, det 0
            coef, *_ = np.linalg.lstsq(np.c_[f1, f2], models[k], rcond=None)
            assert np.abs(np.c_[f1, f2] @ coef - models[k]).max() < 1e-9
        assert np.isfinite(_det9(f1)) and np.isfinite(_det_comb(f1, f2, 1.0))
        checked += cnt
    assert checked > 40
