"""Several noise models in one run: ``compose_noise``, ``--noise a+b``, ``[noise] name = [...]``."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flatland
from flatland import compose_noise, step_law
from flatland.cli import main
from flatland.errors import UserError
from flatland.testing import check_noise
from flatland.theory import Problem, predict

REG = flatland.assemble(entry_points=[]).registry
FIG5A = Problem.from_expr("(x*y)**2")


def _pred(noise, hyper):
    law, why = step_law(noise, REG.create("learners", "gd"))
    assert law is not None, why
    return predict(FIG5A, "x=1.3,y=0", law, hyper={"learner": {"lr": 0.05}, "noise": hyper})


def test_covariances_add_so_predicted_drifts_add():
    """Update noise with label noise: independent, so the drift is the sum (the rule is linear in C)."""
    both = compose_noise([REG.create("noise", "update"), REG.create("noise", "label")])
    assert both.name == "update+label" and set(both.hyper) == {"update.sigma", "label.sigma"}
    p = _pred(both, {"update.sigma": 0.01, "label.sigma": 0.2})
    u = _pred(REG.create("noise", "update"), {"sigma": 0.01})
    lab = _pred(REG.create("noise", "label"), {"sigma": 0.2})
    for key in ("drift_leading", "drift_finite_eta"):
        np.testing.assert_allclose(getattr(p, key), np.add(getattr(u, key), getattr(lab, key)), rtol=1e-12)
    assert p.closed_form  # C = aI + bH: the regularizer has both terms
    assert "log" in p.regularizer and "η**2" in p.regularizer


def test_label_then_minibatch_is_a_minibatch_of_noisy_targets():
    loss = REG.create("losses", "fig5a-targets", n_rows=6, s=0.2)
    label, mb = REG.create("noise", "label"), REG.create("noise", "minibatch", batch=3)
    both = compose_noise([label, mb])
    h = {"label.sigma": jnp.asarray(0.1)}
    key = jax.random.PRNGKey(4)
    k1, k2 = jax.random.split(key)
    params = jnp.array([1.1, 0.3])
    by_hand = mb.transform(label.transform(loss, k1, {"sigma": h["label.sigma"]}), k2, {})(params)
    assert both.objective(loss, key, params, h) == pytest.approx(float(by_hand), rel=1e-14)
    assert both.needs_residuals and both.grad_cov(loss, params, h) is None  # interacting: not stated


def test_composed_declarations_pass_the_kit():
    """update + gradient: param_cov from one, grad_cov from the other — checked against samples."""
    check_noise(compose_noise([REG.create("noise", "update"), REG.create("noise", "gradient")]))


def test_two_plain_objective_changes_cannot_compose():
    class Plain(flatland.NoiseModel):
        name = "plain"

        def objective(self, loss, key, params, hyper):
            return loss(params)

    with pytest.raises(ValueError, match="without declaring transform"):
        compose_noise([Plain(), REG.create("noise", "label")])
    with pytest.raises(ValueError, match="listed twice"):
        compose_noise([REG.create("noise", "label"), REG.create("noise", "label")])


def test_cli_theory_accepts_a_plus_b(capsys):
    assert main(["theory", "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update+label", "--sigma", "0.01",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["hyper"]["noise"] == {"update.sigma": 0.01, "label.sigma": 0.01}
    assert main(["theory", "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update+lable"]) == 2
    assert "did you mean 'label'" in capsys.readouterr().err


def test_run_config_with_several_noise_models(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[task]\nname = "fig5a-targets"\nn_rows = 8\n[learner]\nname = "gd"\nlr = 0.05\n'
                   '[noise]\nname = ["label", "minibatch"]\n[noise.label]\nsigma = 0.1\n[noise.minibatch]\nbatch = 4\n'
                   '[run]\nsteps = 300\nlog_every = 50\nsnapshot_every = 100\ncheckpoint_every = 300\n')
    assert main(["run", str(cfg), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    settings = (tmp_path / "r" / "config.toml").read_text()
    assert 'name = ["label", "minibatch"]' in settings and "label = {sigma = 0.1}" in settings
    assert "loss" in (tmp_path / "r" / "metrics.csv").read_text().splitlines()[0]
    bad = tmp_path / "b.toml"
    bad.write_text(cfg.read_text().replace("[noise.label]\nsigma = 0.1\n", "sigma = 0.1\n"))
    assert main(["run", str(bad), "--out", str(tmp_path / "r2"), "--quiet"]) == 2


@pytest.mark.parametrize("noise, says", [
    # a misspelt member: once "[noise] label: … each one's settings go in its own table", which hid the typo
    ('name = ["labell", "minibatch"]\n[noise.label]\nsigma = 0.1\n[noise.minibatch]\nbatch = 4\n',
     "[noise.label] is the table of a noise model that [noise] name = ['labell', 'minibatch'] does not list; "
     "name lists 'labell' — one of the two is misspelt"),
    # one name beside a member's table: once "[noise] label must be a number, string or boolean, got dict"
    ('name = "labl"\n[noise.label]\nsigma = 0.1\n',
     "[noise.label] is a table, but [noise] name = 'labl' is one component whose options go in [noise] itself"),
])
def test_composed_noise_typos_name_the_typo(noise, says):
    import tomllib

    from flatland.config import from_dict
    from flatland.errors import UserError

    with pytest.raises(UserError) as exc:
        from_dict(tomllib.loads('[task]\nname = "fig5a-targets"\n[learner]\nname = "gd"\n[noise]\n' + noise))
    assert says in str(exc.value), exc.value
    if "labl'" in says:
        assert "is 'labl' a misspelling of 'label'?" in str(exc.value)


def test_one_noise_with_its_options_in_its_own_table_is_told_to_move_them():
    """name = "label" with [noise.label]: the message ended "is 'label' a misspelling of 'label'?"."""
    import tomllib

    from flatland.config import from_dict
    from flatland.errors import UserError

    with pytest.raises(UserError) as exc:
        from_dict(tomllib.loads('[task]\nname = "fig5a-targets"\n[learner]\nname = "gd"\n[noise]\nname = "label"\n'
                                '[noise.label]\nsigma = 0.1\n'))
    assert "move the keys of [noise.label] into [noise]" in str(exc.value)
    assert "misspelling" not in str(exc.value)


def test_a_minibatch_of_noisy_targets_multiplies_their_covariance_by_the_rows_weights():
    """label then minibatch: the batch reweights the noisy rows, so label noise's covariance is × E[s⁴] =
    1 + (N − 1)/B (here 1.125); it was predicted as the plain sum, and an independent simulation measured
    1.126 ± 0.001 of that. minibatch then label: the sum is exact (E[s²] = 1). A later member that
    declares no upstream_gain leaves the pair without a prediction rather than a wrong one."""
    from flatland import step_law
    from flatland.theory import Problem, predict as predict_law

    problem = Problem.from_residuals("x*y - 1, z", kappa=1)
    gd = REG.create("learners", "gd")

    def lead(noise, hyper):
        law, why = step_law(noise, gd)
        assert law is not None, why
        return np.asarray(predict_law(problem, [2.0, 0.5, 0.0], law, hyper={"learner": {"lr": 0.05},
                                                                          "noise": hyper}).drift_leading)

    label = lead(REG.create("noise", "label"), {"sigma": 0.003})
    for order, factor in ((["label", "minibatch"], 1 + (2 - 1) / 8), (["minibatch", "label"], 1.0)):
        composed = compose_noise([REG.create("noise", n) for n in order])
        np.testing.assert_allclose(lead(composed, {"label.sigma": 0.003}), factor * label, rtol=1e-9)
    no_replace = compose_noise([REG.create("noise", "label"), REG.create("noise", "minibatch", batch=1, replace=False)])
    np.testing.assert_allclose(lead(no_replace, {"label.sigma": 0.003}), 2.0 * label, rtol=1e-9)   # N/B

    class Rows(type(REG.create("noise", "minibatch"))):
        def upstream_gain(self, ctx):
            return None

    law, _ = step_law(compose_noise([REG.create("noise", "label"), Rows()]), gd)
    with pytest.raises(UserError, match="declares no covariance"):
        predict_law(problem, [2.0, 0.5, 0.0], law, hyper={"learner": {"lr": 0.05}, "noise": {"label.sigma": 0.003}})


@pytest.mark.slow  # ~10 s: the simulation side of the test above (before: ratio 1.126 ± 0.002, FAIL)
def test_a_check_of_label_then_minibatch_passes(tmp_path, capsys):
    rc = main(["check", "--residuals", "x*y-1, z", "--kappa", "1", "--at", "x=2,y=0.5,z=0", "--noise", "label+minibatch",
               "--sigma", "0.003", "--eta", "0.05", "--vars", "x,y,z", "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 0 and "PASS" in out, out


def test_a_members_positive_hyperparameters_stay_positive_in_the_composition():
    """A noise model may declare hyperparameters that must be > 0; composed, they keep the rule under their
    member's prefix, and ``--set`` refuses 0 for them in one line (0 stays allowed for the others)."""
    from flatland.cli._components import with_settings

    class Rate(flatland.NoiseModel):
        name, hyper, positive = "rate", {"sigma": 0.1, "tau": 1.0}, ("tau",)

    both = compose_noise([REG.create("noise", "update"), Rate()])
    assert both.positive == ("rate.tau",)
    learner = REG.create("learners", "gd")
    assert with_settings({"noise": {}, "learner": {}}, both, learner, "noise.rate.sigma=0")["noise"] == {
        "rate.sigma": 0.0}
    with pytest.raises(UserError, match=r"'noise.rate.tau=0': rate.tau must be > 0 \(the component declares it"):
        with_settings({"noise": {}, "learner": {}}, both, learner, "noise.rate.tau=0")
