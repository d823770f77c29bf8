"""The sampled audit of declared step moments: a false declaration cannot pass a Rao–Blackwellised check."""
import json

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import flatland
from flatland.cli import main
from flatland.moment_audit import compare


def run_json(capsys, *argv):
    rc = main(["check", *argv, "--json"])
    return rc, json.loads(capsys.readouterr().out)


def _draws(cov, n=2 ** 16, mean=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.multivariate_normal(np.zeros(len(cov)) if mean is None else mean, cov, size=n)
    return X


def test_true_moments_pass_and_false_ones_are_named():
    """Steps of covariance diag(1, 2, 3)·σ²: declared as such, nothing is found; declared σ²I, the third
    parameter's variance is named; a 4% error is found, a 1% one (under the 6 s.e. of 2¹⁶ draws) is not."""
    s2 = 1.6e-5
    cov = s2 * np.diag([1.0, 2.0, 3.0])
    X = _draws(cov)
    assert compare(X, np.zeros(3), cov, 1.0) is None
    found = compare(X, np.zeros(3), s2 * np.eye(3), 1.0)
    assert found and found.startswith("along parameter 3 of 3 the steps' variance is 4.8") and "declared 1.6e-05" in found
    assert compare(X, np.zeros(3), cov * np.diag([1, 1, 1.04]), 1.0) is not None
    assert compare(X, np.zeros(3), cov * np.diag([1, 1, 1.01]), 1.0) is None


def test_a_mean_the_declaration_leaves_out_is_named():
    """A step mean 0.1 sd off the declared one (a biased noise) is found; a correlated covariance declared
    without its correlation is found along an eigenvector, though each axis' variance is right."""
    cov = np.array([[1.0, 0.9], [0.9, 1.0]]) * 1e-4
    X = _draws(cov, mean=np.array([1e-3, 0.0]))
    found = compare(X, np.zeros(2), cov, 1.0)
    assert found and "mean differs" in found
    found = compare(_draws(cov), np.zeros(2), np.diag(np.diag(cov)), 1.0)
    assert found and "eigenvector" in found and "variance" in found


def test_deterministic_directions_and_round_off_are_not_mismatches():
    """No noise at all (every draw the declared mean up to round-off), and a direction declared at 1e-24
    of the others that the steps give 1e-33: both are round-off (the minibatch-label check tripped on it)."""
    X = np.full((4096, 2), 1e-17)
    assert compare(X, np.zeros(2), np.zeros((2, 2)), 1.0) is None
    cov = np.diag([1e-6, 5.6e-24])
    X = _draws(np.diag([1e-6, 1e-33]))
    assert compare(X, np.zeros(2), cov, 1.0) is None
    X[0, 0] = np.inf   # a diverged step: reported by the run, with its step, not here (an SVD raised)
    assert compare(X, np.zeros(2), cov, 1.0) is None


def _lying_noise():
    """Update noise whose steps have σ²·diag(1, 2, 3, …) while it declares σ²I (a plugin audit's case)."""
    class Lying(type(flatland.assemble().registry.create("noise", "update"))):
        name = "lying"

        def perturb_params(self, key, params, hyper):
            flat, back = ravel_pytree(params)
            w = jnp.arange(1, flat.shape[0] + 1, dtype=flat.dtype)
            return back(flat + hyper["sigma"] * jnp.sqrt(w) * jax.random.normal(key, flat.shape, flat.dtype))
    return Lying


def test_a_noise_model_with_a_false_covariance_no_longer_passes(capsys, tmp_path, with_plugin):
    """It passed with ratio 1.004: the Rao–Blackwellised measurement and the prediction both read the false
    declaration. Now the check fails as inconclusive and names the parameter; honest update noise passes."""
    with_plugin("flatland_noise_models", "lying", _lying_noise(), "declares σ²I, draws σ²·diag(1, 2, 3)")
    args = ["--residuals", "x*y*z - 1", "--at", "x=1,y=1,z=1", "--sigma", "0.004", "--chains", "1024",
            "--steps", "200", "--burn", "100"]
    rc, res = run_json(capsys, *args, "--noise", "lying", "--out", str(tmp_path / "a"))
    assert rc == 1 and not res["passed"], res["verdict"]
    assert res["verdict"].startswith("inconclusive: the step moments declared by learner 'gd' and noise 'lying'")
    assert "along parameter 3 of 3 (z) the steps' variance" in res["moments_audit"]   # the variable named
    rc, res = run_json(capsys, *args, "--noise", "update", "--out", str(tmp_path / "b"))
    assert rc == 0 and res["passed"] and "moments_audit" not in res, res["verdict"]


def test_a_false_declaration_ends_the_batches_and_asks_for_no_more_chains(monkeypatch):
    """More chains cannot mend a declaration the steps contradict: an audit found a check that ran all 8
    batches on one and then suggested --chains 1114447872."""
    import types

    from flatland import usercheck as U

    imprecise = {"ratio": 0.74, "ratio_stderr": 0.039, "across_stderr": 0.039, "passed": False, "chains": 4096,
                 "verdict": "inconclusive: declared ≠ drawn (inconclusive: 3 s.e. = 0.117 exceeds the tolerance 0.02)"}
    assert U.chains_hint(imprecise, 0.02, 100, 100)                      # an honest, imprecise run is told
    assert U.chains_hint(dict(imprecise, moments_audit="declared ≠ drawn"), 0.02, 100, 100) is None
    measured = []

    class Lab:
        def measure(self, *a, **k):
            measured.append(1)
            return types.SimpleNamespace(run=None, no_prediction=None)

    monkeypatch.setattr(U, "check_divergence", lambda run, prediction: None)
    for audit, batches in ((None, 8), ("declared ≠ drawn", 1)):
        monkeypatch.setattr(U, "summary", lambda runs, *a, audit=audit: dict(imprecise, moments_audit=audit))
        measured.clear()
        U.run_batches(Lab(), None, None, None, {}, (0.0,), U.Plan(4096, 100, 100, 100, True), 0, None, None, None,
                      None, 0.02)
        assert len(measured) == batches, (audit, len(measured))


def test_both_verdict_builders_fail_a_measurement_built_on_false_moments():
    """drift_ratio and scalar (every built-in row goes through one of them) fail as inconclusive when the
    run's audit found a mismatch, whatever the numbers; without one they judge the numbers."""
    from flatland import drift_ratio, scalar

    rng = np.random.default_rng(1)
    pred = np.tile([1.0, 2.0], (500, 1))
    meas = pred * (1 + 1e-3 * rng.standard_normal((500, 1)))
    assert drift_ratio("r", meas, pred, tol=0.02, estimator="e").passed
    row = drift_ratio("r", meas, pred, tol=0.02, estimator="e", moments_audit="along parameter 1 of 2 …")
    assert not row.passed and row.details["verdict"].startswith("inconclusive: along parameter 1 of 2")
    kw = dict(measured=1.0, stderr=0.001, predicted=1.0, tol=0.02, tolerance="t")
    assert scalar("s", "x", **kw).passed
    row = scalar("s", "x", **kw, moments_audit="along parameter 1 of 2 …")
    assert not row.passed and row.details["moments_audit"] == "along parameter 1 of 2 …"
