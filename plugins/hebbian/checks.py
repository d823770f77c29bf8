"""Checks of suite ``hebbian``: PSP's rotational diffusion law and drifting place fields (Qin et al. 2023).

The study (cached per seed): PSP networks (n = 5 inputs) start at their fixed point and follow the
expected Hebbian/anti-Hebbian rule (``gda``, η = ``ETA``) with ``synaptic`` noise, ``CHAINS``
independent chains per point, ``STEPS`` steps, the rotation recorded every ``EVERY`` steps. The
expected rule isolates the synaptic noise the law is about: online sampling adds its own rotation
at higher order in η (measured in the slow test ``tests/test_hebbian_online.py``). Points:

* σ = 5·10⁻⁴, 5·10⁻³, 5·10⁻² (two decades; per-step s.d. √η σ on W and M) on the spectrum
  λ = (3, 1, 0.3, 0.2, 0.1), k = 2;
* the same spectrum with noise on W only (σ_M = 0): Qin et al.'s D_φ = ησ²/4 Σ_{i≤k} λ_i⁻²;
* the spectrum scaled by 1/3 and by 3 (σ = 5·10⁻³): D ∝ λ⁻²;
* k = 3 on λ = (4, 2, 1, 0.3, 0.1) (three pairs, rotations in SO(3)).

Every D is estimated from the angle MSD as :mod:`.diffusion` says (per-chain slope of the
time-averaged MSD over lags 10–80 steps, with an intercept; mean ± s.e. over chains) and judged by
flatland's verdict rule: |D̂/D − 1| ≤ 5% with 3 s.e. inside the 5%. The scalings are weighted
least-squares slopes of log D̂ (weights 1/(s.e./D̂)²), judged within 5% of 2 and −2.
"""
from __future__ import annotations

import functools
import time

import numpy as np

from flatland import Check, CheckResult, hookimpl, scalar

from . import diffusion as dif
from .theory import diffusion_constant, synaptic_constant

ETA, STEPS, EVERY, CHAINS = 0.1, 2000, 10, 1024
TOL = 0.05
BASE, K = (3.0, 1.0, 0.3, 0.2, 0.1), 2
SIGMAS = (5e-4, 5e-3, 5e-2)
SIGMA0 = 5e-3
SCALES = (1 / 3, 3.0)
K3_SPECTRUM, K3 = (4.0, 2.0, 1.0, 0.3, 0.1), 3


@functools.lru_cache(maxsize=2)
def study(seed: int = 0) -> dict:
    """Per point: spectrum, k, (σ_W, σ_M), predicted D, the estimate, the ensemble MSD curve."""
    from flatland import assemble

    reg = assemble().registry
    s = np.sqrt(ETA)
    runs = [(BASE, K, [(s * x, s * x) for x in SIGMAS] + [(s * SIGMA0, 0.0)], [f"sigma={x:g}" for x in SIGMAS]
             + [f"sigma={SIGMA0:g},W-only"])]
    runs += [(tuple(c * v for v in BASE), K, [(s * SIGMA0, s * SIGMA0)], [f"sigma={SIGMA0:g},spectrum×{c:.3g}"])
             for c in SCALES]
    runs += [(K3_SPECTRUM, K3, [(s * SIGMA0, s * SIGMA0)], [f"sigma={SIGMA0:g},k=3"])]
    points, t0 = {}, time.perf_counter()
    for r, (spectrum, k, grid, names) in enumerate(runs):
        loss = reg.create("losses", "psp", n=len(spectrum), k=k, spectrum=list(spectrum))
        Q = dif.simulate(loss, grid, eta=ETA, chains=CHAINS, steps=STEPS, every=EVERY, seed=seed * 1000 + r,
                         registry=reg)
        a = dif.development(Q)
        for g, name in enumerate(names):
            sw, sm = grid[g]
            est = dif.diffusion_estimate(a[g], EVERY)
            points[name] = {"spectrum": spectrum, "k": k, "sigma_w": sw, "sigma_m": sm,
                            "predicted": synaptic_constant(spectrum, k, sw, sm), **est,
                            "t": (EVERY * np.arange(a.shape[2])).tolist(),
                            "ensemble_msd": np.mean(np.sum(a[g] ** 2, -1), 0).tolist()}
    return {"points": points, "seconds": time.perf_counter() - t0}


def _ratio_row(name, p, statistic):
    ratio, rse = p["D"] / p["predicted"], p["se"] / p["predicted"]
    return scalar(name, statistic, measured=p["D"], stderr=p["se"], predicted=p["predicted"], tol=TOL,
                  tolerance=f"|D̂/D − 1| ≤ {TOL:g} and 3 s.e. ≤ {TOL:g}", error=ratio - 1, error_se=rse,
                  ratio=ratio, ratio_stderr=rse,
                  details={"spectrum": list(p["spectrum"]), "k": p["k"], "sigma_w": p["sigma_w"],
                           "sigma_m": p["sigma_m"], "eta": ETA, "chains": CHAINS, "steps": STEPS,
                           "msd_intercept": p["intercept"]})


def check_diffusion(options):
    res = study(options.seed)
    _figures(options, res)
    return [_ratio_row(f"psp-diffusion/{name}", p,
                       "rotational diffusion constant per step: per-chain slope of the angle MSD over lags "
                       "10–80 steps (with intercept), mean ± s.e. over chains; predicted Σ_{i<j} V_ij")
            for name, p in res["points"].items() if not name.endswith("W-only")]


def check_convention(options):
    """W noise only: Qin et al.'s D_φ = ησ²/4 Σλ⁻² (MSD = D t, no factor 2); the /2 variant is reported."""
    p = study(options.seed)["points"][f"sigma={SIGMA0:g},W-only"]
    lam = np.asarray(p["spectrum"])[: p["k"]]
    qin = ETA * SIGMA0 ** 2 / 4 * float(np.sum(lam ** -2.0))
    row = _ratio_row("psp-diffusion/qin-convention", dict(p, predicted=qin),
                     "noise on W only: D̂ against Qin et al.'s D_φ = ησ²/4 Σ_{i≤k} λ_i⁻² (angle MSD = D_φ t)")
    row.details.update(derived=diffusion_constant(p["spectrum"], p["k"], p["sigma_w"] ** 2, 0.0),
                       half_variant=2 * qin, ratio_to_half_variant=p["D"] / (2 * qin))
    return [row]


def _slope(x, points):
    """Weighted least-squares slope of log D̂ on log x, with its standard error."""
    y = np.log([p["D"] for p in points])
    w = np.array([(p["D"] / p["se"]) ** 2 for p in points])
    X = np.c_[np.ones(len(x)), np.log(x)]
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    beta = cov @ X.T @ (w * y)
    return float(beta[1]), float(np.sqrt(cov[1, 1]))


def check_scaling(options):
    pts = study(options.seed)["points"]
    sig = [pts[f"sigma={x:g}"] for x in SIGMAS]
    by_scale = [pts[f"sigma={SIGMA0:g},spectrum×{SCALES[0]:.3g}"], pts[f"sigma={SIGMA0:g}"],
                pts[f"sigma={SIGMA0:g},spectrum×{SCALES[1]:.3g}"]]
    out = []
    for name, x, points, want, what in (
            ("sigma-squared", SIGMAS, sig, 2.0, "σ (two decades)"),
            ("inverse-lambda-squared", (SCALES[0], 1.0, SCALES[1]), by_scale, -2.0, "the spectrum's overall scale")):
        b, se = _slope(np.asarray(x), points)
        out.append(scalar(f"psp-scaling/{name}", f"log–log slope of D̂ against {what}, weighted least squares",
                          measured=b, stderr=se, predicted=want, tol=TOL * abs(want), error=b - want,
                          tolerance=f"|slope − ({want:g})| ≤ {TOL * abs(want):g} and 3 s.e. inside it",
                          details={"x": list(x), "D": [p["D"] for p in points]}))
    return out


def _figures(options, res):
    out = options.out
    if out is None or not hasattr(out, "figure"):
        return
    pts = res["points"]
    out.figure("hebbian-angle-msd", functools.partial(_draw_msd, pts),
               "PSP: mean-square accumulated rotation angle ‖a(t)‖² over the chains against steps, one colour per "
               "sweep point (log–log); dashed lines: the derived D·t.")
    out.figure("hebbian-diffusion-measured-vs-predicted", functools.partial(_draw_measured, pts),
               "PSP: measured D̂ (± 3 s.e.) against the derived D for every sweep point; black line: equality; "
               f"grey band: the ±{TOL:.0%} tolerance.")


def _draw_msd(pts, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for i, (name, p) in enumerate(pts.items()):
        t, m = np.asarray(p["t"][1:]), np.asarray(p["ensemble_msd"][1:])
        line, = ax.loglog(t, m, lw=1.5, label=name)
        ax.loglog(t, p["predicted"] * t, "--", lw=1, color=line.get_color())
    ax.set_xlabel("steps since the start")
    ax.set_ylabel("mean-square rotation angle ‖a(t)‖² (rad²)")
    ax.set_title(f"PSP angle MSD, {CHAINS} chains per point; dashed: predicted D·t", fontsize=10)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _draw_measured(pts, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.8))
    pred = np.array([p["predicted"] for p in pts.values()])
    meas = np.array([p["D"] for p in pts.values()])
    se = np.array([p["se"] for p in pts.values()])
    ax.errorbar(pred, meas, yerr=3 * se, fmt="o", ms=4, capsize=2, label="measured ± 3 s.e.")
    lo, hi = pred.min() / 2, pred.max() * 2
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8, label="measured = predicted")
    ax.fill_between([lo, hi], [lo * (1 - TOL), hi * (1 - TOL)], [lo * (1 + TOL), hi * (1 + TOL)], color="0.85",
                    label=f"±{TOL:.0%} tolerance")
    for name, p in pts.items():
        ax.annotate(name, (p["predicted"], p["D"]), fontsize=6, xytext=(4, -8), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("predicted D (rad² per step)")
    ax.set_ylabel("measured D̂ (rad² per step)")
    ax.set_title("PSP rotational diffusion across the sweep", fontsize=10)
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# The ring (non-negative similarity matching, :mod:`.ring`): n = 32 inputs with unequal tuning
# (spread 0.5), k = 16 cells, 32 positions, von Mises κ = 16, β = 0. RING_NETWORKS networks (different
# initial W, same inputs) learn their fields by RING_LEARN noiseless steps of the expected rule at
# η = RING_ETA; then RING_CHAINS chains per network drift for RING_STEPS steps under synaptic noise
# σ_W = σ_M = RING_SIGMA per step, and one noiseless continuation per network is the control.
RING = {"n": 32, "k": 16, "positions": 32, "kappa": 16.0, "beta": 0.0, "spread": 0.5}
RING_ETA, RING_LEARN, RING_STEPS, RING_EVERY, RING_SIGMA = 0.05, 4000, 3000, 300, 6e-4
RING_NETWORKS, RING_CHAINS = 4, 8
SIMILARITY_TOL = 0.1


@functools.lru_cache(maxsize=2)
def ring_study(seed: int = 0) -> dict:
    """Responses with noise Y (networks, chains, records, k, P), without noise Yq (networks, records, k, P),
    and the learned starts Y0 (networks, k, P)."""
    import jax
    import jax.numpy as jnp

    from flatland import as_hyper, assemble, ensemble, make_runner, make_step

    reg = assemble().registry
    loss = reg.create("losses", "nsm-ring", seed=seed, **RING)
    noise, learner = reg.create("noise", "synaptic"), reg.create("learners", "gda")
    step = make_step(loss, noise, learner)
    responses = loss.extras["ring"]["responses"]
    N, C = RING_NETWORKS, RING_CHAINS

    def hyper(sigma):
        return {"learner": as_hyper(learner.hyper, {"lr": RING_ETA}),
                "noise": as_hyper(noise.hyper, {"sigma_w": sigma, "sigma_m": sigma})}

    t0 = time.perf_counter()
    keys = jax.random.split(jax.random.key(seed), N)
    start = ensemble(make_runner(step, RING_LEARN))(keys, jax.vmap(loss.init)(keys), jnp.zeros(N), hyper(0.0), 0).params
    drift = ensemble(make_runner(step, RING_STEPS, every=RING_EVERY, record=lambda p, s, h: responses(p)))
    many = jax.tree_util.tree_map(lambda x: jnp.repeat(x, C, axis=0), start)
    noisy = drift(jax.random.split(jax.random.key(seed + 1), N * C), many, jnp.zeros(N * C), hyper(RING_SIGMA), 0)
    quiet = drift(keys, start, jnp.zeros(N), hyper(0.0), 0)
    Y = np.asarray(noisy.records)
    return {"Y": Y.reshape((N, C) + Y.shape[1:]), "Yq": np.asarray(quiet.records),
            "Y0": np.asarray(jax.vmap(responses)(start)), "theta": loss.extras["ring"]["theta"],
            "diverged": int(max(np.max(np.asarray(noisy.diverged_at)), np.max(np.asarray(quiet.diverged_at)))),
            "seconds": time.perf_counter() - t0}


def _ring_measures(res):
    """Per network: |Δcentroid| (networks, chains, records, k) with noise and (networks, records, k) without,
    relative changes of the similarity matrix and of the responses (networks, chains, records), strengths."""
    from .ring import centroids

    c0, strength = (np.asarray(v) for v in centroids(res["Y0"], res["theta"]))
    def moved(Y, c0):
        return np.abs(np.angle(np.exp(1j * (np.asarray(centroids(Y, res["theta"])[0]) - c0))))
    d = moved(res["Y"], c0[:, None, None])
    dq = moved(res["Yq"], c0[:, None])
    S0 = np.einsum("nkp,nkq->npq", res["Y0"], res["Y0"])
    S = np.einsum("ncrkp,ncrkq->ncrpq", res["Y"], res["Y"])
    norm = np.linalg.norm(S0, axis=(-2, -1))[:, None, None]
    sim = np.linalg.norm(S - S0[:, None, None], axis=(-2, -1)) / norm
    dY = np.linalg.norm(res["Y"] - res["Y0"][:, None, None], axis=(-2, -1)) / np.linalg.norm(res["Y0"], axis=(-2, -1))[:, None, None]
    return d, dq, sim, dY, strength


def check_ring(options):
    from scipy.stats import spearmanr

    res = ring_study(options.seed)
    if res["diverged"] >= 0:
        from flatland import failed
        return [failed("ring/centroid-diffusion", "ring drift", f"a chain diverged at step {res['diverged']}")]
    d, dq, sim, dY, strength = _ring_measures(res)
    _ring_figure(options, res)
    N, C = d.shape[:2]
    # centroid displacement at the end: per network, mean over chains and cells minus the noiseless run's
    end = d[:, :, -1].mean(axis=(1, 2)) - dq[:, -1].mean(-1)
    per_chain = d[:, :, -1].mean(-1) - dq[:, None, -1].mean(-1)       # (networks, chains)
    m = float(per_chain.mean())
    se = float(per_chain.std(ddof=1) / np.sqrt(per_chain.size))
    half = d[:, :, d.shape[2] // 2 - 1].mean()
    rows = [CheckResult(
        "ring/centroid-diffusion",
        f"|Δ centroid| (degrees) after {RING_STEPS} steps, mean over cells, noisy minus noiseless continuation, "
        f"mean ± s.e. over {N}×{C} chains", 0.0, float(np.degrees(m)), float(np.degrees(se)),
        "> 3 s.e. (centroids move beyond the noiseless control)", bool(m > 3 * se),
        details={"noiseless_deg": float(np.degrees(dq[:, -1].mean())), "per_network_deg": np.degrees(end).tolist(),
                 "median_deg": float(np.degrees(np.median(d[:, :, -1]))),
                 "share_over_30_deg": float(np.mean(d[:, :, -1] > np.radians(30))),
                 "rms_end_over_rms_half_time": float(np.sqrt((d[:, :, -1] ** 2).mean() / (d[:, :, d.shape[2] // 2 - 1] ** 2).mean())),
                 "mean_half_time_deg": float(np.degrees(half))})]
    s_end = sim[:, :, -1].ravel()
    sm, sse = float(s_end.mean()), float(s_end.std(ddof=1) / np.sqrt(s_end.size))
    y_end = float(dY[:, :, -1].mean())
    rows.append(CheckResult(
        "ring/similarity-stable",
        "‖YᵀY − Y₀ᵀY₀‖_F / ‖Y₀ᵀY₀‖_F at the end (population similarity over positions), mean ± s.e. over chains",
        0.0, sm, sse, f"≤ {SIMILARITY_TOL:g} (+3 s.e.) while the responses themselves change ≥ 3× as much",
        bool(sm + 3 * sse <= SIMILARITY_TOL and y_end >= 3 * sm),
        details={"response_change": y_end, "similarity_change_over_time": sim.mean(axis=(0, 1)).tolist()}))
    # stronger cells drift less: per network, Spearman ρ over its k cells between strength and the median
    # |Δ centroid| over chains and records (robust to the rare hops of a field); Fisher z pooled over networks
    rhos = np.array([spearmanr(strength[i], np.median(d[i], axis=(0, 1))).statistic for i in range(N)])
    k = strength.shape[1]
    z = float(np.mean(np.arctanh(rhos)))
    zse = 1.06 / np.sqrt(N * (k - 3))                                  # Fieller et al. (1957): var z ≈ 1.06/(k − 3)
    lo, hi = float(np.tanh(z - 1.96 * zse)), float(np.tanh(z + 1.96 * zse))
    rows.append(CheckResult(
        "ring/stronger-cells-drift-less",
        f"Spearman ρ between a cell's strength (mean response) and its median |Δ centroid| over chains and time, "
        f"per network of {k} cells, pooled over {N} networks as the mean Fisher z (s.e. 1.06/√(N(k − 3)))",
        -1.0, float(np.tanh(z)), float(zse), "upper end of the 95% CI < 0", bool(hi < 0),
        details={"ci95": [lo, hi], "per_network_rho": rhos.tolist(),
                 "strength_range": [float(strength.min()), float(strength.max())],
                 "seconds": round(res["seconds"], 1)}))
    return rows


def _ring_figure(options, res):
    out = options.out
    if out is not None and hasattr(out, "figure"):
        out.figure("hebbian-ring-fields", functools.partial(_draw_ring, res),
                   "ring: responses of network 0's cells (rows, sorted by their starting centroid) over positions on "
                   "the ring, at the start and three later times of one noisy chain; colour: response y.")


def _draw_ring(res, path):
    import matplotlib.pyplot as plt

    from .ring import centroids

    order = np.argsort(np.asarray(centroids(res["Y0"][0], res["theta"])[0]))
    R = res["Y"].shape[2]
    frames = [("start", res["Y0"][0])] + [(f"step {RING_EVERY * (r + 1)}", res["Y"][0, 0, r])
                                       for r in (R // 3 - 1, 2 * R // 3 - 1, R - 1)]
    fig, axes = plt.subplots(1, len(frames), figsize=(3.0 * len(frames), 3.4), sharey=True)
    vmax = max(float(f.max()) for _, f in frames)
    deg = np.degrees(res["theta"])
    for ax, (title, Y) in zip(axes, frames):
        im = ax.imshow(Y[order], aspect="auto", vmin=0, vmax=vmax, cmap="viridis",
                       extent=[deg[0], deg[-1] + deg[1], len(order) - 0.5, -0.5])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("position on the ring (°)")
        ax.set_xticks([0, 90, 180, 270, 360])
    axes[0].set_ylabel("cell (sorted by its starting centroid)")
    fig.colorbar(im, ax=axes, shrink=0.8, label="response y")
    fig.suptitle(f"Ring place fields under synaptic noise (network 0, chain 0, σ = {RING_SIGMA:g} per step)",
                 fontsize=10)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


CHECKS = {
    "hebbian-psp-diffusion": (check_diffusion, "PSP rotational diffusion constant within 5% over a σ and spectrum sweep"),
    "hebbian-psp-convention": (check_convention, "noise on W only: Qin et al.'s D_φ = ησ²/4 Σλ⁻² (not the /2 variant)"),
    "hebbian-psp-scaling": (check_scaling, "D ∝ σ² and D ∝ λ⁻² as log–log slopes"),
    "hebbian-ring": (check_ring, "ring place fields: centroids diffuse, the similarity matrix stays, stronger cells drift less"),
}


@hookimpl
def flatland_checks(register):
    for name, (fn, summary) in CHECKS.items():
        register(name, functools.partial(Check, name, fn, suite="hebbian"), summary)
