"""``flatland check`` from the command line: the user's own valley, bad input, a suite run, the table.

Small chain counts keep each run to seconds; the full built-in suite is what
``flatland check`` itself runs (the slow-marked test runs it end to end).
"""
import json

import numpy as np
import pytest

from flatland.cli import main
from flatland.contracts import CheckResult


@pytest.fixture(autouse=True)
def no_disk_cache(monkeypatch):
    """Hermetic: no XLA compilation cache in the user's home from the tests."""
    monkeypatch.setenv("FLATLAND_XLA_CACHE", "off")


def run_json(capsys, *argv):
    rc = main(["check", *argv, "--json"])
    out = capsys.readouterr().out
    return rc, json.loads(out)


def test_user_valley_fig5a_update(capsys, tmp_path):
    """The issue's acceptance command (fewer chains): drift toward the flat end within 2% of finite-η."""
    rc, res = run_json(capsys, "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--sigma", "0.005",
                       "--eta", "0.05", "--chains", "3000", "--steps", "300", "--burn", "150", "--out", str(tmp_path))
    for key in ("variables", "predicted", "predicted_leading", "measured", "stderr", "ratio", "ratio_stderr",
                "passed", "tolerance"):
        assert key in res
    assert res["variables"] == ["x", "y"]
    assert res["measured"][0] < 0  # toward the flat end x → 0
    assert abs(res["ratio"] - 1) <= 0.02 and 3 * res["ratio_stderr"] <= 0.02
    assert rc == 0 and res["passed"]
    assert "--burn 150 was rounded up to 200 (whole chunks of 100 steps)" in res["warnings"]  # it was silent
    for name in ("settings.json", "versions.json", "results.json", "table.txt"):
        assert (tmp_path / name).is_file()
    # as a run's: the loaded plugins with their versions (a check's lacked them), and the loss as given
    plugins = json.loads((tmp_path / "versions.json").read_text())["plugins"]
    assert {"flatland.valleys", "example"} <= {p["name"] for p in plugins}, plugins
    assert json.loads((tmp_path / "settings.json").read_text())["given"]["loss"] == "(x*y)**2"
    assert list((tmp_path / "figures").glob("*.png"))


@pytest.mark.slow  # ~11 s; tests/test_projection.py keeps an observable test in the default run (budget: 240 s)
def test_user_valley_observable_ito(capsys, tmp_path):
    rc, res = run_json(capsys, "--residuals", "x*y - 1", "--at", "x=2,y=0.5", "--noise", "update",
                       "--observable", "x**2 - y**2", "--chains", "1000", "--steps", "200", "--out", str(tmp_path))
    for key in ("observable_predicted", "observable_predicted_leading", "observable_predicted_without_ito",
                "observable_measured", "observable_stderr", "observable_passed"):
        assert key in res
    # the measurement sides with the prediction that has the Itô term
    gap_with = abs(res["observable_measured"] - res["observable_predicted"])
    gap_without = abs(res["observable_measured"] - res["observable_predicted_without_ito"])
    assert gap_with < 0.05 * gap_without
    assert res["observable_passed"] and res["observable_estimator"] == "rao-blackwell, at θ"


@pytest.mark.slow  # ~30 s end to end; the default run keeps the x² − y² observable test above
def test_user_valley_observable_with_a_normal_gradient_is_measured_at_the_projected_point(capsys, tmp_path):
    """x + y on xy = 1 has a normal gradient: at θ its change carries the normal fluctuations (s.e. was
    1.6× the prediction, always inconclusive); at Φ(θ) it is precise."""
    rc, res = run_json(capsys, "--residuals", "x*y - 1", "--at", "x=2,y=0.5", "--noise", "update",
                       "--observable", "x + y", "--chains", "1000", "--steps", "200", "--out", str(tmp_path))
    assert res["observable_estimator"] == "rao-blackwell, at the projected point Φ(θ)"
    at_theta = res["observable_estimators"]["rao-blackwell, at θ"][1]
    assert res["observable_stderr"] < 0.1 * abs(res["observable_predicted"]) < at_theta
    assert abs(res["observable_ratio"] - 1) < 3 * res["observable_ratio_stderr"] + 0.02


@pytest.mark.slow  # ~20 s end to end
def test_sed_observable_on_a_curved_valley_holds_the_gradient_driven_covariance(capsys, tmp_path):
    """SED's step noise grows with the gradient off Γ (``gradient_covariance``): averaged over the normal
    fluctuations it adds E K(Hδ) to the step's covariance, and on a curved Γ that part's tangent block
    moves the Itô term and n_curv. Here (μs²λ = 0.0997, inside the range SED is checked for) it is 3.7% of
    the observable's prediction; the
    prediction without it would fail this check (a mutation that left it out survived every test)."""
    rc, res = run_json(capsys, "--residuals", "x*y - 1", "--at", "x=1.5,y=0.6666666666666666", "--learner", "sed",
                       "--noise", "none", "--sigma", "0.05", "--eta", "14.8", "--observable", "x**2 + y**2",
                       "--out", str(tmp_path))
    assert res["observable_passed"], (res["observable_measured"], res["observable_predicted"])
    assert abs(res["observable_ratio"] - 1) < 0.02 and 3 * res["observable_ratio_stderr"] < 0.02


@pytest.mark.slow  # ~30 s of two end-to-end checks; tests/test_projection.py covers the projection in the default run
def test_loss_and_residual_forms_of_a_valley_agree(capsys, tmp_path):
    """The same codimension-2 valley as an (expanded) --loss and as --residuals: the same prediction.

    Regression: the value-only projection onto Γ (pseudo-inverse Newton) threw
    near-Γ points far along the curve, and the trajectory-averaged prediction
    of the --loss form was 9% off that of the --residuals form here.
    """
    common = ["--at", "x=1,y=1,z=1", "--noise", "update", "--sigma", "0.03", "--eta", "0.05", "--chains", "200",
              "--steps", "100"]
    _, by_value = run_json(capsys, "--loss", "0.5*(x**2*y**2*z**2 - 2*x*y*z + 1 + x**2 - 2*x*y**2 + y**4)",
                           *common, "--out", str(tmp_path / "value"))
    _, by_res = run_json(capsys, "--residuals", "x*y*z - 1, x - y**2", *common, "--out", str(tmp_path / "res"))
    a, b = np.asarray(by_value["predicted"]), np.asarray(by_res["predicted"])
    assert np.linalg.norm(a - b) <= 0.01 * np.linalg.norm(b)
    assert np.allclose(by_value["raw_measured"], by_res["raw_measured"], rtol=1e-6)  # same chains, same steps
    # the projected point's step depends on the projection map sample by sample (value form: Newton on the
    # normal space; residual form: Gauss–Newton), not in mean: agreement within 4 combined s.e.
    diff = np.abs(np.subtract(by_value["measured"], by_res["measured"]))
    assert np.all(diff <= 4 * np.hypot(by_value["stderr"], by_res["stderr"]))


@pytest.mark.parametrize("argv,words", [
    (["--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "bogus"], "unknown noise model"),
    (["--loss", "(x*y - 1)**2", "--at", "x=0,y=0", "--noise", "update"], "zero-loss manifold"),
    (["--loss", "x**2 + 1", "--at", "x=0", "--noise", "update"], "zero-loss manifold"),
    # a loss that crosses 0 (not its square): it said "the drift is not finite (a degenerate point…)"
    (["--loss", "x*y - 1", "--at", "x=1,y=1", "--noise", "update"], "gradient does not vanish where it is 0"),
    # at (1, 1) a neighbour probe that ran along Γ counted round-off as rank: "not finite … degenerate point"
    (["--loss", "(x*y - 1)**4", "--at", "x=1,y=1", "--noise", "update"], "H vanishes on Γ"),
    (["--loss", "(x*y - 1)**4", "--at", "x=2,y=0.5", "--noise", "update"], "H vanishes on Γ"),
    (["--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--eta", "1.5"], "unstable"),
    (["--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--sigma", "2", "--eta", "0.9",
      "--chains", "16", "--steps", "500"], "diverged"),
    (["--loss", "(x*y)**2", "--at", "x=1", "--noise", "update"], "no value for y"),
    (["--at", "x=1,y=0"], "needs --loss or --residuals"),
    # given to the built-in suite, they were silently ignored (the suite has its own settings)
    (["--sigma", "0.1", "--set", "learner.lr=0.1"], "--sigma, --set need --loss or --residuals"),
    (["--suite", "no-such-suite"], "no checks in suite"),
    (["--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--only", "drift-constants"], "built-in suites only"),
    (["--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--tolerance", "5"], "must be below 1"),
    (["--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--sigmaa", "0.1"], "did you mean --sigma?"),
    (["--loss", "1e99999999*(x*y)**2", "--at", "x=1,y=0", "--noise", "update"], "too large"),   # #17 item 1: hung
    (["--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--observable", "1e99999999*x"], "too large"),
    (["--loss", "(x*y)**2*1e300", "--at", "x=1,y=0", "--noise", "update"], "unstable"),         # #17 item 2
    # a --sigma nothing takes was ignored, and the header still said σ = 0.01
    (["--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "none", "--sigma", "0.5"], "--sigma 0.5 sets nothing"),
    # σ = 0 was accepted, and the check passed: nothing moved, so "zero drift" was measured exactly
    (["--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--sigma", "0"], "σ = 0 switches the noise off"),
])
def test_bad_input_is_one_line_and_nonzero(capsys, tmp_path, argv, words):
    rc = main(["check", *argv, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert words in err and len(err.splitlines()) == 1, err


def test_suite_subset_writes_results(capsys, tmp_path):
    rc = main(["check", "--only", "gd-zero-drift", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "gd-zero-drift" in out and "PASS" in out and "2/2 passed" in out
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["passed"] and [r["name"] for r in res["results"]] == ["gd-zero-drift", "momentum-zero-drift"]
    # the check has power: while converging, finite-η GD and momentum do move the projected point
    assert all(r["details"]["control_over_tol"] > 10 for r in res["results"])
    assert (tmp_path / "figures" / "measured-vs-predicted.png").is_file()
    captions = (tmp_path / "figures" / "README.md").read_text()
    assert "`measured-vs-predicted.png` — every verdict row" in captions
    assert json.loads((tmp_path / "settings.json").read_text())["checks"] == ["gd-zero-drift"]


def test_table_and_exit_status_follow_verdicts():
    from flatland.cli.check_cmd import format_table, run_checks
    from flatland.contracts import Check

    good = CheckResult("good", "s", 1.0, 1.01, 0.001, "|r−1| ≤ 2%", True, ratio=1.01, ratio_stderr=0.001)
    bad = CheckResult("bad", "s", 1.0, 1.5, 0.001, "|r−1| ≤ 2%", False, ratio=1.5, ratio_stderr=0.001,
                      warnings=["ηλ near 2"], details={"verdict": "off by +0.5"})

    def boom(options):
        raise RuntimeError("kaput")

    checks = [Check("a", lambda o: [good]), Check("b", lambda o: [bad]), Check("c", boom),
              Check("d", lambda o: ["ok"])]     # not a CheckResult: was an internal error while rows were written
    results = run_checks(checks, {}, jobs=2, quiet=True)
    assert [name for name, _, _ in results] == ["a", "b", "c", "d"]
    rows = [r for _, got, _ in results for r in got]
    assert [r.passed for r in rows] == [True, False, False, False]
    table = format_table(rows)
    assert "PASS" in table and "FAIL" in table and "kaput" in table and "ηλ near 2" in table
    assert "must yield CheckResult rows; it gave str 'ok'" in table


def test_a_row_that_passes_on_nan_fails_and_a_bare_row_is_told_to_be_a_list():
    """A plugin's CheckResult(passed=True) with a NaN prediction showed PASS; a check returning one bare
    CheckResult failed with "TypeError: 'CheckResult' object is not iterable"."""
    from flatland.cli.check_cmd import run_checks
    from flatland.contracts import Check

    nan_pass = CheckResult("nan", "s", float("nan"), 1.0, 0.001, "|r−1| ≤ 2%", True)
    zero = CheckResult("zero", "s", 0.0, 1e-9, 1e-9, "0 within 3 s.e.", True)   # finite: stays PASS
    bare = CheckResult("bare", "s", 1.0, 1.0, 0.001, "|r−1| ≤ 2%", True)
    results = run_checks([Check("a", lambda o: [nan_pass, zero]), Check("b", lambda o: bare)], {}, jobs=1,
                         quiet=True)
    (a, b) = [got for _, got, _ in results]
    assert [r.passed for r in a] == [False, True]
    assert "PASS with a non-finite predicted (predicted = nan)" in a[0].details["verdict"]
    assert not b[0].passed and "it returned one CheckResult (wrap it in a list" in b[0].details["verdict"]


@pytest.mark.slow
def test_whole_valley_suite_passes(tmp_path):
    """The built-in suite end to end (what `flatland check` runs; about 2 minutes)."""
    assert main(["check", "--out", str(tmp_path)]) == 0


def test_results_folders_are_claimed_exclusively_and_never_overwritten(tmp_path, capsys):
    """Simultaneous starts get distinct default folders; a used --out is refused before any work."""
    from concurrent.futures import ThreadPoolExecutor

    from flatland.results import default_dir

    with ThreadPoolExecutor(16) as pool:
        paths = list(pool.map(lambda _: default_dir(tmp_path / "res"), range(64)))
    assert len(set(paths)) == 64 and all(p.is_dir() for p in paths)

    used = tmp_path / "used"
    used.mkdir()
    (used / "results.json").write_text("{}")
    assert main(["check", "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--out", str(used)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds results" in err
    assert (used / "results.json").read_text() == "{}"

    # two starts on one empty --out: the claim is atomic, exactly one gets the folder
    from flatland.errors import UserError
    from flatland.results import _claim

    def claim(_):
        try:
            return _claim(tmp_path / "race")
        except UserError:
            return None
    with ThreadPoolExecutor(16) as pool:
        won = [p for p in pool.map(claim, range(32)) if p is not None]
    assert len(won) == 1


def test_a_suite_keeps_each_finished_check_as_it_goes_and_shows_progress(tmp_path, capsys):
    import argparse
    import json as _json

    from flatland.cli.check_cmd import _keeper
    from flatland.contracts import CheckResult
    from flatland.results import ResultsFolder

    out = ResultsFolder(tmp_path / "res")
    on_done = _keeper(out, 3, argparse.Namespace(json=False, suite="s"))
    row = CheckResult(name="a", statistic="s", predicted=1.0, measured=1.0, stderr=0.1, tolerance="t", passed=True)
    on_done("a", [row], 2.0)
    on_done("b", [CheckResult(name="b", statistic="s", predicted=1.0, measured=3.0, stderr=0.1, tolerance="t", passed=False)], 4.0)
    kept = _json.loads((tmp_path / "res" / "partial.json").read_text())
    assert kept["checks_done"] == ["a", "b"] and kept["of"] == 3 and len(kept["results"]) == 2
    err = capsys.readouterr().err
    assert "2/3 checks" in err and "ETA" in err and "1 failing row(s)" in err


def test_list_shows_each_check_s_suite_and_only_points_to_the_right_suite(capsys):
    import json as _json

    assert main(["list", "checks", "--json"]) == 0
    rows = {r["name"]: r for r in _json.loads(capsys.readouterr().out)}
    assert rows["relu-zero-eigenvalues"]["suite"] == "relu" and rows["drift-constants"]["suite"] == "valleys"
    assert main(["check", "--only", "relu-zero-eigenvalues,drift-constants"]) == 2   # two suites: say where each is
    err = capsys.readouterr().err
    assert "relu-zero-eigenvalues is in suite 'relu'" in err and "run one suite at a time" in err
    assert main(["check", "--only", "drift-constantz"]) == 2    # without --suite: every suite's checks are known
    assert "did you mean 'drift-constants'" in capsys.readouterr().err


def test_list_shows_learners_and_noise_models_hyperparameter_defaults(capsys):
    """The keys a config's [learner]/[noise] table takes were only implied (a plugin author guessed them)."""
    import json as _json

    assert main(["list", "--json"]) == 0
    rows = {(r["kind"], r["name"]): r for r in _json.loads(capsys.readouterr().out)}
    assert rows["learners", "rmsprop"]["hyper"] == {"lr": 1e-3, "decay": 0.9, "eps": 1e-8}
    assert rows["noise", "label"]["hyper"] == {"sigma": 0.1} and "hyper" not in rows["losses", "fig5a"]
    assert main(["list", "learners"]) == 0
    assert "(hyper lr = 0.001, decay = 0.9, eps = 1e-08)" in capsys.readouterr().out


def test_list_does_not_repeat_a_suite_the_summary_already_names(capsys, with_plugin):
    """A plugin author who wrote "(suite mine) …" as a check's summary, as `flatland list` shows them, got
    "(suite mine) (suite mine) …"."""
    import flatland

    with_plugin("flatland_checks", "mine-check", lambda: flatland.Check("mine-check", lambda ctx: [], "mine"),
                "(suite mine) my check")
    assert main(["list", "checks"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "mine-check" in x)
    assert line.count("(suite mine)") == 1, line


def test_only_without_suite_runs_the_check_from_its_own_suite(capsys, tmp_path):
    import json as _json

    assert main(["check", "--only", "geometry-known-answers", "--out", str(tmp_path / "o"), "--json"]) == 0
    got = _json.loads(capsys.readouterr().out)
    assert got["suite"] == "geometry" and {r["name"].split("/")[0] for r in got["results"]} == {"known-answers"}


def test_user_check_out_problems_are_one_line_and_a_refused_check_says_why_in_its_folder(capsys, tmp_path):
    (tmp_path / "f").write_text("x")
    argv = ["check", "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update"]
    assert main(argv + ["--out", str(tmp_path / "f")]) == 2           # was an internal error (AttributeError)
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is a file, not a folder" in err, err
    assert main(argv + ["--eta", "2.5", "--out", str(tmp_path / "r")]) == 2
    assert "unstable" in capsys.readouterr().err
    saved = json.loads((tmp_path / "r" / "results.json").read_text())
    assert "unstable" in saved["error"] and (tmp_path / "r" / "table.txt").read_text().startswith("flatland: error")
    # the corrected command may use the same --out: only the error record is replaced (it said "already holds results")
    assert main(argv + ["--eta", "0.05", "--sigma", "0.005", "--steps", "100", "--burn", "100", "--chains", "64",
                        "--out", str(tmp_path / "r")]) in (0, 1)
    redone = json.loads((tmp_path / "r" / "results.json").read_text())
    assert "error" not in redone and "ratio" in json.dumps(redone)



def test_a_user_check_claims_its_folder_before_simulating_and_keeps_why_its_run_failed(capsys, tmp_path, monkeypatch):
    """#17 item 4: the folder was created only at the end (an unusable --out found after the whole simulation)
    and a run that failed kept nothing. Now an unusable --out stops the check before any chain is run, the
    folder holds settings.json before the chains start, and a refusal raised by the run is saved there.
    (The simulation is replaced here; the slow test below lets a real run diverge.)"""
    from flatland import usercheck
    from flatland.errors import UserError

    argv = ["check", "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update"]

    def no_simulation(*args, **kwargs):
        raise AssertionError("the simulation started before --out was checked")
    monkeypatch.setattr(usercheck, "run_batches", no_simulation)
    (tmp_path / "f").write_text("x")
    assert main(argv + ["--out", str(tmp_path / "f" / "sub")]) == 2      # NotADirectoryError: one line, no run
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path / "f") in err, err

    def diverges(*args, **kwargs):
        assert json.loads((tmp_path / "d" / "settings.json").read_text())["mode"] == "user valley"
        raise UserError("the run diverged: 2 of 2 chains became non-finite (first at step 5)")
    monkeypatch.setattr(usercheck, "run_batches", diverges)
    assert main(argv + ["--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "diverged" in err, err
    assert "first at step 5" in json.loads((tmp_path / "d" / "results.json").read_text())["error"]
    assert "first at step 5" in (tmp_path / "d" / "table.txt").read_text()


@pytest.mark.slow  # a real diverging run: ~4 s of compiling and simulating
def test_a_user_check_whose_run_diverges_keeps_where_it_diverged(capsys, tmp_path):
    argv = ["check", "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--sigma", "100", "--eta", "0.9",
            "--chains", "2", "--steps", "5", "--burn", "0", "--out", str(tmp_path / "d")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the run diverged" in err, err
    # ηλ = 1.8 < 2: the update noise's kicks, not GD's instability (the message blamed ηλ alone, also for SED)
    assert "GD alone is stable there" in err, err
    # a loss NaN on part of the space (log of x − 0.97 near x = 1) was blamed on the noise's kicks alone
    assert "or the loss is not finite where they went" in err, err
    saved = json.loads((tmp_path / "d" / "results.json").read_text())
    assert "the run diverged" in saved["error"] and "first at step" in saved["error"]
    assert (tmp_path / "d" / "settings.json").is_file()


def test_a_drift_that_is_zero_by_symmetry_is_judged_as_zero(capsys, tmp_path):
    """Label noise on a circle: the prediction is ~1e-22 (terms that cancel). It went to the ratio branch and
    failed as inconclusive with ratios of 1e5 after all 8 batches."""
    rc, res = run_json(capsys, "--residuals", "x**2 + y**2 - 1", "--at", "x=0.6,y=0.8", "--noise", "label",
                       "--chains", "256", "--steps", "100", "--burn", "100", "--out", str(tmp_path / "r"))
    assert rc == 0 and res["passed"] and res["verdict"].startswith("zero drift predicted"), res["verdict"]


def test_a_zero_drift_that_nothing_could_break_is_not_a_pass(capsys, tmp_path):
    """GD without noise at a point of Γ: every step is exactly 0, so "zero drift predicted, measured 0 ± 0"
    tested nothing. It passed; now it is inconclusive and says why."""
    rc, res = run_json(capsys, "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "none", "--chains", "64",
                       "--steps", "20", "--burn", "10", "--out", str(tmp_path / "r"))
    assert rc == 1 and not res["passed"] and res["verdict"].startswith("inconclusive: no chain moved"), res["verdict"]


def test_a_drift_judged_as_zero_fails_when_the_chains_do_drift(capsys, tmp_path, with_plugin, silent_update_noise):
    """The zero-drift branch's negative case: a noise model that declares C = 0 (so zero drift is predicted)
    while its steps are update noise's (the chains drift, ~100 s.e. from 0) must fail. A mutation making that
    branch always pass survived every test."""
    with_plugin("flatland_noise_models", "update-declared-silent", silent_update_noise, "declares C = 0")
    rc, res = run_json(capsys, "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update-declared-silent",
                       "--sigma", "0.01", "--chains", "1024", "--steps", "200", "--burn", "100",
                       "--out", str(tmp_path / "r"))
    assert rc == 1 and not res["passed"] and res["verdict"] == "zero drift predicted; measured not 0 within 3 s.e."
    # a failed check asks the conformance kit about its components: the false declaration is named
    said = [w for w in res["warnings"] if "conformance kit" in w]
    assert len(said) == 1 and said[0].startswith("the failure may be the noise model's, not the theory's"), said


@pytest.mark.slow  # ~15 s
def test_update_plus_minibatch_drift_is_measured_as_predicted(capsys, tmp_path):
    """Minibatch noise grows off Γ: predicted as update noise alone the ratio was 1.063 ± 0.001 (FAIL). With its
    declared growth it must pass — at the default 4096 chains, where an SVD in the in-loop prediction once
    deadlocked XLA's CPU threads."""
    rc, res = run_json(capsys, "--residuals", "x*y - 1, z", "--kappa", "1", "--at", "x=2,y=0.5,z=0", "--noise",
                       "update+minibatch", "--eta", "0.08", "--sigma", "0.01", "--out", str(tmp_path / "r"))
    assert rc == 0 and res["passed"], res["verdict"]
    assert abs(res["ratio"] - 1) <= 0.02 and 3 * res["ratio_stderr"] <= 0.02


def test_a_check_without_prediction_says_where_its_chains_were(tmp_path, capsys):
    """RMSprop's sign-like steps take every chain from (1, 0) to the origin within the burn-in: its drift was
    reported "at the point" with nothing to say otherwise (an independent audit). Now the chains' start and
    end positions are reported, with a warning when they left the point; a learner that stays gets none."""
    import json

    argv = ["check", "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--eta", "0.05",
            "--chains", "256", "--steps", "200", "--burn", "100", "--json"]
    assert main(argv + ["--learner", "rmsprop", "--sigma", "0.01", "--out", str(tmp_path / "a")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert abs(out["chains_end"]["q50"][0]) < 0.1 and any("chains were not at the point" in w for w in out["warnings"])
    assert main(argv + ["--learner", "momentum", "--sigma", "0.002", "--out", str(tmp_path / "b")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["chains_start"]["q50"][0] == pytest.approx(1.0, abs=0.02)
    assert not any("chains were not at the point" in w for w in out["warnings"])


def test_an_adaptive_plan_halves_in_whole_chunks_down_to_the_short_chunk():
    from flatland.usercheck import MIN_CHUNK, Plan, _shorter

    p = Plan(chains=4096, steps=1000, burn=500, chunk=500, adaptive=True)
    steps = [(p := _shorter(p)) and (p.burn, p.steps, p.chunk) for _ in range(5)]
    assert steps == [(500, 500, 500), (200, 200, 100), (100, 100, 100), (50, 50, MIN_CHUNK), (50, 50, MIN_CHUNK)]
    assert _shorter(Plan(chains=1, steps=100, burn=0, chunk=100, adaptive=True)).burn == 0
    # a length the user gave is kept: --burn alone leaves the batches adaptive but the run unshortened
    from types import SimpleNamespace

    from flatland.usercheck import plan
    pred = SimpleNamespace(eigenvalues=[0.0, 2.0])
    assert plan(pred, 0.05, None, None, None).shorten and not plan(pred, 0.05, None, None, 300).shorten
    assert plan(pred, 0.05, None, None, 300).adaptive


def test_the_burn_in_near_a_degenerate_point_is_capped_by_the_budget_and_says_so():
    """λ_min = 10⁻⁴ at η = 0.05 asked 10τ = 10⁶ steps of burn-in × 4,096 chains: a check still running after 13
    minutes. The burn-in is capped at half the budget per batch; a --burn given is kept."""
    from types import SimpleNamespace

    from flatland.usercheck import DEFAULT_CHAINS, MAX_CHAIN_STEPS, plan

    pred = SimpleNamespace(eigenvalues=[0.0, 1e-4, 4.0])
    p = plan(pred, 0.05, None, None, None)
    assert p.burn * DEFAULT_CHAINS <= MAX_CHAIN_STEPS / 2 and "burn-in capped" in p.note and "1,000,500" in p.note
    assert plan(pred, 0.05, None, None, 10**6).burn == 10**6 and not plan(pred, 0.05, None, None, 10**6).note
    assert not plan(SimpleNamespace(eigenvalues=[0.0, 2.0]), 0.05, None, None, None).note


@pytest.mark.slow  # ~15 s: five short adaptive runs
def test_a_check_whose_chains_wander_is_rerun_shorter_until_it_measures_near_the_point(capsys, tmp_path, monkeypatch):
    """Update noise σ = 0.01 on Fig 5A spreads the chains along Γ so far over the planned 100 + 300 steps
    that the prediction where they were differs by 4.1% from the one at x = 1: the check ended inconclusive
    (README's example). It now halves burn-in and steps, deciding only from where the chains were, after
    the first batch of a plan (it had run every batch of a plan it then dropped)."""
    from flatland.lab import Lab

    batches = []
    measure = Lab.measure

    def counted(self, *args, **kw):
        batches.append((kw["burn"], kw["steps"]))
        return measure(self, *args, **kw)

    monkeypatch.setattr(Lab, "measure", counted)
    rc, out = run_json(capsys, "--loss", "fig5a", "--at", "x=1,y=0", "--noise", "update", "--sigma", "0.01",
                       "--out", str(tmp_path / "o"))
    assert rc == 0 and out["passed"] and out["steps"] < 300 and out["prediction_shift_from_point"] <= 0.02, out
    assert any(w.startswith("the run was shortened to") for w in out["warnings"])
    dropped = [p for p in dict.fromkeys(batches) if p != (out["burn"], out["steps"])]
    assert dropped and all(batches.count(p) == 1 for p in dropped), batches


def test_the_rao_blackwell_drift_of_a_learner_with_state_agrees_with_raw_displacement(capsys, tmp_path):
    """A check without a prediction reports the Rao–Blackwellised drift. Its mean step must use the learner's
    current state: a mutation using the initial state (zero velocity) made momentum's drift 10× too small and
    survived, since nothing compared it with the raw displacement. Both estimate the same mean step; the
    s.d. of their difference is at most the sum of their s.e.s, so 3 × that sum bounds it."""
    rc, res = run_json(capsys, "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--learner", "momentum",
                       "--sigma", "0.01", "--chains", "4096", "--steps", "300", "--burn", "100",
                       "--out", str(tmp_path / "r"))
    assert rc == 0 and res["estimator"] == "rao-blackwell", res
    rb, raw = np.asarray(res["measured"]), np.asarray(res["raw_measured"])
    bound = 3 * (np.asarray(res["stderr"]) + np.asarray(res["raw_stderr"]))
    assert np.all(np.abs(rb - raw) <= bound), (rb, raw, bound)
    assert abs(rb[0]) > 10 * bound[0]        # a drift to compare, not two zeros


def test_given_lengths_are_kept_and_set_values_are_reported(capsys, tmp_path):
    """A review found --burn alone left the plan shortenable (it was halved, then called "rounded up"), and a
    check reporting η = 0.05 while --set learner.lr=0.2 ran."""
    rc, res = run_json(capsys, "--residuals", "x*y-1", "--at", "x=1,y=1", "--noise", "update", "--burn", "300",
                       "--set", "learner.lr=0.2", "--chains", "64", "--steps", "100", "--out", str(tmp_path / "r"))
    assert res["burn"] == 300 and res["eta"] == 0.2 and not any("shortened" in w for w in res["warnings"]), res
    assert main(["theory", "--residuals", "x*y-1", "--at", "x=1,y=1", "--noise", "update",
                 "--set", "noise.sigma=1e300"]) == 2
    assert "at most 1e+100" in capsys.readouterr().err


def test_batches_continue_while_the_part_along_gamma_is_too_imprecise_to_judge(monkeypatch):
    """The adaptive loop stopped on the whole vector's s.e. alone; where the part along Γ is judged too
    (n_curv large), its verdict then ended inconclusive with budget left (a 4-D codim-3 valley: 7 batches,
    3 s.e. = 2.6% along Γ)."""
    from types import SimpleNamespace

    from flatland import usercheck as U

    class FakeLab:
        def measure(self, *args, **kwargs):
            return SimpleNamespace(run=SimpleNamespace(n_diverged=0), no_prediction=None)

    def fake_summary(runs, *args):   # the tangent part's s.e. falls as 1/n with the batches
        return {"ratio": 1.0, "ratio_stderr": 0.001, "across_stderr": 0.001, "tangent_ratio_stderr": 0.02 / len(runs),
                "tangent_across_stderr": 0.0}

    monkeypatch.setattr(U, "summary", fake_summary)
    plan = U.Plan(chains=10, steps=100, burn=100, chunk=100, adaptive=True)
    runs = U.run_batches(FakeLab(), None, None, None, {}, (1.0,), plan, 0, None, None, None, None, 0.02)
    assert len(runs) == 6                                   # 3 × 0.02/n ≤ 0.01 from n = 6


def test_a_prediction_carried_by_a_few_chains_is_said_so():
    """Near ηλ = 2 the finite-η drift diverges, and a chain that went there carries the mean prediction of a
    run (a plugin audit saw −1.58e-5 in one run and −1.69e-5 in another, each with a small s.e.). Chains with
    ordinary spread get no warning; 4 chains of 4,000 at 300× the others do."""
    from flatland.usercheck import few_chains_carry

    rng = np.random.default_rng(0)
    pf = np.array([-1.6e-5, 4.6e-6, -2.4e-5]) * (1 + 0.3 * rng.standard_normal((4000, 1)))
    assert few_chains_carry(pf, 0.02) is None
    pf[:4] *= 300
    said = few_chains_carry(pf, 0.02)
    assert said is not None and "a few chains carry the prediction" in said and "ηλ = 2" in said


def test_a_check_measured_by_raw_displacement_says_why_and_without_a_prediction_neither_passes_nor_fails(
        capsys, tmp_path):
    """Falling back to raw displacement (s.e. ~40x larger) was silent; results.json said passed: false while the
    exit status was 0 (no prediction: nothing was judged)."""
    rc, res = run_json(capsys, "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--learner", "adam",
                       "--eta", "0.001", "--chains", "256", "--steps", "100", "--burn", "100", "--out", str(tmp_path))
    assert rc == 0 and res["passed"] is None and res["estimator"] == "raw displacement", res
    assert json.loads((tmp_path / "results.json").read_text())["results"][0]["passed"] is None
    assert any(w.startswith("the drift is measured by raw displacement") and "declares no step moments" in w
               for w in res["warnings"]), res["warnings"]
