"""`flatland run`: config errors, SIGKILL + --resume bit-for-bit, divergence stop, CSV and figures."""
import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from flatland import checkpoint as ckpt
from flatland.cli import main
from flatland.config import from_dict, load
from flatland.errors import UserError
from flatland import runner

SMALL = """
[task]
name = "corridor"
seed = 1
n_hid = 12
n_shuffles = 2
[learner]
name = "gd"
lr = 0.4
[noise]
name = "gradient"
sigma = 0.03
[run]
steps = {steps}
seeds = 2
seed = 5
log_every = 50
snapshot_every = 250
checkpoint_every = 500
metrics = ["loss_norm", "active_fraction", "active_units", "si", "si_corrected", "place_cells"]
[relu]
hessian = "off"
"""


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_config_errors_are_one_line(tmp_path, capsys):
    bad_key = _write(tmp_path, "a.toml", SMALL.format(steps=1000).replace("seeds = 2", "seedz = 2"))
    assert main(["run", str(bad_key), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "seedz" in err
    for text, word in [(SMALL.format(steps=1000).replace('name = "gd"', 'name = "gdd"'), "gdd"),
                       (SMALL.format(steps=1000).replace("lr = 0.4", "lrr = 0.4"), "lrr"),
                       (SMALL.format(steps=1000).replace("n_hid = 12", "n_hid = -3"), "n_hid"),
                       (SMALL.format(steps=1000).replace("checkpoint_every = 500", "checkpoint_every = 510"),
                        "multiple"),
                       (SMALL.format(steps=0), "steps"),
                       (SMALL.format(steps=1000).replace('hessian = "off"', 'hessian = "of"'), "hessian"),
                       ("[task\nname=", "TOML")]:
        p = _write(tmp_path, "b.toml", text)
        assert main(["run", str(p), "--out", str(tmp_path / "o2")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and word in err, err


def _final_params(out):
    cfg = load(out / "config.toml")
    setup = runner.build(cfg)
    params, state = runner.initial_state(setup)
    trees, meta = ckpt.load(out / "checkpoint.npz", {"params": params, "state": state})
    return trees["params"], meta


@pytest.mark.parametrize("draws, prng", [("exact", "threefry"), ("fast", "philox")])
def test_interrupted_after_checkpoint_resumes_bit_for_bit(tmp_path, draws, prng):
    """Stop 1 chunk after a checkpoint (rows past it are on disk), resume: identical bytes and params."""
    text = SMALL.format(steps=1000).replace("sigma = 0.03\n", f"sigma = 0.03\ndraws = \"{draws}\"\n")
    text = text.replace("seed = 5\n", f"seed = 5\nprng = \"{prng}\"\n")
    assert f'draws = "{draws}"' in text and f'prng = "{prng}"' in text
    cfg_path = _write(tmp_path, "s.toml", text)
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    runner.run(load(cfg_path), ref, progress=False, figures=False)
    assert runner.run(load(cfg_path), cut, progress=False, figures=False, stop_after=3) == {"stopped_at": 750}
    rows_before = (cut / "metrics.csv").read_text().count("\n")
    runner.run(load(cfg_path), cut, resume=True, progress=False, figures=False)
    assert rows_before > 1 + 2 * 500 // 50  # the rows past the step-500 checkpoint were on disk
    assert (cut / "metrics.csv").read_bytes() == (ref / "metrics.csv").read_bytes()
    p_ref, _ = _final_params(ref)
    p_cut, _ = _final_params(cut)
    for k in p_ref:
        assert np.array_equal(p_ref[k], p_cut[k])


def test_steps_not_a_multiple_of_snapshot_every_resume_bit_for_bit(tmp_path):
    """1,130 steps with snapshot_every 250 and log_every 50: the last chunk is 130 steps, its last
    record lands on step 1,130; a run stopped after two chunks and resumed writes the same bytes."""
    cfg_path = _write(tmp_path, "odd.toml", SMALL.format(steps=1130))
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    runner.run(load(cfg_path), ref, progress=False, figures=False)
    assert runner.run(load(cfg_path), cut, progress=False, figures=False, stop_after=2) == {"stopped_at": 500}
    runner.run(load(cfg_path), cut, resume=True, progress=False, figures=False)
    assert (cut / "metrics.csv").read_bytes() == (ref / "metrics.csv").read_bytes()
    m = runner.read_csv(ref / "metrics.csv")
    assert m["step"].tolist()[-2:] == [1130, 1130] and sorted(set(m["step"].tolist()))[-3:] == [1050, 1100, 1130]
    p_ref, m_ref = _final_params(ref)
    p_cut, m_cut = _final_params(cut)
    assert m_ref["step"] == m_cut["step"] == 1130
    for k in p_ref:
        assert np.array_equal(p_ref[k], p_cut[k])
    # the uninterrupted 1,130-step trajectory is the first 1,130 steps of a longer run
    longer = tmp_path / "longer"
    runner.run(load(_write(tmp_path, "long.toml", SMALL.format(steps=1250))), longer, progress=False, figures=False)
    rows = (longer / "metrics.csv").read_text().splitlines()
    ref_rows = (ref / "metrics.csv").read_text().splitlines()
    assert rows[:len(ref_rows) - 2] == ref_rows[:-2]  # identical up to step 1,100 (1,130 is not logged there)


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_for_bit(tmp_path):
    steps = 10_000
    cfg_path = _write(tmp_path, "small.toml", SMALL.format(steps=steps))
    # uninterrupted reference, in this process
    ref = tmp_path / "ref"
    runner.run(load(cfg_path), ref, progress=False, figures=False)
    # the same run in a subprocess, killed with SIGKILL once a mid-run checkpoint exists
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "flatland", "run", str(cfg_path), "--out", str(out), "--quiet", "--no-figures"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        try:
            meta = ckpt.load(out / "checkpoint.npz", {})[1]
        except Exception:
            meta = {"step": 0}
        if meta["step"] >= 1000:
            proc.send_signal(signal.SIGKILL)
            killed_at = meta["step"]
            break
        time.sleep(0.02)
    proc.wait()
    assert killed_at is not None and killed_at < steps, "the run finished (or never started) before it could be killed"
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "summary.json").exists()
    assert main(["run", str(cfg_path), "--out", str(out), "--resume", "--quiet", "--no-figures"]) == 0
    assert (out / "metrics.csv").read_bytes() == (ref / "metrics.csv").read_bytes()
    p_ref, m_ref = _final_params(ref)
    p_res, m_res = _final_params(out)
    assert m_ref["step"] == m_res["step"] == steps
    for k in p_ref:
        assert np.array_equal(p_ref[k], p_res[k])


def test_resume_refuses_other_config_and_existing_run(tmp_path):
    cfg_path = _write(tmp_path, "c.toml", SMALL.format(steps=500))
    out = tmp_path / "r"
    runner.run(load(cfg_path), out, progress=False, figures=False)
    with pytest.raises(UserError, match="already holds a run"):
        runner.run(load(cfg_path), out, progress=False, figures=False)
    other = load(_write(tmp_path, "d.toml", SMALL.format(steps=500).replace("sigma = 0.03", "sigma = 0.05")))
    with pytest.raises(UserError, match=r"different configuration \(noise.sigma 0.03 → 0.05\); only run.steps"):
        runner.run(other, out, resume=True, progress=False, figures=False)
    # --steps may extend a finished run
    d = load(cfg_path).to_dict()
    d["run"]["steps"] = 1000
    s = runner.run(from_dict(d), out, resume=True, progress=False, figures=True)
    assert s["steps_done"] == 1000
    captions = (out / "figures" / "README.md").read_text()
    for f in ("metrics.png", "fig2bc_curves.png", "fig2d_ratemaps.png", "fig2e_correlation.png"):
        assert (out / "figures" / f).stat().st_size > 1000
        assert f"* `{f}` — " in captions
    assert "no caption given" not in captions
    m = runner.read_csv(out / "metrics.csv")
    assert list(m)[:2] == ["step", "seed"] and m["step"].max() == 1000 and m["step"].size == 2 * 1000 // 50
    # the folder's config.toml says what ran (it kept steps = 500: rerun from it, only half the run came back)
    assert load(out / "config.toml").run["steps"] == 1000
    # fewer steps than done: was silently "resumed" with nothing run and summary.json saying 500 steps
    d["run"]["steps"] = 500
    with pytest.raises(UserError, match="is not shortened"):
        runner.run(from_dict(d), out, resume=True, progress=False, figures=False)


def test_divergence_stops_with_step_and_keeps_metrics(tmp_path, capsys):
    """A diverged run keeps the rows logged before the divergence, and only those: the chunk's rows after
    it (NaN, or 0 for counts of a NaN layer) were once appended too, with "0 steps … loss nan" printed as
    the run's final state. At lr 2.5 seed 1 diverges near step 200, after four logs."""
    text = SMALL.format(steps=2000).replace("lr = 0.4", "lr = 2.5")
    cfg_path = _write(tmp_path, "div.toml", text)
    out = tmp_path / "div"
    assert main(["run", str(cfg_path), "--out", str(out), "--quiet", "--no-figures"]) == 1
    cap = capsys.readouterr()
    assert cap.err.count("\n") == 1 and "diverged" in cap.err and "at step" in cap.err
    import json
    s = json.loads((out / "summary.json").read_text())
    d = s["diverged"]["step"]
    assert d >= 50 and s["steps_done"] < 2000
    m = runner.read_csv(out / "metrics.csv")
    assert m["step"].size > 0 and m["step"].max() <= d
    assert not np.isnan(m["loss_norm"]).any()    # inf can be measured: the loss overflows a step before the params
    assert f"stopped at step {d:,} of 2,000" in cap.out
    assert f"last logged before it (seed mean, step {m['step'].max():,})" in cap.out and "nan" not in cap.out
    assert s["final_step"] == m["step"].max()


def test_a_run_diverged_before_its_first_log_writes_no_rows_and_says_so(tmp_path, capsys):
    text = SMALL.format(steps=500).replace("lr = 0.4", "lr = 60.0").replace('"place_cells"]', '"place_cells", "responses"]')
    out = tmp_path / "div"
    assert main(["run", str(_write(tmp_path, "div.toml", text)), "--out", str(out), "--quiet", "--no-figures"]) == 1
    assert "nothing was logged before it (the first log is at step 50)" in capsys.readouterr().out
    assert runner.read_csv(out / "metrics.csv")["step"].size == 0
    assert not list(out.glob("records/step_*.npz"))
    # a recording of it names the divergence; it once asked to log the responses it had asked for
    assert main(["record", str(out), "--out", str(tmp_path / "r.npz")]) == 2
    err = capsys.readouterr().err
    assert "diverged at step" in err and "before logging them" in err and "[run] metrics" not in err, err


def test_a_run_diverged_at_once_still_draws_its_figures(tmp_path):
    """Every logged loss NaN (divergence within the first log interval) once made the log-scaled loss
    panel raise after summary.json was written: `flatland run` ended in a traceback and a sweep left an
    error.txt beside the diverged run's summary."""
    import json
    text = SMALL.format(steps=500).replace("lr = 0.4", "lr = 1e6")
    out = tmp_path / "div"
    s = runner.run(load(_write(tmp_path, "div.toml", text)), out, progress=False, figures=True)
    assert s["diverged"]["step"] < 50 and not s.get("notes")   # nothing logged: nothing to draw, and no failure
    assert json.loads((out / "summary.json").read_text())["diverged"] == s["diverged"]
    # logged rows up to the divergence, the last loss overflowed to inf: the loss panel draws what is finite
    text = SMALL.format(steps=500).replace("lr = 0.4", "lr = 2.5")
    out = tmp_path / "div2"
    s = runner.run(load(_write(tmp_path, "div2.toml", text)), out, progress=False, figures=True)
    assert s["diverged"]["step"] >= 50 and not [n for n in s.get("notes", []) if n.startswith("figures of")]
    assert (out / "figures" / "fig2bc_curves.png").stat().st_size > 1000
    assert json.loads((out / "summary.json").read_text())["diverged"] == s["diverged"]


def test_a_figure_that_cannot_be_drawn_is_a_note_not_a_failed_run(tmp_path, monkeypatch):
    import json

    from flatland_plugins.relu.extension import ReluRun

    from flatland.check_figures import _plt

    plt = _plt()

    def boom(self, ctx, out):
        plt.figure()                                    # a figure made before the failure is closed again
        raise ValueError("no axis for this\nsecond line")

    monkeypatch.setattr(ReluRun, "figures", boom)
    out = tmp_path / "r"
    before = set(plt.get_fignums())
    s = runner.run(load(_write(tmp_path, "c.toml", SMALL.format(steps=100))), out, progress=False, figures=True)
    note = "figures of relu not drawn: ValueError: no axis for this"
    assert note in s["notes"] and note in json.loads((out / "summary.json").read_text())["notes"]
    assert (out / "figures" / "metrics.png").exists() and s["steps_done"] == 100
    assert set(plt.get_fignums()) <= before


@pytest.mark.slow  # two full ensembles compared to round-off: CI's second stage runs it
def test_ensemble_loop_and_vmap_agree(tmp_path):
    """Seeds run one after another (default) or vmapped: same trajectories to round-off."""
    text = SMALL.format(steps=500)
    out = {}
    for mode in ("loop", "vmap"):
        cfg = load(_write(tmp_path, f"{mode}.toml", text.replace('[relu]', f'ensemble = "{mode}"\n[relu]')))
        setup = runner.build(cfg)
        params, state = runner.initial_state(setup)
        tr = setup.chunk(runner.chunk_keys(setup, 0), params, state, jnp.asarray(0, jnp.int64))
        out[mode] = (np.asarray(tr.params["W"]), np.asarray(tr.records["loss_norm"]))
    assert out["loop"][0].shape == out["vmap"][0].shape == (2, 12, 18)
    np.testing.assert_allclose(out["loop"][0], out["vmap"][0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out["loop"][1], out["vmap"][1], rtol=1e-9)
    assert not np.allclose(out["loop"][0][0], out["loop"][0][1])  # the two seeds differ
    bad = _write(tmp_path, "bad.toml", text.replace('[relu]', 'ensemble = "pmap"\n[relu]'))
    with pytest.raises(UserError, match="ensemble must be one of auto, loop, vmap"):
        load(bad)


def test_ensemble_auto_loops_on_a_cpu_and_vmaps_on_an_accelerator(monkeypatch):
    """The default: seeds one after another on a CPU; vmapped where JAX computes on a GPU (8x faster at 16 seeds)."""
    from flatland import run_build
    from flatland.config import RUN_DEFAULTS

    assert RUN_DEFAULTS["ensemble"] == "auto"
    assert run_build.ensemble_mode("vmap") == "vmap" and run_build.ensemble_mode("loop") == "loop"
    monkeypatch.setattr(run_build.jax, "default_backend", lambda: "cpu")
    assert run_build.ensemble_mode("auto") == "loop"
    monkeypatch.setattr(run_build.jax, "default_backend", lambda: "gpu")
    assert run_build.ensemble_mode("auto") == "vmap"


def test_a_run_stopped_before_its_first_checkpoint_starts_again_with_resume(tmp_path):
    """Stopped while its step-0 snapshot was being made, a run left config.toml and CSV headers but no checkpoint:
    --resume said "no checkpoint" and a fresh run "not an empty folder", so the folder had to be deleted by hand."""
    cfg = load(_write(tmp_path, "c.toml", SMALL.format(steps=500)))
    ref = tmp_path / "ref"
    runner.run(cfg, ref, progress=False, figures=False)
    out = tmp_path / "r"
    out.mkdir()
    (out / "config.toml").write_text((ref / "config.toml").read_text())
    (out / "metrics.csv").write_text((ref / "metrics.csv").read_text().splitlines()[0] + "\n")
    with pytest.raises(UserError, match="starts again with --resume"):
        runner.run(cfg, out, progress=False, figures=False)
    runner.run(cfg, out, resume=True, progress=False, figures=False)
    assert (out / "metrics.csv").read_text() == (ref / "metrics.csv").read_text()
    other = tmp_path / "o"     # another config's folder without a checkpoint is not taken over
    other.mkdir()
    (other / "config.toml").write_text((ref / "config.toml").read_text().replace("0.03", "0.05"))
    with pytest.raises(UserError, match="no checkpoint"):
        runner.run(cfg, other, resume=True, progress=False, figures=False)


def test_a_run_begun_with_the_old_default_ensemble_loop_resumes_under_auto_on_a_cpu(tmp_path, monkeypatch):
    """[run] ensemble's default became "auto" (loop on a CPU): a folder whose config.toml says "loop" must resume.
    (On a GPU "auto" means vmap, a different configuration: the test pins the CPU's answer, so it holds there too.)"""
    from flatland import run_build

    monkeypatch.setattr(run_build.jax, "default_backend", lambda: "cpu")
    text = SMALL.format(steps=1000)
    old = load(_write(tmp_path, "old.toml", text.replace("[relu]", 'ensemble = "loop"\n[relu]')))
    assert runner.run(old, tmp_path / "r", progress=False, figures=False, stop_after=2) == {"stopped_at": 500}
    new = load(_write(tmp_path, "new.toml", text))
    assert new.run["ensemble"] == "auto"
    assert runner.run(new, tmp_path / "r", resume=True, progress=False, figures=False)["steps_done"] == 1000
    # the folder's config.toml keeps what ran ("loop", which "auto" means here), with the new steps
    kept = load(tmp_path / "r" / "config.toml")
    assert kept.run["ensemble"] == "loop" and kept.run["steps"] == 1000


def test_a_damaged_folder_is_refused_in_one_line_on_resume(tmp_path):
    """A truncated checkpoint.npz (BadZipFile), and a metrics.csv shorter than the checkpoint recorded (resuming
    padded it with zero bytes and crashed only at the end), were internal errors."""
    cfg = load(_write(tmp_path, "c.toml", SMALL.format(steps=1000)))
    longer = dataclasses.replace(cfg, run={**cfg.run, "steps": 1500})
    out = tmp_path / "r"
    runner.run(cfg, out, progress=False, figures=False)
    metrics = (out / "metrics.csv").read_bytes()
    (out / "metrics.csv").write_bytes(metrics[: len(metrics) // 2])
    with pytest.raises(UserError, match="metrics.csv is shorter .* than when the checkpoint was written"):
        runner.run(longer, out, resume=True, progress=False, figures=False)
    (out / "metrics.csv").write_bytes(metrics)
    ck = (out / "checkpoint.npz").read_bytes()
    (out / "checkpoint.npz").write_bytes(ck[: len(ck) // 2])
    with pytest.raises(UserError, match="checkpoint.npz cannot be read .*BadZipFile"):
        runner.run(longer, out, resume=True, progress=False, figures=False)


def test_resume_of_a_folder_whose_checkpoint_was_removed_says_so(tmp_path):
    """It said "exists and is not an empty folder … starts again with --resume" to a command given --resume."""
    cfg = load(_write(tmp_path, "c.toml", SMALL.format(steps=500)))
    out = tmp_path / "r"
    runner.run(cfg, out, progress=False, figures=False)
    (out / "checkpoint.npz").unlink()
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(UserError, match="--resume: .* has no checkpoint.npz but holds more than a run stopped"):
        runner.run(cfg, out, resume=True, progress=False, figures=False)
    # and nothing was deleted (its metrics, snapshots and records were, as "a stopped start's files")
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_a_resume_under_other_versions_keeps_the_earlier_record_and_says_so(tmp_path, monkeypatch):
    """versions.json was rewritten on --resume: a run begun under one jax or XLA_FLAGS and continued under another
    recorded only the second, and nothing said its round-off had changed. The earlier record is kept and the
    summary notes the difference; a resume under the same versions adds nothing."""
    import json

    cfg = load(_write(tmp_path, "c.toml", SMALL.format(steps=1000)))
    out = tmp_path / "r"
    assert runner.run(cfg, out, progress=False, figures=False, stop_after=2) == {"stopped_at": 500}
    first = json.loads((out / "versions.json").read_text())
    monkeypatch.setenv("XLA_FLAGS", first["xla_flags"] + " --xla_cpu_some_other_option=1")
    summary = runner.run(cfg, out, resume=True, progress=False, figures=False)
    record = json.loads((out / "versions.json").read_text())
    assert record["earlier"] == first and record["xla_flags"].endswith("--xla_cpu_some_other_option=1")
    assert any(n.startswith("resumed at step 500 under other versions than before (xla_flags: ") for n in summary["notes"])
    again = SMALL.format(steps=1500)                 # the same versions again: the earlier record stays, no note
    summary = runner.run(load(_write(tmp_path, "d.toml", again)), out, resume=True, progress=False, figures=False)
    assert json.loads((out / "versions.json").read_text())["earlier"] == first
    assert not any("other versions" in n for n in summary.get("notes", []))
