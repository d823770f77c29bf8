"""The conformance kit on every registered component (builtins and installed plugins)."""
import types

import pytest

import flatland
from flatland.testing import check_component

REGISTRY = flatland.assemble().registry
ENTRIES = list(REGISTRY.entries())


def _on_a_network(entry) -> bool:
    """Components checked on a network task (a loss with task extras, or one needing them): 5–30 s of
    compilation each on two cores, so they run in the slow stage (`pytest -m slow`, CI's second stage)."""
    if entry.kind not in ("losses", "noise", "metrics"):
        return False
    component = entry.factory()
    return bool(getattr(component, "requires", ())) or bool(getattr(component, "extras", None))


PARAMS = [pytest.param(e, marks=pytest.mark.slow) if _on_a_network(e) else e for e in ENTRIES]


@pytest.mark.parametrize("entry", PARAMS, ids=[f"{e.kind}:{e.name}" for e in ENTRIES])
def test_component_conforms(entry):
    check_component(entry, registry=REGISTRY)


def test_kit_catches_a_learner_that_recompiles():
    """A state that starts weakly typed and comes back strongly typed retraces the step."""
    import jax.numpy as jnp

    from flatland import Learner
    from flatland.testing import check_learner

    def step(key, params, state, hyper, oracle):
        return params, state * hyper["lr"], {}

    with pytest.raises(AssertionError, match="recompiled"):
        check_learner(Learner("retracer", lambda p, h: jnp.array(1.0), step, {"lr": 0.1}))


def test_kit_catches_a_dtype_change():
    import jax.numpy as jnp

    from flatland import Learner
    from flatland.testing import check_learner

    def step(key, params, state, hyper, oracle):
        return params, state.astype(jnp.float64), {}

    with pytest.raises(AssertionError, match="dtype changed"):
        check_learner(Learner("bad", lambda p, h: jnp.zeros((), dtype=jnp.int32), step, {"lr": 0.1}))


def test_kit_catches_nan():
    import jax.numpy as jnp

    from flatland import Learner
    from flatland.testing import check_learner

    def step(key, params, state, hyper, oracle):
        import jax
        return jax.tree_util.tree_map(lambda p: p * jnp.nan, params), state, {}

    with pytest.raises(AssertionError, match="non-finite"):
        check_learner(Learner("nan", lambda p, h: (), step, {"lr": 0.1}))


def test_readme_optax_one_liner_is_checkable(tmp_path, capsys):
    """The README's `optax_learner("adam", optax.adam, learning_rate=1e-3)`: the kit passes it, its step size
    is the hyperparameter lr, and `flatland check --learner` measures with it (no theory: no prediction)."""
    import optax

    import flatland
    import flatland.assembly as assembly
    from flatland.cli import main
    from flatland.testing import check_learner

    learner = flatland.optax_learner("adam", optax.adam, learning_rate=1e-3)
    assert learner.hyper == {"lr": 1e-3}
    check_learner(learner)

    class Plugin:
        @flatland.hookimpl
        def flatland_learners(self, register):
            register("readme-adam", lambda: flatland.optax_learner("readme-adam", optax.adam, learning_rate=1e-3),
                     "the README's one-liner")

    orig = assembly.assemble
    try:
        assembly.assemble = lambda *a, **k: orig(*a, **{**k, "extra": [("readme", Plugin())]})
        code = main(["check", "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--learner", "readme-adam",
                     "--sigma", "0.01", "--eta", "0.01", "--chains", "64", "--steps", "200", "--burn", "50",
                     "--out", str(tmp_path / "r")])
    finally:
        assembly.assemble = orig
    out = capsys.readouterr()
    assert code == 0 and "Traceback" not in out.err
    assert "declares no theory" in out.out and "measured" in out.out
    assert (tmp_path / "r" / "table.txt").read_text().strip() == out.out.strip()    # what the terminal showed


def test_kit_asks_for_a_step_size_named_lr():
    import jax.numpy as jnp

    from flatland import Learner
    from flatland.testing import check_learner

    def step(key, params, state, hyper, oracle):
        return params, state, {}

    with pytest.raises(AssertionError, match="but no 'lr'"):
        check_learner(Learner("no-lr", lambda p, h: jnp.zeros(()), step, {"rate": 0.1}))


def test_kit_checks_that_positive_names_hyperparameters_with_positive_defaults():
    """A misspelt ``positive`` name would protect nothing; a positive one defaulting to 0 refuses its own default."""
    import jax.numpy as jnp

    from flatland import Learner, NoiseModel
    from flatland.testing import check_learner, check_noise

    def step(key, params, state, hyper, oracle):
        return params, state, {}

    with pytest.raises(AssertionError, match=r"positive names 'tua', not a hyperparameter \(its hyperparameters: lr, tau\)"):
        check_learner(Learner("typo", lambda p, h: (), step, {"lr": 0.1, "tau": 1.0}, positive=("lr", "tua")))

    class Zero(NoiseModel):
        name, hyper, positive = "zero", {"sigma": 0.0}, ("sigma",)

    with pytest.raises(AssertionError, match="sigma declared positive but defaults to 0.0"):
        check_noise(Zero())


def test_a_component_requiring_extras_finds_its_loss_past_a_broken_one():
    """The fixture flatland_check(entry) has no registry: a metric requiring `responses` was told that no
    registered loss provides them (false); with a registry, an unrelated broken loss failed the test."""
    from flatland.testing import _loss_for, loss_providing

    def flatland_losses(register):
        register("aaa-broken", lambda: 1 / 0, "raises when built with its defaults")

    plugin = types.SimpleNamespace(flatland_losses=flatland.hookimpl(flatland_losses))
    reg = flatland.assemble(entry_points=[], extra=[("broken", plugin)]).registry
    assert "responses" in loss_providing(reg, ("responses",)).extras
    metric = REGISTRY.entry("metrics", "responses")
    assert "responses" in _loss_for(metric, metric.factory(), None).extras
