"""Online Hebbian learning follows the same rotational diffusion law, and the hebbian suite passes (slow).

The ``hebbian`` suite measures the law under the expected rule; here the PSP network learns online
(``online-samples`` + ``synaptic`` noise), as in Qin et al.'s simulations: λ = (1, 0.5, 0.1, 0.05, 0.02),
k = 2, η = 0.005, σ = 0.03 (per-step s.d. √η σ on W and M), 512 chains × 2·10⁴ steps from the fixed
point. Estimator: :func:`flatland_plugins.hebbian.diffusion.diffusion_estimate` (per-chain MSD slope
over lags 100–800 steps, mean ± s.e. over chains). Measured on this machine: D̂/D = 1.022 ± 0.013
(the excess is O(σ²/λ_k²), ~1% expected at σ/λ₂ = 0.06). The control without synaptic noise
shows that sampling alone hardly rotates the representation at this η (0.0002 of D).
"""
import numpy as np
import pytest

from flatland import assemble
from flatland_plugins.hebbian import diffusion as dif
from flatland_plugins.hebbian.theory import synaptic_constant

pytestmark = pytest.mark.slow

LAM, K, ETA, SIGMA = [1.0, 0.5, 0.1, 0.05, 0.02], 2, 0.005, 0.03


def test_online_learning_diffuses_at_the_predicted_rate():
    reg = assemble().registry
    loss = reg.create("losses", "psp", n=len(LAM), k=K, spectrum=LAM)
    s = np.sqrt(ETA) * SIGMA
    Q = dif.simulate(loss, [(s, s), (0.0, 0.0)], eta=ETA, chains=512, steps=20_000, every=100, seed=7, online=True,
                     registry=reg)
    a = dif.development(Q)
    D = synaptic_constant(LAM, K, s, s)
    noisy, quiet = dif.diffusion_estimate(a[0], 100), dif.diffusion_estimate(a[1], 100)
    ratio, se = noisy["D"] / D, noisy["se"] / D
    assert 3 * se <= 0.05, f"imprecise: s.e. {se:.3f}"
    assert abs(ratio - 1) <= 0.05, f"D̂/D = {ratio:.4f} ± {se:.4f}"
    assert quiet["D"] / D < 0.01, f"sampling alone rotates at {quiet['D'] / D:.4f} of D"


def test_the_hebbian_suite_passes(tmp_path, capsys):
    """`flatland check --suite hebbian` end to end (~2.5 minutes): every row passes and the figures are captioned."""
    import json

    from flatland.cli import main

    assert main(["check", "--suite", "hebbian", "--out", str(tmp_path / "r"), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["passed"] and len(res["results"]) == 12
    captions = (tmp_path / "r" / "figures" / "README.md").read_text()
    for name in ("hebbian-angle-msd", "hebbian-diffusion-measured-vs-predicted", "hebbian-ring-fields"):
        assert f"`{name}.png` — " in captions and "no caption" not in captions.split(name)[1].split("\n")[0]
