"""Measuring drift near Γ: ensembles of chains on the compiled loop, with estimators in the scan.

``measure_drift(loss, noise, learner, grid, point, ...)`` runs ``chains``
chains for every hyperparameter set in ``grid`` (one ``jit(vmap(vmap(scan)))``
from :mod:`flatland.simulate`; the grid is a vmap axis, so a sweep of η
compiles once). Chains start on Γ at ``point`` with normal coordinates drawn
from the linearised stationary law (``estimators.linear_stationary_cov``), run
``burn`` steps of burn-in, then ``steps`` measured steps in equal chunks.

Inside the scan, per step: the Rao–Blackwellised mean step (and, with an
observable, E[Δc | θ] with its Itô term). Once per block of ``every`` steps,
in its middle (so the samples have the same mean time as the per-step sums;
records at block ends would lag by every/2 steps, which biases a drifting,
spreading ensemble, e.g. by 0.3% for update noise on Fig 5A at every = 50): the theory's prediction at the point of Γ next to the current θ
(``estimators.project_to_manifold``), so the prediction is averaged along the
same trajectories as the measurement. Per chunk: raw displacement.
All are returned as per-chain time averages (:class:`DriftRun`).
"""
from __future__ import annotations

import dataclasses
import threading
import time
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from . import estimators as E
from .errors import UserError
from .simulate import ensemble, make_runner
from .stepping import as_hyper, make_step

_SIMS: dict = {}  # cache_key -> jitted ensemble loop (see measure_drift)
_AUDITS: dict = {}  # cache_key -> jitted step sampler of the moment audit (see _audit)

#: Held while an ensemble's compiled loop executes. Two ensembles executing at
#: once from two threads (``flatland check --jobs 2``) deadlocked in XLA's CPU
#: runtime (both threads waiting, no CPU used) once the loop recorded the
#: projected point's step every 10–20 steps; compiling still overlaps.
_EXECUTING = threading.Lock()

#: PRNG of the chains (a ``jax.random.key`` implementation). threefry2x32 keeps
#: every chain's stream its own under vmap. (XLA's "unsafe_rbg" compiled ~1.5×
#: faster here but ran 15× slower with label noise, whose draw sits inside
#: ``jax.grad``, and under vmap serves all chains from one key: not used.)
PRNG = "threefry2x32"


@dataclasses.dataclass
class DriftRun:
    """Per-chain time averages from one ensemble run, axes (grid, chain, ...).

    ``rb``: Rao–Blackwellised mean step (None if the step's conditional mean is
    unknown); ``raw``: mean displacement per step; ``pred``: time averages of
    each prediction output; ``obs_rb``/``obs_raw``: the same for the
    observable; ``obs_projected``: the Rao–Blackwellised E[Δc(Φ(θ))] of the
    observable at the projected point Φ(θ) (second-order Itô expansion of
    c∘Φ at θ, autodiff through the projection; only with a prediction;
    averaged over the record times, not every step) — the
    quantity the theory's observable rule predicts, without the O(σ) normal
    fluctuations that make ``obs_rb`` of an observable with a normal gradient
    noisy; ``phi_rb``: the same for Φ itself, E[ΔΦ(θ)|θ] per coordinate (the
    projected point's step, whose mean the theory predicts as the drift along Γ
    plus n_curv; free of the normal component of the ambient step, which is a
    large mean-reverting noise); ``raw_phi``: (Φ(end) − Φ(start))/steps, the
    same without Rao–Blackwellisation; ``visited``: where the chains were
    during the measurement, ``{"phi_q05", "phi_q50", "phi_q95"}`` (grid, d):
    quantiles of Φ(θ) over chains and record times; ``track``: time averages of ``track``'s outputs; ``samples``: a
    few chains' recorded θ (grid, chain, record, d);
    ``diverged_at``: first non-finite step per chain (−1 if none).
    """

    rb: Optional[np.ndarray]
    raw: np.ndarray
    pred: dict
    obs_rb: Optional[np.ndarray]
    obs_raw: Optional[np.ndarray]
    track: Optional[dict]
    samples: np.ndarray
    start: np.ndarray
    diverged_at: np.ndarray
    settings: dict
    seconds: float
    compile_seconds: float = 0.0
    obs_projected: Optional[np.ndarray] = None
    phi_rb: Optional[np.ndarray] = None
    raw_phi: Optional[np.ndarray] = None
    visited: Optional[dict] = None
    moments_audit: Optional[str] = None  # where the declared step moments the estimators use are not the steps'

    def grid(self, g: int) -> "DriftRun":
        """The run restricted to grid entry ``g``."""
        pick = lambda x: None if x is None else x[g:g + 1]
        return dataclasses.replace(
            self, rb=pick(self.rb), raw=self.raw[g:g + 1], pred={k: v[g:g + 1] for k, v in self.pred.items()},
            obs_rb=pick(self.obs_rb), obs_raw=pick(self.obs_raw), obs_projected=pick(self.obs_projected),
            phi_rb=pick(self.phi_rb), raw_phi=pick(self.raw_phi),
            visited=None if self.visited is None else {k: v[g:g + 1] for k, v in self.visited.items()},
            samples=self.samples[g:g + 1],
            track=None if self.track is None else {k: v[g:g + 1] for k, v in self.track.items()},
            start=self.start[g:g + 1], diverged_at=self.diverged_at[g:g + 1])

    def predicted_step(self, order: str = "finite_eta") -> np.ndarray:
        """Per-chain predicted mean step of θ, (grid, chain, d): the projected point's drift along Γ
        (``drift_finite_eta`` or ``drift_leading``) plus its normal motion on a curved Γ (n_curv at the
        same order) — what the ambient mean step measures, whole vector."""
        v = self.pred[f"drift_{order}"]
        normal = self.pred.get("drift_normal_leading" if order == "leading" else "drift_normal")
        return v if normal is None else v + normal

    @property
    def n_diverged(self) -> int:
        return int((self.diverged_at >= 0).sum())


def _after(done, x):
    """``x``, available only once ``done`` is computed (an optimization barrier on both).

    XLA's CPU runtime runs independent parts of a program at once, and with jaxlib 0.10.2 a batched LAPACK
    call (eigh, inv, solve under vmap) spreads its batch over XLA's thread pool and waits for it there: as
    many such calls at once as the pool has threads (2 on a 2-core machine) wait for each other forever, at
    0% CPU. The prediction and each Rao–Blackwellised step hold such calls, so they run in turn."""
    return jax.lax.optimization_barrier((done, x))[1]


def _and_observable(on, observable):
    """Φ(θ) and c(Φ(θ)) in one vector, so that Φ is differentiated once for both."""
    return jnp.concatenate([on, jnp.reshape(observable(on), (1,))])


def stack_hyper(learner, noise, grid) -> dict:
    """Stack a list of ``{"learner": {...}, "noise": {...}}`` overrides into leaves with a grid axis."""
    grid = [grid] if isinstance(grid, dict) else list(grid)
    hs = [{"learner": as_hyper(learner.hyper, g.get("learner")), "noise": as_hyper(noise.hyper, g.get("noise"))}
          for g in grid]
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *hs)


def _index(tree, g):
    return jax.tree_util.tree_map(lambda x: x[g], tree)


def local_law(loss, noise, learner, hyper_g, point):
    """(A, C, H) of the linearised step at ``point``: θ' − θ* ≈ A(θ − θ*) + noise of covariance C.

    From the declared conditional moments (``estimators.step_moments``): A = I +
    ∂m/∂θ of the mean step m, C its covariance, both at ``point`` with the
    learner's initial state (gradient descent: A = I − ηH, C = η² Cov(g) + update
    covariance). None where the moments are not declared (chains start on Γ and
    burn-in does the rest).
    """
    p0 = jnp.asarray(point, float)
    moments = E.step_moments(loss, noise, learner, p0)
    if moments is None:
        return None
    h = jax.tree_util.tree_map(jnp.asarray, hyper_g)
    state = learner.init(p0, h["learner"])
    A = np.eye(p0.shape[0]) + np.asarray(jax.jacfwd(lambda p: moments(p, state, h)[0])(p0))
    C = np.asarray(moments(p0, state, h)[1])
    return A, C, np.asarray(_hessian(loss, p0.shape[0])(p0))


_HESSIANS: dict = {}


def _hessian(loss, d):
    key = (id(loss), d)
    if key not in _HESSIANS:
        _HESSIANS[key] = (loss, jax.jit(jax.hessian(loss)))
    return _HESSIANS[key][1]


def stationary_starts(loss, noise, learner, hyper, point, key, chains) -> np.ndarray:
    """(G, chains, d) starts: ``point`` plus N(0, S_g) in the normal directions (S = 0 if unknown)."""
    p0 = np.asarray(point, dtype=float)
    d = p0.shape[0]
    G = jax.tree_util.tree_leaves(hyper)[0].shape[0]
    z = np.random.default_rng(np.asarray(key).ravel().tolist()).standard_normal((G, chains, d))
    out = []
    for g in range(G):
        h = jax.tree_util.tree_map(lambda x: np.asarray(x)[g], hyper)
        law = local_law(loss, noise, learner, h, p0)
        S = np.zeros((d, d)) if law is None else E.linear_stationary_cov(law[0] - np.eye(d), law[1], law[2])
        w, U = np.linalg.eigh(S)
        out.append(p0 + z[g] @ (U * np.sqrt(np.clip(w, 0, None))).T)
    return np.stack(out)


@jax.jit
def _flat_tree(params):
    return jax.vmap(jax.vmap(lambda p: ravel_pytree(p)[0]))(params)


def _flat_batch(params):
    """(G, N, d) flat params: as is for array params, via ravel_pytree for pytrees."""
    if isinstance(params, jax.Array) and params.ndim == 3:
        return params
    return _flat_tree(params)


def measure_drift(loss, noise, learner, grid, point, *, chains: int, steps: int, burn: int, chunk: int = 500,
                  seed: int = 0, predict: Optional[Callable] = None, observable: Optional[Callable] = None,
                  starts: Optional[np.ndarray] = None, every: int = 10, n_show: int = 8,
                  track: Optional[Callable] = None, cache_key=None, prng: str = PRNG,
                  rao_blackwell: bool = True, project: Optional[Callable] = None,
                  observable_at_projection: bool = False) -> DriftRun:
    """Run the ensemble and return per-chain time averages (see module docstring).

    ``predict(theta_flat, hyper) -> dict`` is evaluated every ``every`` steps
    (``hyper`` is one grid entry's ``{"learner", "noise"}``); ``observable`` is
    a JAX function of flat θ; ``track(theta_flat) -> dict`` is time-averaged
    per step (e.g. Fourier moments for a stationary density). ``starts`` (G, chains, d) overrides the initial
    points. ``steps`` and ``burn`` are rounded up to multiples of ``chunk``.
    Burn-in runs the same compiled loop (one compilation per run). With a
    hashable ``cache_key`` naming (loss, noise, learner, predict, observable),
    the jitted loop is reused by later calls with that key, and jit's own cache
    then skips compiling again for equal shapes. ``prng`` names the key
    implementation of the chains (see ``PRNG``); ``rao_blackwell=False`` skips
    the conditional-moment sums (e.g. when only ``track`` is wanted).
    ``project(theta_flat) -> (on, failed)`` maps θ onto Γ before ``predict``
    and flags a projection that did not reach Γ (default:
    ``estimators.projector`` of ``loss``; pass the theory problem's own when the
    simulated loss is not the one the prediction is about). A failed
    projection stops the run with a :class:`~flatland.errors.UserError`.
    ``observable_at_projection`` also estimates the observable's change at
    the projected point (``obs_projected``; needs a prediction and a
    ``project`` with a ``smooth`` variant, as ``estimators.projector`` has).
    """
    t_start = time.perf_counter()
    chunk = int(chunk)
    if chunk % every:
        raise ValueError(f"chunk ({chunk}) must be a multiple of every ({every})")
    n_meas = max(1, -(-int(steps) // chunk))
    n_burn = -(-int(burn) // chunk)
    hyper = stack_hyper(learner, noise, grid)
    G = jax.tree_util.tree_leaves(hyper)[0].shape[0]
    k_init, k_run = jax.random.split(jax.random.PRNGKey(seed))
    k_run = jax.random.key(jax.random.randint(k_run, (), 0, 2**31 - 1), impl=prng)
    if starts is None:
        starts = stationary_starts(loss, noise, learner, hyper, point, k_init, chains)
    starts = np.asarray(starts, float)
    template = loss.init(k_init) if loss.init is not None else jnp.asarray(point, float)
    _, unravel = ravel_pytree(template)
    params = jax.vmap(jax.vmap(unravel))(jnp.asarray(starts))
    state = jax.vmap(lambda p, h: jax.vmap(lambda q: learner.init(q, h["learner"]))(p))(params, hyper)

    step = make_step(loss, noise, learner)
    raw_because = E.missing_moments(loss, noise, learner, template) if rao_blackwell else "not asked for"
    moments = E.step_moments(loss, noise, learner, template) if raw_because is None else None

    if predict is not None and project is None:
        project = E.projector(loss, np.ravel(point), unravel)

    smooth = getattr(project, "smooth", None) if predict is not None else None  # differentiable Φ
    if observable_at_projection and (smooth is None or observable is None or moments is None):
        raise ValueError("observable_at_projection needs an observable, a prediction, the step's moments and a "
                         "project with a .smooth variant (estimators.projector has one)")

    def accumulate(p, s, h):
        out = {}
        flat = ravel_pytree(p)[0]
        if track is not None:
            out["track"] = track(flat)
        if moments is not None:
            m, C = moments(p, s, h)
            out["rb"] = m
            if observable is not None:
                out["obs_rb"] = E.observable_step(observable, m, C, flat)
        return out

    def record(p, s, h):
        flat = ravel_pytree(p)[0]
        out = {"theta": flat}
        if predict is not None:
            on, failed = project(flat)
            out["pred"] = predict(on, h)
            out["off_gamma"] = failed
            out["on"] = on
            if moments is not None and smooth is not None:
                # at record times only: twice differentiating Φ is costly, and the samples are ~independent
                m, C = moments(p, s, h)
                # after the prediction (_after): both hold batched LAPACK calls that must not run at once
                flat_ = _after(out["pred"], flat)
                # the value-only projection is far from quadratic over a step: its step by cubature
                cub = loss.residuals is None
                if observable is not None and observable_at_projection:   # Φ's work shared by both
                    d = flat.shape[0]
                    both = E.observable_step(lambda f: _and_observable(smooth(f), observable), m, C, flat_, cub)
                    out["phi_step"], out["obs_proj"] = both[:d], both[d]
                else:
                    out["phi_step"] = E.observable_step(smooth, m, C, flat_, cub)
        return out

    key_ = None if cache_key is None else (cache_key, chunk, every, n_show)
    sim = _SIMS.get(key_) if key_ is not None else None
    if sim is None:
        sim = ensemble(make_runner(step, chunk, every=every, accumulate=accumulate, record=record,
                                   record_at=every // 2), hyper_axis=0)
        if key_ is not None:
            _SIMS[key_] = sim
    keys = jax.random.split(k_run, (n_burn + n_meas, G, chains))
    t_c = time.perf_counter()
    compiled = sim.lower(keys[0], params, state, hyper, 0).compile()
    compile_seconds = time.perf_counter() - t_c

    with _EXECUTING:  # one ensemble executes at a time; others may compile meanwhile (see _EXECUTING)
        div = np.full((G, chains), -1, dtype=np.int64)
        t = 0
        for i in range(n_burn):  # the same compiled loop; its sums are discarded
            tr = compiled(keys[i], params, state, hyper, t)
            params, state, t = tr.params, tr.state, t + chunk
            div = np.where(div < 0, np.asarray(tr.diverged_at), div)
        flat_of = _flat_batch
        start = np.asarray(flat_of(params))
        audit = None if moments is None else _audit(step, moments, params, state, hyper, start, seed, key_, learner, noise,
                                                    getattr(loss, "variables", None))
        sums, pred_sums, samples, obs_proj, phi_steps, on_pts = None, None, [], [], [], []
        for i in range(n_meas):
            tr = compiled(keys[n_burn + i], params, state, hyper, t)
            params, state, t = tr.params, tr.state, t + chunk
            div = np.where(div < 0, np.asarray(tr.diverged_at), div)
            s = jax.tree_util.tree_map(np.asarray, tr.sums)
            sums = s if sums is None else jax.tree_util.tree_map(np.add, sums, s)
            if predict is not None:
                ps = jax.tree_util.tree_map(lambda x: np.asarray(x).mean(axis=2), tr.records["pred"])
                pred_sums = ps if pred_sums is None else jax.tree_util.tree_map(np.add, pred_sums, ps)
                if "obs_proj" in tr.records:
                    obs_proj.append(np.asarray(tr.records["obs_proj"]))
                if "phi_step" in tr.records:
                    phi_steps.append(np.asarray(tr.records["phi_step"]))
                on_pts.append(np.asarray(tr.records["on"]))
                off = np.asarray(tr.records["off_gamma"])
                if off.any():
                    raise UserError(
                        f"projection onto the zero-loss manifold failed at {int(off.sum())} of {off.size} recorded "
                        f"points near step {t} (the loss stayed above 1e-4 of its value before projecting): the "
                        "chains left the valley near the point, or the manifold is degenerate there — try a smaller "
                        "noise scale or learning rate, or another point")
            samples.append(np.asarray(tr.records["theta"][:, :n_show]))
        end = np.asarray(flat_of(params))
        total = n_meas * chunk
        obs_raw = None
        if observable is not None:
            c = jax.jit(jax.vmap(jax.vmap(observable)))
            obs_raw = (np.asarray(c(jnp.asarray(end))) - np.asarray(c(jnp.asarray(start)))) / total
        raw_phi = None
        if predict is not None:  # the projected points' displacement: what raw displacement says along Γ
            on = jax.jit(jax.vmap(jax.vmap(lambda f: project(f)[0])))
            raw_phi = (np.asarray(on(jnp.asarray(end))) - np.asarray(on(jnp.asarray(start)))) / total
        samples = np.concatenate(samples, axis=2)
        samples = np.concatenate([start[:, :n_show, None], samples], axis=2)
        settings = {"chains": int(chains), "steps": total, "burn": n_burn * chunk, "chunk": chunk, "every": every,
                    "seed": int(seed), "prng": prng, "grid": jax.tree_util.tree_map(lambda x: np.asarray(x).tolist(), hyper),
                    "point": [float(v) for v in np.ravel(point)], "loss": loss.name, "noise": noise.name,
                    "learner": learner.name, "estimator": "rao-blackwell" if moments is not None else "raw",
                    "raw_because": raw_because}
        return DriftRun(
            rb=None if moments is None else sums["rb"] / total,
            raw=(end - start) / total,
            pred={} if pred_sums is None else {k: v / n_meas for k, v in pred_sums.items()},
            obs_rb=sums.get("obs_rb") / total if (sums and "obs_rb" in sums) else None,
            obs_raw=obs_raw, obs_projected=np.concatenate(obs_proj, axis=2).mean(axis=2) if obs_proj else None,
            phi_rb=np.concatenate(phi_steps, axis=2).mean(axis=2) if phi_steps else None, raw_phi=raw_phi,
            visited=_visited(on_pts) if on_pts else None,
            track=None if track is None else jax.tree_util.tree_map(lambda x: x / total, sums["track"]),
            samples=samples, start=start, diverged_at=div, settings=settings,
            seconds=time.perf_counter() - t_start, compile_seconds=compile_seconds, moments_audit=audit,
        )


def _audit(step, moments, params, state, hyper, flat, seed, cache_key, learner, noise, names=None) -> Optional[str]:
    """``moment_audit`` at the first finite chain of each grid entry where the measurement starts: None, or
    the first entry's mismatch with what it means for the estimate. ``flat``: the params flattened, (G, chains, d);
    ``names``: the loss's variables, which label the parameter axes."""
    from . import moment_audit as A

    n = A.draws_for(flat.shape[-1])
    key_ = None if cache_key is None else (cache_key, n)
    sample = _AUDITS.get(key_) if key_ is not None else None
    if sample is None:
        sample = A.make_sampler(step, moments, n)
        if key_ is not None:
            _AUDITS[key_] = sample
    G = jax.tree_util.tree_leaves(hyper)[0].shape[0]
    for g in range(G):
        finite = np.nonzero(np.isfinite(flat[g]).all(axis=1))[0]
        if not finite.size:   # every chain diverged: that is reported as such
            continue
        c = int(finite[0])
        p, s = _index(_index(params, g), c), _index(_index(state, g), c)
        X, m, C = sample(jax.random.fold_in(jax.random.PRNGKey(seed), 1 + g), p, s, _index(hyper, g))
        found = A.compare(X, m, C, float(np.max(np.abs(flat[g, c]))), names)
        if found:
            where = f" (grid entry {g})" if G > 1 else ""
            return (f"the step moments declared by learner {learner.name!r} and noise {noise.name!r} are not those "
                    f"of their steps{where}: {found}; the Rao–Blackwellised estimate follows the declaration, so it "
                    "cannot test the prediction (flatland.testing.check_noise / check_learner say which is wrong)")
    return None


def _visited(on_pts) -> dict:
    """5/50/95% quantiles of the projected points over chains and record times, per grid entry."""
    on = np.concatenate(on_pts, axis=2)  # (G, chains, records, d)
    flat = on.reshape(on.shape[0], -1, on.shape[-1])
    q = np.quantile(flat, [0.05, 0.5, 0.95], axis=1)
    return {"phi_q05": q[0], "phi_q50": q[1], "phi_q95": q[2]}
