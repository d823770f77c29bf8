"""The probe walk (the training walk continued) and SI measured on it: what ``relu-update-noise-si`` judges.

With 150 training samples in 100 bins, a rate map is one or two samples a bin, and the shuffle-corrected SI
subtracts from a tuned unit the SI of its own values scattered at random, most of its information. The
probe walk gives ~150 samples a bin, where the correction is small and the SI is the tuning's."""
import numpy as np
import pytest
import jax
import jax.numpy as jnp

import flatland
from flatland.errors import UserError
from flatland_plugins.relu import metrics as M
from flatland_plugins.relu import tasks
from flatland_plugins.relu.network import hidden


@pytest.fixture(scope="module")
def registry():
    return flatland.assemble(strict=True).registry


def _affine_residual(a, b):
    """Largest residual of the least-squares fit b ≈ s·a + c over all elements (0 when b is a's affine image)."""
    A = np.stack([a.ravel(), np.ones(a.size)], 1)
    coef = np.linalg.lstsq(A, b.ravel(), rcond=None)[0]
    return float(np.max(np.abs(A @ coef - b.ravel())))


def test_the_corridor_probe_continues_the_training_walk_with_its_normalisation():
    """Training inputs followed by the probe's are, group by group (view block, heading column), an affine image
    of the corridor generated with T + n samples and normalised with its own constants: one walk, one box."""
    T, n = 120, 400
    data = tasks.corridor(seed=3, T=T)
    X, pos, direction = tasks.probe_walk(data, n)
    long = tasks.corridor(seed=3, T=T + n)
    both = np.concatenate([data.X, X])
    assert X.shape == (n, data.X.shape[1]) and pos.shape == direction.shape == (n,)
    for g in (slice(0, 17), slice(17, 18)):
        assert _affine_residual(long.X[:, g], both[:, g]) < 1e-9
    assert np.array_equal(np.concatenate([data.pos, pos]), long.pos)
    assert np.array_equal(np.concatenate([data.direction, direction]), long.direction)


def test_the_circular_track_probe_walks_on_with_the_training_step():
    """The circular track's step size is set by the training T, so the probe is not the task at T + n; it
    goes on from the last training position with steps U(0, 1)·step, and sees the same texture."""
    T, n = 150, 3000
    data = tasks.circular_track(seed=4, T=T)
    X, pos, _ = tasks.probe_walk(data, n)
    step = 120.0 / T * 20.0
    moves = np.diff(np.concatenate([data.pos[-1:], pos])) % 120.0
    assert np.all((moves > 0) & (moves < step))
    assert np.mean(moves) == pytest.approx(step / 2, rel=0.05)
    # the texture's range; training views miss its extremes by a little, so the probe may pass ±1 by as much
    assert -1.01 < X.min() < -0.99 and 0.99 < X.max() < 1.01


def test_tasks_without_positions_have_no_probe_and_no_probe_si(registry):
    assert tasks.probe_walk(tasks.random_mapping(), 100) is None
    loss = registry.create("losses", "random-mapping", n_hid=5)
    with pytest.raises(ValueError, match="needs positions"):
        registry.create("metrics", "si_probe_corrected").fn(loss.init(jax.random.key(0)), loss)


@pytest.mark.parametrize("bad", [1, 2.5, True, "10000"])
def test_bad_probe_length_is_a_user_error(registry, bad):
    with pytest.raises(UserError, match="probe_samples .* whole number"):
        registry.create("losses", "corridor", n_hid=4, probe_samples=bad)


def test_default_probe_is_150_samples_a_bin_and_built_once(registry):
    ctx = registry.create("losses", "corridor", n_hid=4, n_bins=20).extras["relu"]
    probe = ctx["probe"]()
    assert probe["X"].shape == (3000, 18) and probe["place"]["n_bins"] == 20
    assert ctx["probe"]() is probe


def test_probe_si_is_the_mean_over_units_active_on_the_training_inputs(registry):
    """A unit silent on every training input but firing on some probe inputs is left out (it is dead as the
    network's activity goes), and so is a unit silent everywhere."""
    loss = registry.create("losses", "corridor", n_hid=12, probe_samples=2000)
    ctx = loss.extras["relu"]
    p = loss.init(jax.random.key(2))
    probe = ctx["probe"]()
    w_train, w_probe = np.asarray(ctx["X"] @ p["W"].T), probe["X"] @ np.asarray(p["W"]).T
    gap = w_probe.max(0) - w_train.max(0)
    j = int(np.argmax(gap))                            # the unit the probe drives furthest beyond training
    assert gap[j] > 1e-3
    p = dict(p, b=p["b"].at[j].set(-w_train[:, j].max() - gap[j] / 2).at[(j + 1) % 12].set(-1e3))
    h = np.maximum(np.asarray(hidden(p, jnp.asarray(probe["X"]), ctx["spec"])), 0)
    s, s_sh = (np.asarray(a) for a in M._si_and_shuffles_of(jnp.asarray(h), probe["place"]))
    active = (np.asarray(ctx["X"] @ p["W"].T + p["b"]) > 0).any(0)
    assert not active[j] and not active[(j + 1) % 12] and np.isfinite(s[j]) and active.sum() >= 6
    assert float(M.si_probe(p, ctx)) == pytest.approx(np.nanmean(s[active]))
    assert float(M.si_probe(p, ctx)) != pytest.approx(np.nanmean(s))
    assert float(M.si_probe_corrected(p, ctx)) == pytest.approx(np.nanmean((s - s_sh.mean(0))[active]))


def _bump_si_truth(centre, width, n_bins, L):
    """SI (bits) of the 100-bin rate map of a Gaussian bump in signed position, with the bins' means taken
    exactly (10⁴ points a bin, uniform occupancy)."""
    edges = np.linspace(-L, L, n_bins + 1)
    x = np.linspace(edges[0], edges[-1], n_bins * 10_000, endpoint=False) + (edges[1] - edges[0]) / 20_000
    r = np.exp(-0.5 * ((x - centre) / width) ** 2).reshape(n_bins, -1).mean(1)
    q = r / r.mean()
    return float(np.mean(np.where(q > 0, q * np.log2(np.where(q > 0, q, 1)), 0)))


def _si_corrected_of(signed_pos, h, L, n_bins=100):
    """Shuffle-corrected SI (10 shuffles, the metric's estimator) of activity h at signed positions."""
    place = M.place_context(np.abs(signed_pos), np.sign(signed_pos), (0.0, L), n_bins=n_bins)
    s, s_sh = M._si_and_shuffles_of(jnp.asarray(h), place)
    return np.asarray(s - s_sh.mean(0))


def test_shuffle_corrected_si_needs_the_probes_samples():
    """A place field (Gaussian bump, 3 widths) and an untuned unit firing on random 5% of samples: with 150
    samples in 100 bins the corrected SI keeps under half of the field's information, with 15,000 it is within
    5% of the exact value, and the untuned unit reads ≈ 0 with either."""
    L, rng = 10.0, np.random.default_rng(0)
    fields = [(-6.0, 0.6), (2.0, 1.0), (4.5, 2.0)]
    truth = np.array([_bump_si_truth(c, w, 100, L) for c, w in fields])

    def activity(x):
        tuned = [np.exp(-0.5 * ((x - c) / w) ** 2) for c, w in fields]
        return np.stack(tuned + [(rng.uniform(size=x.size) < 0.05) * rng.uniform(size=x.size)], 1)

    few, many = rng.uniform(-L, L, 150), rng.uniform(-L, L, 15_000)
    si_few, si_many = _si_corrected_of(few, activity(few), L), _si_corrected_of(many, activity(many), L)
    assert np.all(si_few[:3] < 0.5 * truth), (si_few, truth)
    assert np.allclose(si_many[:3], truth, rtol=0.05), (si_many, truth)
    assert abs(si_many[3]) < 0.05 and abs(si_few[3]) < 0.5, (si_many[3], si_few[3])
