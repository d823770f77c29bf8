"""Drift-geometry metrics on constructed data with known answers, and invariances (Hypothesis)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import flatland.geometry as fg
from flatland.errors import UserError

N = 12


def anisotropic_group(rng, m=400, n=N, scales=(5.0, 4.0, 3.0), offset=10.0):
    """m responses with variance concentrated on the first len(scales) axes."""
    sd = np.full(n, 0.1)
    sd[: len(scales)] = scales
    return offset + rng.normal(size=(m, n)) * sd


def test_participation_ratio_counts_equal_dimensions():
    assert fg.participation_ratio([1, 1, 1, 0, 0]) == pytest.approx(3.0)
    assert fg.participation_ratio([1.0]) == pytest.approx(1.0)
    assert fg.participation_ratio([2, 1]) == pytest.approx(9 / 5)


def test_group_pca_recovers_dimension_and_orientation():
    rng = np.random.default_rng(0)
    p = fg.group_pca(anisotropic_group(rng, scales=(3.0, 3.0, 3.0)))
    assert 2.5 < p.D < 3.5 and p.k == 3
    assert np.allclose(p.components.T @ p.components, np.eye(p.components.shape[1]), atol=1e-10)
    assert np.all(p.components.T @ p.mean >= 0)  # oriented along the mean
    assert p.ratios.sum() == pytest.approx(1.0)


def test_gamma_is_one_for_drift_along_top_pcs():
    rng = np.random.default_rng(1)
    p = fg.group_pca(anisotropic_group(rng))
    d = p.components[:, :2] @ np.array([0.7, -0.3])
    assert fg.gamma(p, d) == pytest.approx(1.0, abs=1e-9)
    # a drift along the coordinate axes of the large variances: γ close to 1 (estimated PCs)
    d_axes = np.zeros(N)
    d_axes[:3] = [1.0, 0.5, -0.2]
    assert fg.gamma(p, d_axes) > 0.99


def test_gamma_of_isotropic_drift_is_chance():
    rng = np.random.default_rng(2)
    p = fg.group_pca(anisotropic_group(rng))
    g = np.array([fg.gamma(p, rng.normal(size=N)) for _ in range(2000)])
    se = g.std(ddof=1) / np.sqrt(g.size)
    assert abs(g.mean() - fg.gamma_chance(p)) < 4 * se
    assert fg.gamma_chance(p) == pytest.approx(p.k / N)


def test_overlap_same_space_is_one_and_orthogonal_is_zero():
    rng = np.random.default_rng(3)
    a = fg.group_pca(anisotropic_group(rng, scales=(5, 4)))
    b = fg.group_pca(anisotropic_group(rng, scales=(5, 4)))
    assert fg.overlap(a, b) > 0.99
    X = 10 + rng.normal(size=(400, N)) * np.r_[0.1, 0.1, 0.1, 5, 4, np.full(N - 5, 0.1)]
    c = fg.group_pca(X)
    assert fg.overlap(a, c) < 0.01
    assert fg.overlap_chance(a, c) == pytest.approx(max(a.k, c.k) / N)


@pytest.mark.parametrize("theta", [10.0, 45.0, 80.0])
def test_rotation_by_known_angle_is_recovered(theta):
    rng = np.random.default_rng(4)
    t = np.radians(theta)
    u = np.eye(N)[0]
    v = np.cos(t) * u + np.sin(t) * np.eye(N)[1]
    assert fg.angle_deg(u, v) == pytest.approx(theta)
    # classifiers: two groups separated along u in session 1 and along v in session 2
    def groups(direction):
        noise = lambda: rng.normal(size=(300, N)) * 0.3
        return 5 + 2 * direction + noise(), 5 - 2 * direction + noise()
    c1, c2 = fg.pair_classifier(*groups(u)), fg.pair_classifier(*groups(v))
    assert abs(fg.angle_deg(c1.normal, c2.normal) - theta) < 3.0


def test_pc_resolved_sign_and_retained():
    rng = np.random.default_rng(5)
    X = anisotropic_group(rng, scales=(5.0, 1.0))
    p = fg.group_pca(X)
    # later: the mean moves against PC1 and the spread along PC1 halves
    late = p.mean - 1.0 * p.components[:, 0] + (X - p.mean) * np.r_[0.5, np.ones(N - 1)]
    pr = fg.pc_resolved(p, late)
    assert pr.cos[0] == pytest.approx(-1.0, abs=1e-6) and pr.angle[0] == pytest.approx(180.0, abs=0.1)
    assert pr.retained[0] == pytest.approx(0.25, rel=0.05)
    assert pr.along == pytest.approx(np.abs(pr.cos))


def test_linear_fit_recovers_line():
    x = np.linspace(0, 1, 50)
    f = fg.linear_fit(x, 2 * x + 1)
    assert f.slope == pytest.approx(2) and f.intercept == pytest.approx(1) and f.r == pytest.approx(1)


def test_measure_controls_are_null_when_nothing_changes():
    rng = np.random.default_rng(6)
    one = 3 + rng.normal(size=(1, 3, 20, 8))
    R = np.repeat(one, 3, axis=0)  # three identical sessions, deterministic passes
    m = fg.measure(R, R.copy(), readouts=np.ones((3, 2, 8)))
    assert m.summary("rel_drift", 0)[0] == 0 and m.summary("rel_drift", 2)[0] == 0
    assert m.summary("readout_angle", 1)[0] == 0
    assert abs(m.summary("session_acc", 1)[0] - 0.5) < 0.15


def test_measure_sees_drift_beyond_control():
    rng = np.random.default_rng(7)
    S, G, M = 4, 3, 40
    shift = np.arange(S)[:, None, None, None] * 0.8 * rng.normal(size=N)
    A = 5 + rng.normal(size=(S, G, M, N)) + shift
    B = 5 + rng.normal(size=(S, G, M, N)) + shift
    m = fg.measure(A, B)
    assert m.dts() == [1, 2, 3]
    assert m.summary("rel_drift", 3)[0] > 3 * m.summary("rel_drift", 0)[0]
    assert m.summary("session_acc", 3)[0] > 0.9 and abs(m.summary("session_acc", 0)[0] - 0.5) < 0.15


@pytest.mark.parametrize("bad, words", [
    (np.zeros((3, 4, 5)), "4 axes"),
    (np.zeros((1, 2, 5, 3)), "2 sessions"),
    (np.full((2, 2, 5, 3), np.nan), "NaN"),
    (np.array([["a"]]), "numeric"),
    (np.zeros((2, 2, 5, 3)), "no neuron responds"),     # infer gave a posterior for it
])
def test_bad_responses_are_one_line_user_errors(bad, words):
    with pytest.raises(UserError, match=words):
        fg.validate_responses(bad)


def _orthogonal(seed, n):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q * np.sign(np.diag(r))


@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(1e-3, 1e3))
def test_gamma_and_overlap_invariant_to_rotation_and_scale(seed, scale):
    rng = np.random.default_rng(seed)
    X1 = anisotropic_group(rng, m=60, scales=(3.0, 2.0, 1.5))
    X2 = anisotropic_group(rng, m=60, scales=(2.5, 2.0, 1.0)) + 0.5 * rng.normal(size=N)
    Q = _orthogonal(seed + 1, N)

    def both(T):
        a, b = fg.group_pca(T(X1)), fg.group_pca(T(X2))
        return fg.gamma(a, b.mean - a.mean), fg.overlap(a, b), a.D

    ref = both(lambda X: X)
    for T in (lambda X: X @ Q, lambda X: scale * X, lambda X: scale * X @ Q):
        assert np.allclose(both(T), ref, rtol=1e-6, atol=1e-9)


def test_gamma_net_removes_sampling_noise():
    """Noise concentrated in two dimensions, drift along a low-variance axis: raw γ reads above chance
    ⌈D⌉/n (the sampling noise of the means lies in the variational space), γ net of the Δt = 0 control
    reads below it. Mean ± s.e. over 20 independent data sets, each judged at 3 s.e."""
    S, G, M, N = 4, 6, 150, 20
    sd = np.r_[3.0, 3.0, np.full(N - 2, 0.3)]
    shift = np.zeros((S, 1, 1, N))
    shift[:, 0, 0, 10] = 0.7 * np.arange(S)  # every group drifts along one low-variance axis
    raw, net, chance = [], [], []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        A = 5 + rng.normal(size=(S, G, M, N)) * sd + shift
        B = 5 + rng.normal(size=(S, G, M, N)) * sd + shift
        m = fg.measure(A, B, classifiers=False)
        raw.append(m.summary("gamma", 1)[0])
        net.append(float(m.gamma_net(1)[0]))
        chance.append(m.summary("gamma_chance", 1)[0])
        assert m.summary("drift_sq", 0)[0] > 0  # the control is noise, not zero
    (r, r_se), (n, n_se) = [(np.mean(v), np.std(v, ddof=1) / np.sqrt(20)) for v in (raw, net)]
    c = np.mean(chance)
    assert r - c > 3 * r_se
    assert c - n > 3 * n_se, (n, n_se)
