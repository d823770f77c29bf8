"""relu plugins: tasks (seeded, faithful shapes), network init/activity, metrics definitions."""
import math

import numpy as np
import pytest
import jax
import jax.numpy as jnp

import flatland
from flatland.errors import UserError
from flatland_plugins.relu import metrics as M
from flatland_plugins.relu import tasks
from flatland_plugins.relu.network import NetSpec, active_units, flatten, init_params, unflatten


@pytest.fixture(scope="module")
def registry():
    return flatland.assemble(strict=True).registry


def test_corridor_shapes_and_normalisation():
    d = tasks.corridor(seed=3)
    assert d.X.shape == (150, 18) and d.Y.shape == (150, 17)
    for block in (d.X[:, :17], d.X[:, 17:], d.Y):
        assert block.min() == pytest.approx(-1) and block.max() == pytest.approx(1)
    # the target at t is the visual part of the input at t+1 (before normalisation they are the same views)
    assert np.corrcoef(d.X[1:, :17].ravel(), d.Y[:-1].ravel())[0, 1] > 0.999
    assert d.pos.min() >= 0 and d.pos.max() <= 11.2 + 1e-9
    assert set(np.unique(d.direction)) <= {-1.0, 1.0}
    assert (d.direction == -1).any() and (d.direction == 1).any()  # runs both ways in 150 steps


def test_corridor_seeded_and_configurable():
    a, b, c = tasks.corridor(seed=1), tasks.corridor(seed=1), tasks.corridor(seed=2)
    assert np.array_equal(a.X, b.X) and not np.array_equal(a.X, c.X)
    small = tasks.corridor(seed=1, T=40, n_rays=9)
    assert small.X.shape == (40, 10) and small.Y.shape == (40, 9)


def test_public_texture_mapping_is_flat_on_left_wall():
    """The public code's phase mapping clamps ~46% of the left wall to one value."""
    rng = np.random.default_rng(0)
    pub = tasks._Corridor(1.0, 14.0, 17, 0.09, "public", rng)
    cont = tasks._Corridor(1.0, 14.0, 17, 0.09, "continuous", np.random.default_rng(0))
    ys = np.linspace(-7, 7, 1401)
    vp = np.array([pub.read(pub.phase(3, -0.5, y)) for y in ys])
    vc = np.array([cont.read(cont.phase(3, -0.5, y)) for y in ys])
    flat_pub = np.mean(np.isclose(vp, vp[-1]))
    assert 0.40 < flat_pub < 0.52
    assert np.mean(np.isclose(vc, vc[-1])) < 0.01
    # continuous texture: the perimeter coordinate is continuous at every corner
    for wall, (x, y), nxt, (x2, y2) in [(0, (0.5, 7), 1, (0.5, 7)), (1, (0.5, -7), 2, (0.5, -7)),
                                        (2, (-0.5, -7), 3, (-0.5, -7))]:
        assert cont.phase(wall, x, y) == pytest.approx(cont.phase(nxt, x2, y2))


def test_other_tasks(registry):
    for name, kw in [("circular-track", {}), ("random-mapping", {"d_in": 5, "d_out": 7}),
                     ("smoothed-mapping", {"T": 30})]:
        loss = registry.create("losses", name, seed=0, n_hid=8, **kw)
        ctx = loss.extras["relu"]
        p = loss.init(jax.random.key(0))
        assert loss.residuals(p).shape == ctx["Y"].shape
        assert float(loss(p)) > 0


def test_bad_options_are_user_errors(registry):
    with pytest.raises(UserError, match="unknown option"):
        registry.create("losses", "corridor", n_hidden=5)
    with pytest.raises(UserError, match="activation"):
        registry.create("losses", "corridor", activation="gelu")
    with pytest.raises(UserError, match="T must be"):
        registry.create("losses", "corridor", T=-1)


def test_alpha_is_the_leaky_slope_and_refused_where_it_would_do_nothing(registry):
    """alpha with activation = "relu" was accepted and silently unused; a text alpha reached jnp.where."""
    with pytest.raises(UserError, match=r"alpha is the leaky-ReLU slope and does nothing with activation = 'relu'"):
        registry.create("losses", "corridor", n_hid=4, alpha=0.1)
    with pytest.raises(UserError, match="alpha .* must be a number, got 'x'"):
        registry.create("losses", "corridor", n_hid=4, activation="leaky-relu", alpha="x")
    leaky = registry.create("losses", "corridor", n_hid=4, activation="leaky-relu", alpha=0.1)
    assert leaky.extras["relu"]["spec"].alpha == 0.1


def test_network_init_statistics_and_sizes():
    spec = NetSpec()
    assert spec.n_params == 18_000
    p = init_params(spec, jax.random.key(0))
    assert p["W"].shape == (500, 18) and p["b"].shape == (500,) and p["V"].shape == (17, 500)
    assert p["W"].dtype == jnp.float64
    assert float(jnp.std(p["W"])) == pytest.approx(math.sqrt(2 / 18), rel=0.05)
    assert float(jnp.std(p["V"])) == pytest.approx(2 / 500, rel=0.05)
    rich = init_params(NetSpec(regime="rich"), jax.random.key(0))
    assert float(jnp.std(rich["V"])) == pytest.approx(math.sqrt(2 / 500), rel=0.05)
    f32 = init_params(NetSpec(dtype="float32", n_hid=7), jax.random.key(0))
    assert f32["W"].dtype == jnp.float32
    th = flatten(p)
    assert th.shape == (18_000,)
    back = unflatten(th, spec)
    assert all(np.array_equal(back[k], p[k]) for k in p)


def test_metrics_definitions(registry):
    loss = registry.create("losses", "corridor", seed=0, n_hid=12)
    ctx = loss.extras["relu"]
    p = loss.init(jax.random.key(4))
    z = np.asarray(ctx["X"] @ p["W"].T + p["b"])
    assert float(M.active_fraction(p, ctx)) == pytest.approx(np.mean(z > 0))
    assert float(M.active_units(p, ctx)) == pytest.approx(np.mean((z > 0).any(0)))
    r = np.asarray(loss.residuals(p))
    assert float(M.loss_norm(p, ctx)) == pytest.approx(np.mean(r ** 2) / ctx["var_y"])
    # kill a unit: it becomes inactive, SI NaN for it
    p2 = dict(p, b=p["b"].at[0].set(-1e3))
    assert not bool(active_units(p2, ctx["X"])[0])
    assert np.isnan(np.asarray(M.unit_si(p2, ctx))[0])


def test_skaggs_si_by_hand():
    """SI of a unit firing in exactly one of B equally visited bins is log2(B)."""
    B = 8
    idx = jnp.asarray(np.repeat(np.arange(B), 3))
    h = jnp.zeros((idx.size, 2)).at[idx == 2, 0].set(1.0).at[:, 1].set(1.0)
    maps, p = M._rates(h, idx, B)
    si = np.asarray(M._skaggs(maps, p))
    assert si[0] == pytest.approx(np.log2(B))
    assert si[1] == pytest.approx(0.0)


def test_ratemap_correlation_identity():
    rng = np.random.default_rng(0)
    maps = rng.random((3, 5, 100))
    maps[1] = maps[0]
    place = np.ones((3, 5), bool)
    C = M.ratemap_correlation(maps, place, sigma_bins=0)
    assert C[0, 1] == pytest.approx(1.0) and C[0, 0] == pytest.approx(1.0)
    assert abs(C[0, 2]) < 0.5


def test_relu_metrics_conform_on_a_relu_loss(registry):
    """The engine's conformance kit, run on the loss these metrics are for (its default smoke loss is a valley)."""
    from flatland.testing import check_metric
    loss = registry.create("losses", "corridor", seed=0, n_hid=10)
    for name in ("loss_norm", "active_fraction", "active_units", "si", "si_corrected", "place_cells", "place_cells_significant", "hessian_gn"):
        check_metric(registry.create("metrics", name), loss)
    # on a loss without its extras the kit says so in one line, before the metric's own ValueError
    with pytest.raises(AssertionError, match="metric loss_norm: loss smoke lacks extras relu"):
        from flatland.testing.conformance import smoke_loss
        check_metric(registry.create("metrics", "loss_norm"), smoke_loss())


def test_a_task_with_one_sample_is_refused():
    """T = 1 ran with loss_norm inf and SI nan (the loss is normalised by the targets' variance across samples)."""
    from flatland import UserError
    from flatland_plugins.relu.tasks import circular_track, corridor, random_mapping, smoothed_mapping

    for task in (corridor, circular_track, random_mapping, smoothed_mapping):
        with pytest.raises(UserError, match="T must be at least 2"):
            task(T=1)
