"""``flatland theory``: the acceptance commands, human output, and one-line errors (exit 2)."""
import json

import numpy as np
import pytest

from flatland.cli import main


def _json(capsys, argv):
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return json.loads(out)  # exactly one JSON object on stdout


def test_acceptance_fig5a_update_noise(capsys):
    out = _json(capsys, ["theory", "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update",
                         "--sigma", "0.01", "--eta", "0.05", "--json"])
    assert out["variables"] == ["x", "y"] and out["point"] == [1.0, 0.0]
    assert out["drift_leading"][0] == pytest.approx(-0.01**2 / 2, rel=1e-12)  # −σ²/(2x)
    assert out["drift_leading"][1] == 0
    assert out["regularizer"] == "σ**2*log(2*x**2 + 2*y**2)/4"  # Φ = (σ²/4) log pdet H, drift −P_T∇Φ


def test_json_names_the_learner_and_the_noise(capsys):
    assert main(["theory", "--loss", "(x*y-1)**2", "--at", "x=1,y=1", "--noise", "update", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["learner"], out["noise"]) == ("gd", "update")


def test_acceptance_residuals_label_noise(capsys):
    out = _json(capsys, ["theory", "--residuals", "x*y", "--kappa", "1", "--at", "x=1,y=0", "--noise", "label",
                         "--sigma", "0.01", "--eta", "0.05", "--json"])
    assert out["drift_leading"][0] == pytest.approx(-2 * 0.05**2 * 0.01**2, rel=1e-12)  # −2η²σ²x = −5e-7
    assert out["drift_leading"][1] == 0
    assert out["kappa"] == 1.0 and out["residuals"] == ["x*y"]


def test_registered_loss_name_observable_and_vars(capsys):
    out = _json(capsys, ["theory", "--loss", "opposite-3d", "--at", "x=1,y=0,z=0", "--noise", "label",
                         "--sigma", "0.1", "--eta", "0.05", "--observable", "x**2", "--json"])
    assert out["drift_leading"][0] > 0  # label noise climbs toward x = 1.5 here; update noise goes the other way
    assert out["observable_drift_leading"] == pytest.approx(2 * out["drift_leading"][0], rel=1e-12)
    out = _json(capsys, ["theory", "--loss", "(x*y)**2", "--vars", "y,x", "--at", "x=1,y=0", "--noise", "update",
                         "--json"])
    assert out["variables"] == ["y", "x"] and out["drift_leading"][1] < 0


def test_human_output(capsys):
    assert main(["theory", "--loss", "0.5*(1+x**2)**2*y**2", "--at", "x=1,y=0.01", "--noise", "update",
                 "--latex"]) == 0
    out = capsys.readouterr().out
    for text in ("Hessian on Γ", "eigenvalues", "tangent space", "regularizer Φ", "leading order", "finite η",
                 "warning: the point was not on Γ", r"\log"):
        assert text in out, text


def test_curved_manifold_text_shows_the_normal_motion_and_json_is_strict(capsys):
    """On xy = 1 the projected point also moves along the normal; the text showed only the tangent drift,
    and --json wrote bare NaN (no closed form), which strict JSON parsers refuse."""
    # multiplicative noise (example plugin): C = σ²diag(θ²) is not a·I + b·H, so there is no closed form (NaN)
    argv = ["theory", "--residuals", "x*y - 1", "--at", "x=2,y=0.5", "--noise", "multiplicative", "--sigma", "0.01"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "n_curv" in out and "mean step of Φ(θ)" in out
    assert main(argv + ["--json"]) == 0

    def refuse(token):
        raise ValueError(f"not JSON: {token}")
    pred = json.loads(capsys.readouterr().out, parse_constant=refuse)
    step = [float(v) for v in out.split("mean step of Φ(θ) = finite η + n_curv: [")[1].split("]")[0].split(",")]
    want = [a + b for a, b in zip(pred["drift_finite_eta"], pred["drift_normal"])]
    assert step == pytest.approx(want, rel=1e-5) and max(map(abs, pred["drift_normal"])) > 0
    assert pred["drift_closed_form_leading"] == [None, None]


@pytest.mark.parametrize("argv, message", [
    (["--loss", "(x*y)**2", "--at", "x1,y=0", "--noise", "update"], "bad point"),
    (["--loss", "(x*y)**2", "--at", "x=1,z=0", "--noise", "update"], "'z' in the point is not in the expression"),
    (["--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "updat"], "did you mean 'update'"),
    (["--loss", "x**2*y**2 + x*y**3", "--at", "x=1,y=0", "--noise", "label"], "--residuals"),
    (["--loss", "__import__('os')", "--at", "x=1", "--noise", "update"], "underscores are not allowed"),
    (["--loss", "(x*y)**2", "--at", "x=0,y=0", "--noise", "update"], "not finite"),
    (["--loss", "x**2 + 1", "--at", "x=1", "--noise", "update"], "far from any zero-loss manifold"),
    (["--loss", "fig5b", "--at", "x=1,y=0", "--noise", "update"], "did you mean 'fig5a'"),
    (["--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "sed"], "is a learner, not a noise model"),
    (["--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--learner", "adam"],
     "declares no theory (Learner.theory = LearnerTheory(...)): no prediction; `flatland check` with the same"),
    (["--loss", "(x*y)**2", "--kappa", "2", "--at", "x=1,y=0", "--noise", "update"], "--kappa goes with --residuals"),
    (["--residuals", "x*y", "--kappa", "-1", "--at", "x=1,y=0", "--noise", "update"], "kappa must be positive"),
    (["--loss", "(x*y)**2", "--at", "x=1,y=0"], "--noise"),
    (["--loss", "(-1)**(1/3)*x**2*y**2", "--at", "x=1,y=0", "--noise", "update"], "not real"),
    (["--loss", "relu(sqrt(-1))*x**2", "--at", "x=1", "--noise", "update"], "non-real argument"),
    (["--loss", "(x*y)**2", "--at", "x=1e308,y=0", "--noise", "update"], "size at most 1e+100"),
    (["--loss", "(x*y)**2", "--at", "x=1_0,y=0", "--noise", "update"], "'1_0' is not a number"),
    (["--loss", "(x*y)**2", "--at", "x=\u0661,y=0", "--noise", "update"], "is not a number"),   # Arabic-Indic 1
    (["--loss", "(x*y)**2", "--at", "x=inf,y=0", "--noise", "update"], "is not a number"),
    (["--loss", "exp(x)", "--at", "x=1", "--noise", "update"], "does the loss reach 0 near it?"),
    (["--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--sigma", "1e308"], "at most 1e+100"),
    (["--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--eta", "1e308"], "at most 1e+100"),
    (["--loss", "x**2*exp(x*1e300)*y**2", "--at", "x=1,y=0", "--noise", "update"], "beyond double precision"),
    (["--residuals", "1e99999999*x*y", "--at", "x=1,y=0", "--noise", "update"], "too large"),   # hung: 10**N built
    (["--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--observable", "1e99999999*x"], "too large"),
    # a --sigma that nothing takes (no noise, gd has no sigma) was silently ignored
    (["--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "none", "--sigma", "0.5"], "--sigma 0.5 sets nothing here"),
])
def test_user_errors_are_one_line_with_exit_2(capsys, argv, message):
    assert main(["theory", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("flatland")
    assert "Traceback" not in err and message in err


def test_symbolic_work_has_a_time_budget_that_ends_in_one_line():
    """(a+…+h)**99 passes the parser but its derivatives are huge: the budget stops it (module theory._budget)."""
    import os
    import subprocess
    import sys
    import time

    env = dict(os.environ, FLATLAND_SYMBOLIC_SECONDS="2")
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "flatland", "theory", "--loss", "(a+b+c+d+e+f+g+h)**99",
                        "--at", "a=0,b=0,c=0,d=0,e=0,f=0,g=0,h=0", "--noise", "update", "--sigma", "0.01"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "more than 2 s of symbolic work" in r.stderr
    assert time.monotonic() - t0 < 60
    env["FLATLAND_SYMBOLIC_SECONDS"] = "soon"
    r = subprocess.run([sys.executable, "-m", "flatland", "theory", "--loss", "(x*y)**2", "--at", "x=1,y=0",
                        "--noise", "update", "--sigma", "0.01"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "FLATLAND_SYMBOLIC_SECONDS must be a number" in r.stderr


def test_huge_exponents_are_not_factored_into_huge_polynomials():
    """exp(x*1e300) used to run out the 60 s budget: factoring wrote it as a polynomial of degree 10³⁰⁰."""
    import time

    import sympy as sp

    from flatland.theory import parse_expr
    from flatland.theory._problem import residuals_from_loss

    for text in ("exp(x*1e300)", "exp(x*1e300)*y**2 + x**2", "exp(x/1e300)*y**2"):
        t0 = time.process_time()
        residuals_from_loss(parse_expr(text))
        assert time.process_time() - t0 < 2.0, text
    kappa, res = residuals_from_loss(sp.expand((sp.Symbol("x") * sp.Symbol("y") - 1) ** 2))   # factoring still used
    assert len(res) == 1


def _nest(f, depth, inner="x"):
    return f"{f}(" * depth + inner + ")" * depth


@pytest.mark.parametrize("argv, message", [
    # NaN in the Jacobian: the SVD of the projection step did not converge (was an internal error, exit 70)
    (["--loss", _nest("log", 8) + "**2*y**2", "--at", "x=1,y=0"], "the loss is not finite at the point x=1, y=0"),
    # deeper nests of functions are refused by the parser, at once
    (["--loss", _nest("tanh", 9) + "**2*y**2", "--at", "x=0,y=0"], "functions nested more than 8 deep"),
    # inf in the Jacobian: a RuntimeWarning printed above the one-line error
    (["--loss", "log(log(x))**2", "--at", "x=1"], "the loss is not finite at the point x=1"),
    # an infinite closed-form drift at a degenerate point: a RuntimeWarning above the one-line error
    # (y² + (xy)² at the origin used to stand here: Γ is the x-axis, rank 1 at every point, so it is regular)
    (["--loss", "(x*y)**2 + 0*x**2*sqrt(x)**2", "--at", "x=0,y=0"], "not finite at this point"),
])
def test_non_finite_values_at_the_point_are_one_line_without_warnings(capsys, argv, message):
    """#17 item 2: NumPy's RuntimeWarnings and LinAlgErrors never reach the user; one line, exit 2."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["theory", *argv, "--noise", "update"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not [w for w in caught if not issubclass(w.category, DeprecationWarning)], [str(w.message) for w in caught]


def _log_nest(depth, a, b):
    """log(1 + u + ab − 1) nested ``depth`` deep around u = ab − 1, squared: Γ is ab = 1, a regular valley (rank 1),
    whose symbolic derivatives take ~11 s of CPU at depth 8 (measured, 2026-12-04)."""
    inner = f"{a}*{b}-1"
    for _ in range(depth):
        inner = f"log(1+{inner}+{a}*{b}-1)"
    return f"({inner})**2"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # an alarm lost in a gc callback
@pytest.mark.parametrize("loss, at", [(_log_nest(8, "x", "y"), "x=1,y=1"), (_log_nest(8, "z", "w"), "z=1,w=1")])
def test_deep_nests_of_functions_end_at_the_symbolic_budget_in_one_line(capsys, monkeypatch, loss, at):
    """Nests within the parser's limit of 8 functions can still take long in the later stages; the budget
    (1 s here, in-process: SIGALRM in the main thread) ends each in one line. Each case has its own symbols,
    so SymPy's cache of one cannot speed up the other. (The earlier cases, log(1 + (…)²) nests, became quick
    once a valley flat across Γ was recognised early: ~3 s against the 1 s budget, and the race was lost now
    and then.) An alarm can land in a garbage-collection callback (Hypothesis installs one), where it is
    printed as "Exception ignored" and lost — seen in a clean-clone run; the repeating alarm still ends it."""
    import time

    monkeypatch.setenv("FLATLAND_SYMBOLIC_SECONDS", "1")
    t0 = time.process_time()
    assert main(["theory", "--loss", loss, "--at", at, "--noise", "update"]) == 2
    assert time.process_time() - t0 < 3.0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "more than 1 s of symbolic work" in err, err


def test_a_huge_constant_gives_a_prediction_with_its_warning_and_no_numpy_warning(capsys):
    """#17 item 2: ``*1e300`` is a valid loss whose valley is too sharp for any step: a prediction whose
    warning says so (unstable, ηλ ≫ 2), no overflow, no RuntimeWarning."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = _json(capsys, ["theory", "--loss", "(x*y)**2*1e300", "--at", "x=1,y=0", "--noise", "update", "--json"])
    assert got["eigenvalues"][-1] == pytest.approx(2e300) and any("unstable" in w for w in got["warnings"])
    assert not [w for w in caught if not issubclass(w.category, DeprecationWarning)], [str(w.message) for w in caught]


def test_the_budget_is_not_swallowed_by_code_that_catches_exception(monkeypatch):
    """The closed form evaluates a plugin's covariance under `except Exception`: an alarm landing there was
    caught as "no closed form", and the work went on with no budget left (the intermittent >120 s
    failure of the test above)."""
    import time

    from flatland.errors import UserError
    from flatland.theory._budget import symbolic_budget

    monkeypatch.setenv("FLATLAND_SYMBOLIC_SECONDS", "0.2")
    t0 = time.monotonic()
    with pytest.raises(UserError, match="more than 0.2 s of symbolic work"):
        with symbolic_budget("the work"):
            try:
                while time.monotonic() - t0 < 1.0:
                    pass
            except Exception:  # noqa: BLE001 - what a plugin or the closed form may do
                pass
            while time.monotonic() - t0 < 1.5:
                pass
    assert time.monotonic() - t0 < 1.0


def test_set_gives_theory_and_check_any_hyperparameter(capsys):
    """Only --sigma and --eta reached the components from the command line: a learner plugin's weight decay
    or temperature could not be set for `theory` or `check`."""
    assert main(["theory", "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update+label", "--json",
                 "--set", "noise.label.sigma=0.2,noise.update.sigma=0.003"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert both["hyper"]["noise"] == {"update.sigma": 0.003, "label.sigma": 0.2}
    assert main(["theory", "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "label", "--sigma", "0.2", "--json"]) == 0
    label = json.loads(capsys.readouterr().out)
    assert main(["theory", "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--sigma", "0.003", "--json"]) == 0
    update = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(both["drift_leading"], np.add(label["drift_leading"], update["drift_leading"]), rtol=1e-12)
    for bad, says in (("learner.lrr=0.1", "did you mean 'lr'?"), ("learner.lr=-1", "must be ≥ 0"),
                      ("learner.lr=fast", "not a number"), ("lr=0.1", "write PART.KEY=VALUE"),
                      ("learner.lr=0", "lr must be > 0 (the step size")):
        assert main(["theory", "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--set", bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and says in err, err


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the lost alarm, on purpose
def test_the_budget_survives_an_alarm_lost_in_a_finalizer(monkeypatch):
    """An alarm that lands in a __del__ is printed as "Exception ignored" and lost: with one alarm the work
    ran on unbounded (the x*y nest above finished in 11 s instead of stopping at 1 s, now and then, in the
    full run). The alarm repeats until the work stops."""
    import time

    from flatland.errors import UserError
    from flatland.theory._budget import symbolic_budget

    class Slow:
        def __del__(self):                      # busy from ~0 s to 0.5 s: the 0.2 s alarm lands in here
            t = time.monotonic()
            while time.monotonic() - t < 0.5:
                pass

    monkeypatch.setenv("FLATLAND_SYMBOLIC_SECONDS", "0.2")
    t0 = time.monotonic()
    with pytest.raises(UserError, match="more than 0.2 s"):
        with symbolic_budget("the work"):
            Slow()
            while time.monotonic() - t0 < 2.0:
                pass
    assert time.monotonic() - t0 < 1.5
