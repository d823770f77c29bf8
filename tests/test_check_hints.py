"""What a failed check of one's own valley says to do next (from a plugin written from the README alone)."""
import json
import re

import jax.numpy as jnp

import flatland
from flatland.cli import main


def run_json(capsys, *argv):
    rc = main(["check", *argv, "--json"])
    return rc, json.loads(capsys.readouterr().out)


def test_a_check_that_measured_elsewhere_says_which_sigma_would_not(capsys, tmp_path):
    """On xyz = 1 at σ = 0.02 the chains spread so far along Γ that the averaged prediction moves 9.8%
    (inconclusive) and nothing said what σ to use. The hint's σ, run at the same length, must pass."""
    args = ["--residuals", "x*y*z - 1", "--at", "x=1,y=1,z=1", "--noise", "update", "--chains", "1024",
            "--steps", "100", "--burn", "100"]
    rc, res = run_json(capsys, *args, "--sigma", "0.02", "--out", str(tmp_path / "a"))
    assert rc == 1 and res["verdict"].startswith("inconclusive: the prediction where the chains were")
    hint = [w for w in res["warnings"] if "should bring it to about 1%" in w]
    assert len(hint) == 1, res["warnings"]
    sigma = re.search(r"--sigma (\S+) should", hint[0]).group(1)
    rc, res = run_json(capsys, *args, "--sigma", sigma, "--out", str(tmp_path / "b"))
    assert rc == 0 and res["passed"] and res["prediction_shift_from_point"] < 0.015, res["verdict"]


def _wrong_formula():
    """A loss whose code is x·y − 1 while its formula, which the theory reads, says x·y·z − 1."""
    return flatland.Loss("wrongexpr", residuals=lambda t: jnp.stack([t[0] * t[1] - 1.0]),
                         residual_exprs=("x*y*z - 1",), variables=("x", "y", "z"), point=(1.0, 1.0, 1.0))


def test_a_failed_check_of_a_registered_loss_asks_the_kit_about_its_formula(capsys, tmp_path, with_plugin):
    """It failed "off by −0.17" as if the theory were wrong; the kit, run by hand, named the loss."""
    with_plugin("flatland_losses", "wrongexpr", _wrong_formula, "code and formula disagree")
    rc, res = run_json(capsys, "--loss", "wrongexpr", "--at", "x=1,y=1,z=1", "--noise", "update", "--sigma",
                       "0.004", "--chains", "512", "--steps", "100", "--burn", "100", "--out", str(tmp_path / "r"))
    said = [w for w in res["warnings"] if w.startswith("the failure may be the loss's")]
    assert rc == 1 and len(said) == 1 and "check_loss" in said[0], res["warnings"]


def test_an_observable_measured_without_a_prediction_is_printed(capsys, tmp_path):
    """With a learner that declares no theory, --observable was measured but printed nowhere but
    results.json."""
    rc = main(["check", "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--learner", "momentum",
               "--sigma", "0.002", "--observable", "x**2", "--chains", "256", "--steps", "200", "--burn", "100",
               "--out", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert rc == 0 and "E[Δ(x**2)] per step: measured" in out and "(no prediction to compare with)" in out, out


def test_an_observable_constant_on_gamma_under_label_noise_is_judged_as_zero(capsys, tmp_path, with_plugin,
                                                                            silent_update_noise):
    """xy on xy = 1 under label noise: prediction and Itô term are 0 up to round-off (−3.8e-24), and the
    tolerance "2% of them" was round-off too: it failed as inconclusive (an independent audit). Now a zero
    prediction needs a measurement 0 within 3 s.e.; the negative case — a noise model that declares C = 0
    while its steps are update noise's, so x is predicted not to move but does — must still fail."""
    args = ["--chains", "512", "--steps", "200", "--burn", "100"]
    rc, res = run_json(capsys, "--residuals", "x*y - 1", "--at", "x=2,y=0.5", "--noise", "label", "--observable",
                       "x*y", "--out", str(tmp_path / "a"))
    assert rc == 0 and res["observable_passed"], res["observable_verdict"]
    assert res["observable_verdict"].startswith("zero predicted")

    with_plugin("flatland_noise_models", "update-declared-silent", silent_update_noise, "declares C = 0")
    rc, res = run_json(capsys, "--residuals", "x*y - 1", "--at", "x=2,y=0.5", "--noise", "update-declared-silent",
                       "--sigma", "0.01", "--observable", "x", *args, "--out", str(tmp_path / "b"))
    assert rc == 1 and res["observable_verdict"] == "zero predicted (0 up to round-off); measured not 0 within 3 s.e."


def test_an_imprecise_verdict_names_the_chains_that_would_decide_it():
    """3 s.e. of the tangent part was 1.5× the tolerance after the 8-batch budget, and nothing said what to
    run; --chains alone also fixes the plan's full length, which moved the chains farther (an audit)."""
    from flatland.usercheck import chains_hint

    res = {"passed": False, "chains": 32768, "ratio_stderr": 0.001, "across_stderr": 0.003,
           "tangent_ratio_stderr": 0.0102, "verdict": "along Γ …: inconclusive: 3 s.e. = 0.0307 exceeds the tolerance 0.02"}
    hint = chains_hint(res, 0.02, 200, 100)
    k = int(re.search(r"--chains (\d+)", hint).group(1))
    want = 32768 * 2 * (3 * 0.0102 / 0.02) ** 2        # s.e. ∝ 1/√chains: 3 s.e. to 0.7 tol, whole 256s
    assert want <= k < want + 256 and "--steps 200 --burn 100" in hint
    assert chains_hint(dict(res, verdict="off by +0.05 (tolerance 0.02)"), 0.02, 200, 100) is None
    assert chains_hint(dict(res, passed=True), 0.02, 200, 100) is None
