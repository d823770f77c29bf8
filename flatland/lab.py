"""The lab bench that checks share: components, theory predictions, measured drift.

``Lab(registry)`` builds components by name (cached), the theory's
:class:`~flatland.theory.Problem` of a loss, and ``measure(...)``: one drift
ensemble (``flatland.drift.measure_drift``) whose in-loop prediction is the
theory's ``compile_prediction`` for the pair's :class:`~flatland.theory.StepLaw`
(``flatland.laws.step_law``: what the learner and the noise model declare).
A pair that declares too little is measured without a prediction, and
``Measured.no_prediction`` says which declaration is missing. Simulators are
cached by (components, law, observable), so checks that share them share one
compilation.
"""
from __future__ import annotations

import dataclasses
import threading
from typing import Callable, Optional

import numpy as np

from .drift import DriftRun, measure_drift
from .laws import step_law


@dataclasses.dataclass
class Measured:
    """A drift run with what the theory said at its start point (per grid entry)."""

    run: DriftRun
    predictions: list  # flatland.theory.Prediction per grid entry (at the start point); [] without a law
    problem: object
    field: Optional[object] = None  # flat θ -> predicted finite-η drift (first grid entry), for figures
    no_prediction: Optional[str] = None  # why there is no prediction (a missing declaration)

    def drift_row(self, name: str, g: int = 0, *, tol: float, raw: bool = False, warnings=(), details=None):
        """The drift verdict of grid entry ``g`` (a :class:`flatland.CheckResult`), the way built-in checks judge:
        the projected point's step (``run.phi_rb``; ``raw=True``: its displacement ``run.raw_phi``) against
        the drift along Γ plus n_curv, whole vector, at the point the run was asked about (``drift_ratio``'s
        ``at_point``). Record often enough (``Lab.measure(..., every=10)``) for a precise ``phi_rb``."""
        from .verdicts import drift_ratio

        r = self.run.grid(g)
        if r.phi_rb is None and not raw:
            raise ValueError("drift_row needs run.phi_rb: a prediction and the step's declared moments "
                             "(or pass raw=True for the projected point's displacement)")
        p = self.predictions[g]
        at_point = np.asarray(p.drift_finite_eta) + (0 if p.drift_normal is None else np.asarray(p.drift_normal))
        return drift_ratio(name, r.raw_phi[0] if raw else r.phi_rb[0], r.predicted_step("finite_eta")[0],
                           r.predicted_step("leading")[0], tol=tol, at_point=at_point,
                           visited=None if r.visited is None else {k: v[0] for k, v in r.visited.items()},
                           estimator="raw displacement of Φ(θ)" if raw else "Rao–Blackwellised step of Φ(θ)",
                           variables=self.problem.variables, warnings=list(self.warnings(g)) + list(warnings),
                           details=details, tangent_basis=p.tangent_basis,
                           moments_audit=None if raw else self.run.moments_audit)

    def warnings(self, g: Optional[int] = None) -> list:
        preds = self.predictions if g is None else [self.predictions[g]]
        out = [w for p in preds for w in p.warnings] + ([self.no_prediction] if self.no_prediction else [])
        if self.run.n_diverged:
            out.append(f"{self.run.n_diverged} of {self.run.diverged_at.size} chains diverged")
        return list(dict.fromkeys(out))


class Lab:
    """Components, problems and cached simulators for drift checks."""

    def __init__(self, registry=None):
        if registry is None:
            from .assembly import assemble

            registry = assemble().registry
        self.registry = registry
        self._cache: dict = {}
        self._locks: dict = {}

    def component(self, kind: str, name: str, **options):
        key = (kind, name, tuple(sorted(options.items())))
        if key not in self._cache:
            self._cache[key] = self.registry.create(kind, name, **options)
        return self._cache[key]

    def problem(self, loss):
        from flatland.theory import Problem

        key = ("problem", loss.name, loss.expr, loss.residual_exprs, loss.kappa)
        if key not in self._cache:
            self._cache[key] = Problem.from_loss(loss)
        return self._cache[key]

    def measure(self, loss, noise, learner, grid, point, *, chains: int, steps: int, burn: int, chunk: int,
                seed: int, problem=None, law=None, theory_hyper: Optional[Callable] = None,
                observable: Optional[str] = None, observable_fn=None, starts=None, every: int = 50,
                key=None, observable_at_projection: bool = False) -> Measured:
        """Run ``measure_drift`` with the theory's finite-η and leading predictions averaged in-loop.

        ``loss``/``noise``/``learner`` are components; ``problem`` defaults to
        the loss's own (give another for a loss without expressions, e.g. the
        noisy-target rows of Fig 5A); ``law`` defaults to the pair's declared
        :class:`~flatland.theory.StepLaw` and ``theory_hyper(h)`` maps one grid
        entry's ``{"learner", "noise"}`` to the law's hyperparameters (default:
        the same). ``observable`` is text in the safe grammar (the theory's
        prediction for it is accumulated too); ``observable_fn`` its JAX
        function; ``observable_at_projection`` also measures its change at the
        projected point (``run.obs_projected``, sampled at the record times,
        every ``every``/2 steps). ``key`` names the components for the simulator cache.
        """
        kw = dict(chains=chains, steps=steps, burn=burn, chunk=chunk, seed=seed, problem=problem, law=law,
                  theory_hyper=theory_hyper, observable=observable, observable_fn=observable_fn, every=every, key=key,
                  observable_at_projection=observable_at_projection)
        if key is not None and starts is None:  # the same measurement asked twice (e.g. by two checks) runs once
            memo = ("measured", key, repr(grid), tuple(point), chains, steps, burn, chunk, seed, id(law),
                    observable, every, observable_at_projection)
            with self._locks.setdefault(memo, threading.Lock()):  # checks may run in threads
                if memo not in self._cache:
                    self._cache[memo] = self._measure(loss, noise, learner, grid, point, starts=None, **kw)
                return self._cache[memo]
        return self._measure(loss, noise, learner, grid, point, starts=starts, **kw)

    def _measure(self, loss, noise, learner, grid, point, *, chains, steps, burn, chunk, seed, problem, law,
                 theory_hyper, observable, observable_fn, starts, every, key, observable_at_projection) -> Measured:
        from flatland.theory import compile_prediction, predict

        problem = problem if problem is not None else self.problem(loss)
        why = None
        if law is None:
            law, why = self.law(noise, learner)
        theory_hyper = theory_hyper or (lambda h: h)
        grid = [grid] if isinstance(grid, dict) else list(grid)
        if observable is not None and observable_fn is None:
            observable_fn = self.observable_fn(problem, observable)
        cache_key = None if key is None else (key, id(law), observable, id(problem), observable_at_projection)
        predicted = field = None
        if law is not None:
            f = compile_prediction(problem, law, observable, at=tuple(point))
            predicted = lambda flat, h: f(flat, theory_hyper(h))  # noqa: E731
        run = measure_drift(loss, noise, learner, grid, point, chains=chains, steps=steps, burn=burn, chunk=chunk,
                            seed=seed, predict=predicted, observable=observable_fn, starts=starts, every=every,
                            cache_key=cache_key, project=self.projector(problem, point),
                            observable_at_projection=observable_at_projection)
        preds = []
        if law is not None:
            hs = [theory_hyper({k: {kk: float(np.asarray(v)[g]) for kk, v in run.settings["grid"][k].items()}
                                for k in ("learner", "noise")}) for g in range(len(grid))]
            preds = [predict(problem, tuple(point), law, hyper=h, observable=observable) for h in hs]
            field = lambda flat, h=hs[0]: f(flat, h)["drift_finite_eta"]  # noqa: E731
        return Measured(run, preds, problem, field, no_prediction=why)

    def law(self, noise, learner):
        """(StepLaw or None, why) of a pair, one object per pair, so compiled predictions and simulators
        keyed by the law are reused (the pair is kept alive with it, so its ids stay unique)."""
        key = ("law", id(noise), id(learner))
        if key not in self._cache:
            self._cache[key] = (noise, learner, *step_law(noise, learner))
        return self._cache[key][2:]

    def theory_loss(self, problem):
        """The problem's own loss as a flatland.Loss of JAX functions (lambdified from its SymPy expressions)."""
        from flatland import Loss
        from flatland.theory import jax_function

        key = ("theory-loss", id(problem))
        if key not in self._cache:
            if problem.has_residuals:
                loss = Loss(name=str(problem.name or "problem"), residuals=jax_function(problem, "residuals"),
                            kappa=float(problem.kappa), variables=problem.variables)
            else:
                loss = Loss(name=str(problem.name or "problem"), value=jax_function(problem, "loss"),
                            variables=problem.variables)
            self._cache[key] = (problem, loss)
        return self._cache[key][1]

    def projector(self, problem, point):
        """θ ↦ (a point of the problem's Γ next to θ, whether that failed), for predictions
        (``estimators.projector`` on the problem's own loss; ``point`` is on Γ)."""
        from .estimators import projector

        return projector(self.theory_loss(problem), point)

    def observable_fn(self, problem, text: str):
        """The observable c(θ) as a JAX function of flat θ (lambdified once from the safe grammar)."""
        from flatland.theory import parse_expr
        from flatland.theory import lambdify_flat

        key = ("observable", id(problem), text)
        if key not in self._cache:
            expr = parse_expr(text, problem.variables)
            self._cache[key] = lambdify_flat(problem.symbols, [expr], (), "jax")
        return self._cache[key]
