"""The conformance kit on every registered component (builtins and installed plugins)."""
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
