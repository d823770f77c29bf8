"""Conformance of the drift-geometry noise models, the digits task and the training loop."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flatland
from flatland_plugins import geometry_noise as gn
from flatland_plugins import geometry_task as gt

NAMES = sorted(gn.MODELS)
FORWARD = sorted(n for n in NAMES if n != "sgd-minibatch")


@pytest.fixture(scope="module")
def loss():
    return gt.digits_mlp()


@pytest.fixture(scope="module")
def params(loss):
    return loss.initial_params(jax.random.PRNGKey(0))


def test_registered_and_listed():
    reg = flatland.assemble().registry
    for name in NAMES:
        assert ("noise", name) in reg
    assert ("losses", "digits-mlp") in reg and ("learners", "sgd-momentum-l2") in reg
    checks = [reg.create("checks", n) for n in reg.names("checks") if n.startswith("geometry-")]
    assert len(checks) >= 6 and all(c.suite == "geometry" for c in checks)


@pytest.mark.parametrize("name", NAMES)
def test_objective_jits_and_vmaps_over_keys_and_hyper(name, loss, params):
    """Each model as the study uses it (forward noise composed with sgd-minibatch): one trace for new values."""
    members = [gn.MODELS[name]()] + ([gn.SgdMinibatch()] if name != "sgd-minibatch" else [])
    noise = flatland.compose_noise(members)
    base = {k: jnp.asarray(v, jnp.float32) for k, v in noise.hyper.items()} or {"unused": jnp.float32(1.0)}
    traces = []

    def grad_norm(key, hyper):
        traces.append(1)
        g = jax.grad(lambda p: noise.objective(loss, key, p, hyper))(params)
        return sum(jnp.sum(x * x) for x in jax.tree_util.tree_leaves(g))

    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    hyp = {k: jnp.stack([v, 0.5 * v, 0.25 * v]) for k, v in base.items()}
    f = jax.jit(jax.vmap(grad_norm))  # one vmap over (key, hyper) pairs
    out = f(keys, hyp)
    assert out.shape == (3,) and np.all(np.isfinite(np.asarray(out))) and np.all(np.asarray(out) > 0)
    n = len(traces)
    f(keys, {k: v * 0.9 for k, v in hyp.items()})  # new values: no retrace
    assert len(traces) == n


def test_minibatch_and_forward_noise_compose_in_either_order(loss, params):
    """[dropout, minibatch] and [minibatch, dropout] give the same law: both rebuild the loss from extras.

    With p = 0 dropout is the identity, so both orders equal the plain
    minibatch loss on the rows the minibatch member draws with its own key.
    """
    hyper = {"p": jnp.float32(0.0)}
    key = jax.random.PRNGKey(7)
    mb, drop = gn.SgdMinibatch(batch=16), gn.NodeDropout()
    a = flatland.compose_noise([drop, mb])
    b = flatland.compose_noise([mb, drop])
    ka, kb = jax.random.split(key)
    plain_a = float(mb.transform(loss, kb, {})(params))  # a's second member is the minibatch
    plain_b = float(mb.transform(loss, ka, {})(params))  # b's first
    assert float(a.objective(loss, key, params, {"node-dropout.p": hyper["p"]})) == pytest.approx(plain_a, rel=1e-6)
    assert float(b.objective(loss, key, params, {"node-dropout.p": hyper["p"]})) == pytest.approx(plain_b, rel=1e-6)
    full = float(loss(params))
    assert float(drop.transform(loss, key, hyper)(params)) == pytest.approx(full, rel=1e-6)  # alone: full batch
    noisy = float(drop.transform(loss, key, {"p": jnp.float32(0.5)})(params))
    assert noisy != pytest.approx(full, rel=1e-3)


def test_two_forward_noises_stack_in_one_pass(loss, params):
    """[node-additive, node-dropout]: both perturbations act, in the listed order (noise, then dropout)."""
    x = loss.extras["x_stim"].reshape(-1, 64)[:50]
    add, drop = gn.NodeAdditive(), gn.NodeDropout()
    both = flatland.compose_noise([add, drop])
    key = jax.random.PRNGKey(2)
    feats = np.asarray(both.transform(loss, key, {"node-additive.sigma": 0.1, "node-dropout.p": 0.5})
                       .extras["apply"](params, x)[1])
    clean = np.asarray(gt.apply(params, x)[1])
    zeroed = feats == 0.0
    assert 0.3 < zeroed.mean() < 0.7  # dropout acted last (about half the units exactly zero)
    kept = ~zeroed
    assert np.std(feats[kept] / 2.0 - clean[kept]) > 0.05  # and additive noise on the kept ones (σ = 0.1)


def test_noise_needs_a_network_task():
    valley = flatland.Loss("v", residuals=lambda t: t, point=(1.0,))
    with pytest.raises(ValueError, match="forward pass"):
        gn.NodeDropout().objective(valley, jax.random.PRNGKey(0), jnp.ones(1), {"p": 0.5})


def test_node_dropout_masks_per_example_and_unbiased():
    h = jnp.ones((4000, 84), jnp.float32)
    pert = gn.NodeDropout().perturbation(jax.random.PRNGKey(3), {"p": jnp.float32(0.5)})
    out = np.asarray(pert.nodes(gt.FEATURE_LAYER, h))
    assert set(np.unique(out)) == {0.0, 2.0}
    assert abs(out.mean() - 1.0) < 0.01
    assert not np.all(out[0] == out[1])
    held = gn.NodeDropout().held(jax.random.PRNGKey(4)).perturbation(jax.random.PRNGKey(5), {"p": jnp.float32(0.5)})
    out = np.asarray(held.nodes(gt.FEATURE_LAYER, h[:3]))
    assert np.all(out[0] == out[1])  # a held mask is shared by the batch
    assert np.all(np.asarray(pert.nodes(1, h[:2])) == 1.0)  # other layers untouched


def test_fast_bernoulli_rate_and_independence():
    m = np.asarray(gn.fast_bernoulli(jax.random.PRNGKey(0), jnp.float32(0.4), (64, 120, 84)), float).ravel()
    assert abs(m.mean() - 0.4) < 4 * np.sqrt(0.24 / m.size)
    for lag in (1, 2, 84, 120 * 84):
        assert abs(np.corrcoef(m[:-lag], m[lag:])[0, 1]) < 0.01
    m2 = np.asarray(gn.fast_bernoulli(jax.random.PRNGKey(1), jnp.float32(0.4), (64, 120, 84)), float).ravel()
    assert abs(np.corrcoef(m, m2)[0, 1]) < 0.01


def test_weight_dropout_mask_per_example(loss, params):
    x = jnp.repeat(loss.extras["x_train"][:1], 2, axis=0)
    pert = gn.WeightDropout().perturbation(jax.random.PRNGKey(0), {"p": jnp.float32(0.6)})
    _, feats = gt.apply(params, x, pert)
    assert not np.allclose(feats[0], feats[1])  # same input, different masks


def test_dropout_penalty_is_exact_expectation_over_masks():
    """Enumerate all 2^3 masks of a 3-unit layer: E[½(y − f̃)²] = ½(y − f)² + penalty."""
    rng = np.random.default_rng(0)
    a, h, y, p = rng.normal(size=3), rng.normal(size=(5, 3)), rng.normal(size=5), 0.3
    expect = 0.0
    for m in itertools.product([0, 1], repeat=3):
        m = np.array(m)
        w = np.prod(np.where(m == 1, 1 - p, p))
        expect += w * np.mean(0.5 * (y - (h * m / (1 - p)) @ a) ** 2)
    clean = np.mean(0.5 * (y - h @ a) ** 2)
    assert expect == pytest.approx(clean + float(gn.dropout_penalty(p, jnp.asarray(a), jnp.asarray(h))), rel=1e-10)


@pytest.mark.slow  # ~40 s of compilation on two shared cores; `flatland check --suite geometry` runs the loop in full
def test_training_loop_sessions_and_held_masks(loss):
    from flatland.geometry import experiment as ex

    learner = flatland.assemble().registry.create("learners", "sgd-momentum-l2")
    P = ex.Protocol(pretrain=30, burnin=10, sessions=3, interval=10)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    p0 = ex.pretrain(loss, gn.SgdMinibatch(), learner, keys, P)
    noise = flatland.compose_noise([gn.NodeDropout(period=5), gn.SgdMinibatch()])
    assert ex.mask_period(noise) == 5
    d = ex.run_noise(loss, noise, learner, p0, keys, {"node-dropout.p": 0.5}, P)
    assert d.A.shape == (2, 3, 10, 40, 84) and d.B.shape == d.A.shape
    assert d.accuracy.shape == (2, 3) and d.readout.shape == (2, 3, 10, 84)
    assert np.all(np.isfinite(d.A)) and not np.allclose(d.A, d.B)  # independent noisy passes
    assert np.all(d.clean_drift() > 0)
