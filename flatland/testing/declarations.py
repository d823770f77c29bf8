"""Conformance of what a component declares: covariances and step moments must be true.

A noise model's ``grad_cov``/``param_cov`` and a learner's ``StepMoments`` feed
the Rao–Blackwellised estimator, and ``covariance(ctx)``/``LearnerTheory`` feed
the theory, so a wrong declaration gives a wrong prediction with a small error
bar. These checks compare declarations with the component's own behaviour on
the smoke problem:

* declared covariances are (d, d), finite, symmetric and positive semi-definite;
* ``covariance(ctx)`` gives the same matrix for SymPy, NumPy and JAX contexts, and,
  at a point of Γ of the smoke problem, equals η²·grad_cov + param_cov (what one
  gradient step of size η really does there); a declared ``gradient_covariance(ctx, Hδ)``
  equals the part of that covariance quadratic in a normal displacement δ; a declared
  ``upstream_gain`` is what the model does to noise put into the rows before it;
* ``grad_cov``/``param_cov`` equal the sample covariance of the oracle's gradient
  and of the update noise over ``DRAWS`` keys (every entry within 5 standard
  errors, the s.e. estimated from the draws themselves; mean within 5 s.e.);
* a learner with ``gradient_gain`` moves affinely in the gradient with that gain, and
  its ``own_cov`` matches its steps; ``own`` moments match the displacements θ' − θ of its
  steps (mean and covariance); a learner with a theory that declares no noise of its own
  takes the same step for every key — at the default hyperparameters and at a second
  set where zero defaults become 0.01 (a zero default would hide a wrong formula);
* a ``LearnerTheory`` has a finite positive effective step, and its declared potential U is
  what its mean step (the step itself, or ``mean_step`` with own noise) descends besides L:
  at a point of Γ (∇L = 0) it moves the params by −gain·∇U (0 when it declares no U).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..contracts import Learner, Loss, NoiseModel, Oracle
from ..stepping import as_hyper, make_oracle

DRAWS = 4000
Z = 5.0
MAX_DIM = 64  # declared d × d covariances are checked on problems up to this size (a network's are not)


def _hyper(component, params):
    dtype = jnp.result_type(jax.tree_util.tree_leaves(params)[0])
    return as_hyper(component.hyper, dtype=dtype)


def _psd(name, C, d):
    C = np.asarray(C, float)
    assert C.shape == (d, d), f"{name}: shape {C.shape}, expected {(d, d)}"
    assert np.all(np.isfinite(C)), f"{name}: non-finite entries"
    assert np.allclose(C, C.T, rtol=1e-10, atol=1e-14 * max(1.0, np.abs(C).max())), f"{name}: not symmetric"
    w = np.linalg.eigvalsh(0.5 * (C + C.T))
    assert w.min() >= -1e-9 * max(abs(w).max(), 1e-300), f"{name}: not positive semi-definite (eigenvalue {w.min():.3g})"


def _matches_samples(name, samples, mean, cov):
    """Sample mean and covariance of ``samples`` (n, d) equal the declared ones within Z s.e. per entry."""
    x = np.asarray(samples, float)
    n = x.shape[0]
    m = x.mean(0)
    m_se = x.std(0, ddof=1) / np.sqrt(n)
    bad = np.abs(m - mean) > Z * m_se + 1e-12 * (1 + np.abs(mean))
    assert not bad.any(), f"{name}: sample mean {m[bad]} differs from the declared {np.asarray(mean)[bad]}"
    dx = x - m
    prods = dx[:, :, None] * dx[:, None, :]
    c = prods.mean(0) * n / (n - 1)
    c_se = prods.std(0, ddof=1) / np.sqrt(n)
    scale = max(np.abs(cov).max(), np.abs(c).max(), np.abs(x).max() ** 2, 1e-300)  # round-off floor
    bad = np.abs(c - cov) > Z * c_se + 1e-9 * scale
    assert not bad.any(), (f"{name}: sample covariance differs from the declared one "
                           f"(largest gap {np.abs(c - cov).max():.3g}, declared scale {np.abs(cov).max():.3g})")


def check_noise_declarations(noise: NoiseModel, loss: Loss) -> None:
    """grad_cov/param_cov against samples, and the theory covariance's shape and sign, on ``loss``."""
    params = loss.initial_params(jax.random.PRNGKey(0))
    flat, unravel = ravel_pytree(params)
    d = flat.shape[0]
    if d > MAX_DIM:
        return
    hyper = _hyper(noise, params)
    keys = jax.random.split(jax.random.PRNGKey(11), DRAWS)
    gcov = noise.grad_cov(loss, params, hyper)
    if gcov is not None:
        _psd(f"noise {noise.name}: grad_cov", gcov, d)
        oracle = make_oracle(loss, noise, hyper)
        g = jax.jit(jax.vmap(lambda k: ravel_pytree(oracle.grad(k, params))[0]))(keys)
        exact = ravel_pytree(jax.grad(loss)(params))[0]
        _matches_samples(f"noise {noise.name}: oracle gradient vs grad_cov (mean must be ∇L)", g, exact, gcov)
    pcov = noise.param_cov(params, hyper)
    if pcov is not None:
        _psd(f"noise {noise.name}: param_cov", pcov, d)
        moved = jax.jit(jax.vmap(lambda k: ravel_pytree(noise.perturb_params(k, params, hyper))[0]))(keys)
        _matches_samples(f"noise {noise.name}: update noise vs param_cov", moved, flat, pcov)
    if noise.overrides("covariance") and loss.residuals is not None:
        C = _covariance_everywhere(noise, loss, params, {k: float(v) for k, v in hyper.items()})
        if C is not None:
            _psd(f"noise {noise.name}: covariance(ctx)", C, d)


def _contexts(loss, params, hyper, eta=0.05):
    """The covariance context at ``params`` in the three backends (SymPy entries are the same numbers)."""
    import sympy as sp

    from flatland.theory import CovarianceContext

    flat, unravel = ravel_pytree(params)
    jax_ctx = _jax_context(loss, unravel, flat, {k: jnp.asarray(v) for k, v in hyper.items()}, eta)
    J, H, dH = (np.asarray(a) for a in (jax_ctx.J, jax_ctx.H, jax_ctx.dH))
    d = flat.shape[0]
    theta = np.asarray(flat)
    out = {"numpy": CovarianceContext(H=H, eye=np.eye(d), eta=eta, kappa=loss.kappa, hyper=hyper, J=J,
                                      theta=theta, dH=dH, backend="numpy"),
           "jax": jax_ctx,
           "sympy": CovarianceContext(H=sp.Matrix(H.tolist()), eye=sp.eye(d), eta=sp.Float(eta),
                                      kappa=sp.Float(loss.kappa), hyper={k: sp.Float(v) for k, v in hyper.items()},
                                      J=sp.Matrix(J.tolist()), theta=sp.Matrix(theta.tolist()),
                                      dH=[sp.Matrix(M.tolist()) for M in dH], backend="sympy")}
    return out


def _covariance_everywhere(noise, loss, params, hyper):
    """covariance(ctx) in NumPy, compared with JAX and SymPy; returns the NumPy matrix (or None)."""
    ctxs = _contexts(loss, params, hyper)
    C = noise.covariance(ctxs["numpy"])
    if C is None:
        return None
    C = np.asarray(C, float)
    scale = max(np.abs(C).max(), 1e-300)
    for backend in ("jax", "jit", "sympy"):
        other = (_traced(f"noise {noise.name}", noise.covariance, loss, params, hyper) if backend == "jit"
                 else noise.covariance(ctxs[backend]))
        other = np.array(other.tolist() if backend == "sympy" else other, dtype=float)
        assert other.shape == C.shape and np.allclose(other, C, rtol=1e-9, atol=1e-12 * scale), (
            f"noise {noise.name}: covariance(ctx) differs between the numpy and {backend} backends "
            f"(largest gap {np.abs(other - C).max() if other.shape == C.shape else other.shape}): write it "
            "with the context's helpers (ctx.outer, ctx.diag, ctx.trace), not with v @ v.T on vectors")
    return C


def _traced(who, covariance, loss, params, hyper, eta=0.05):
    """covariance(ctx) with the JAX context built inside ``jax.jit``, as `flatland check` evaluates it in its
    compiled loop: numpy or float() on the context's arrays fails there though it works on concrete ones."""
    flat, unravel = ravel_pytree(params)
    h = {k: jnp.asarray(v) for k, v in hyper.items()}
    try:
        return jax.jit(lambda f, hh: jnp.asarray(covariance(_jax_context(loss, unravel, f, hh, eta))))(flat, h)
    except (jax.errors.JAXTypeError, TypeError) as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise AssertionError(f"{who}: covariance(ctx) cannot be traced by JAX ({type(exc).__name__}: {first}); "
                             "flatland check evaluates it inside compiled code — use the context's arrays and "
                             "helpers (ctx.theta, ctx.outer, ctx.trace, …), not numpy or float()") from None


def check_covariance_consistency(noise: NoiseModel, loss: Loss, params, eta: float = 0.05) -> None:
    """At a point of Γ: the theory's C(θ) equals what one gradient step of size η does, η²·grad_cov + param_cov."""
    if not noise.overrides("covariance"):
        return
    hyper = _hyper(noise, params)
    gcov, pcov = noise.grad_cov(loss, params, hyper), noise.param_cov(params, hyper)
    if gcov is None or pcov is None:
        return
    C = noise.covariance(_contexts(loss, params, {k: float(v) for k, v in hyper.items()}, eta)["numpy"])
    if C is None:
        return
    want = eta**2 * np.asarray(gcov) + np.asarray(pcov)
    C = np.asarray(C, float)
    scale = max(np.abs(want).max(), np.abs(C).max(), 1e-300)
    assert np.allclose(C, want, rtol=1e-8, atol=1e-12 * scale), (
        f"noise {noise.name}: on Γ, covariance(ctx) = {C.tolist()} but one step of size η = {eta} has covariance "
        f"η²·grad_cov + param_cov = {want.tolist()}")
    if noise.overrides("gradient_covariance"):
        _check_growth(noise, loss, params, hyper, eta)


class _NoisyRows(NoiseModel):
    """The kit's reference upstream noise: N(0, σ²) added to every residual row, independently (label-like)."""

    name, hyper, needs_residuals = "kit-rows", {"sigma": 0.1}, True

    def transform(self, loss, key, hyper):
        import dataclasses

        def residuals(p):
            r = loss.residuals(p)
            return r - hyper["sigma"] * jax.random.normal(key, jnp.shape(r), jnp.result_type(r))

        return dataclasses.replace(loss, residuals=residuals, value=None)


def check_upstream_gain(noise: NoiseModel, loss: Loss, params, eta: float = 0.05) -> None:
    """A declared ``upstream_gain``: noise put into the rows before this model (i.i.d. per row, variance σ²)
    reaches the gradient with covariance gain·4κ²σ²JᵀJ, on top of the model's own ``grad_cov`` — checked
    against the gradients of the composition [reference row noise, this model] at a point of Γ."""
    from ..composition import compose_noise

    if not noise.overrides("upstream_gain") or loss.residuals is None or noise.name == _NoisyRows.name:
        return
    hyper = _hyper(noise, params)
    own = noise.grad_cov(loss, params, hyper)
    ctx = _contexts(loss, params, {k: float(v) for k, v in hyper.items()}, eta)["numpy"]
    gain = noise.upstream_gain(ctx)
    if own is None or gain is None:
        return
    rows = _NoisyRows()
    sigma = rows.hyper["sigma"]
    both = compose_noise([rows, noise])
    h = {f"{rows.name}.sigma": jnp.asarray(sigma)} | {f"{noise.name}.{k}": v for k, v in hyper.items()}
    oracle = make_oracle(loss, both, h)
    # 10 × DRAWS: each entry's s.e. ≈ 0.7%, so Z = 5 s.e. resolves a gain off by 4% (1 vs 1 + 1/8 is 12.5%)
    keys = jax.random.split(jax.random.PRNGKey(13), 10 * DRAWS)
    g = jax.jit(jax.vmap(lambda k: ravel_pytree(oracle.grad(k, params))[0]))(keys)
    J = np.asarray(ctx.J)
    want = float(gain) * 4 * loss.kappa**2 * sigma**2 * J.T @ J + np.asarray(own)
    _matches_samples(f"noise {noise.name}: upstream_gain {float(gain):g} (gradients after noisy rows)", g,
                     np.asarray(ravel_pytree(jax.grad(loss)(params))[0]), want)


def _check_growth(noise, loss, params, hyper, eta):
    """gradient_covariance(ctx, Hδ) is the part of one step's covariance quadratic in a normal displacement δ:
    [Cov(θ+δ) + Cov(θ−δ)]/2 − Cov(θ), Cov = η²·grad_cov + param_cov, along each normal direction.
    The symmetric difference leaves the quartic part, O(|δ|²) relative: |δ| = 1e-4 of the point's scale
    puts it near 1e-8, far inside the tolerances (1e-3 relative, 1e-5 of the largest entry)."""
    from flatland.theory import rank_and_basis

    flat, unravel = ravel_pytree(params)
    ctx = _contexts(loss, params, {k: float(v) for k, v in hyper.items()}, eta)["numpy"]
    m, _, U_n, _ = rank_and_basis(ctx.H)

    def cov(f):
        p = unravel(jnp.asarray(f))
        return eta**2 * np.asarray(noise.grad_cov(loss, p, hyper)) + np.asarray(noise.param_cov(p, hyper))

    eps = 1e-4 * (1.0 + float(np.max(np.abs(flat))))
    for a in range(m):
        delta = eps * U_n[:, a]
        quadratic = (cov(flat + delta) + cov(flat - delta)) / 2 - cov(flat)
        K = np.asarray(noise.gradient_covariance(ctx, np.asarray(ctx.H) @ delta), float)
        scale = max(np.abs(quadratic).max(), np.abs(K).max(), 1e-300)
        assert np.allclose(K, quadratic, rtol=1e-3, atol=1e-5 * scale), (
            f"noise {noise.name}: gradient_covariance(ctx, Hδ) = {K.tolist()} but one step's covariance grows by "
            f"{quadratic.tolist()} at a normal displacement δ = {delta.tolist()} (its part quadratic in δ)")


def check_learner_declarations(learner: Learner, loss: Loss) -> None:
    """StepMoments.gradient_gain is the step's true gain; LearnerTheory's step is finite and positive."""
    params = loss.initial_params(jax.random.PRNGKey(0))
    flat, unravel = ravel_pytree(params)
    hyper = _hyper(learner, params)
    if learner.theory is not None:
        lr = np.asarray(learner.theory.lr(hyper))
        assert lr.shape == () and lr.dtype.kind in "fiu", (
            f"learner {learner.name}: LearnerTheory.lr gives {lr.tolist()!r} (shape {lr.shape}); it must be one "
            "number, the effective "
            "step size (the drift rule takes the step as −lr·∇L: a per-coordinate step, a preconditioner, is not "
            "supported; declare no theory)")
        lr = float(lr)
        assert np.isfinite(lr) and lr > 0, f"learner {learner.name}: LearnerTheory.lr gives {lr}, not a positive step"
    m = learner.moments
    if m is not None and m.gradient_gain is not None:
        gain = np.asarray(m.gradient_gain(hyper))
        assert gain.shape == (), (
            f"learner {learner.name}: gradient_gain gives shape {gain.shape}; it must be one number (a "
            "per-coordinate or matrix gain, a preconditioner, is not supported: declare no moments)")
        if learner.theory is not None:
            lr = float(learner.theory.lr(hyper))
            assert np.isclose(float(gain), lr, rtol=1e-9, atol=0), (
                f"learner {learner.name}: gradient_gain {float(gain):g} differs from LearnerTheory.lr {lr:g}; the "
                "theory takes the step as −lr·∇L, so its lr must be the gain (a label-noise drift scales as lr²)")
        state = learner.init(params, hyper)
        # two shifts with every entry nonzero and no common pattern, so a gain that differs on any one
        # coordinate, or a matrix gain with one of them as an eigenvector, is still seen (a single
        # linspace(1, −1) had a zero middle entry: a preconditioner on that coordinate passed)
        i = jnp.arange(flat.shape[0], dtype=flat.dtype)
        deltas = (1e-3 * (1.0 + i) / flat.shape[0] * (-1.0) ** i, 1e-3 * (1.5 + jnp.cos(1.7 * i + 0.3)))

        def moved(shift):
            oracle = Oracle(value=lambda k, p: loss(p),
                            grad=lambda k, p: unravel(ravel_pytree(jax.grad(loss)(p))[0] + shift))
            if m.mean_step is not None:
                return ravel_pytree(m.mean_step(params, state, hyper, oracle))[0]
            new, _, _ = learner.step(jax.random.PRNGKey(0), params, state, hyper, oracle)
            return ravel_pytree(new)[0]

        which = "mean_step" if m.mean_step is not None else "step"
        for delta in deltas:
            got = np.asarray(moved(delta) - moved(0 * delta))
            want = -float(m.gradient_gain(hyper)) * np.asarray(delta)
            assert np.allclose(got, want, rtol=1e-6, atol=1e-12), (
                f"learner {learner.name}: declares gradient_gain {float(m.gradient_gain(hyper)):g}, but in its "
                f"{which} a gradient shift δ moved the params by {got} instead of −gain·δ = {want}")
    if m is not None and m.own_cov is not None and flat.shape[0] <= MAX_DIM:
        for h in (hyper, {k: jnp.where(v == 0, jnp.asarray(0.01, v.dtype), v) for k, v in hyper.items()}):
            _own_noise(learner, m, loss, params, h)
            if learner.theory is not None and learner.theory.covariance is not None and loss.residuals is not None:
                hf = {k: float(v) for k, v in h.items()}
                C = np.asarray(learner.theory.covariance(_contexts(loss, params, hf, float(learner.theory.lr(hf)))["numpy"]))
                want = np.asarray(m.own_cov(params, h))
                assert np.allclose(C, want, rtol=1e-8, atol=1e-12 * max(np.abs(want).max(), 1e-300)), (
                    f"learner {learner.name}: LearnerTheory.covariance {C.tolist()} differs from StepMoments.own_cov "
                    f"{want.tolist()}")
                traced = np.asarray(_traced(f"learner {learner.name}", learner.theory.covariance, loss, params, hf,
                                            float(learner.theory.lr(hf))))
                assert np.allclose(traced, C, rtol=1e-9, atol=1e-12 * max(np.abs(C).max(), 1e-300)), (
                    f"learner {learner.name}: LearnerTheory.covariance differs under jax.jit")
    if m is not None and m.own is not None and flat.shape[0] <= 4:
        state = learner.init(params, hyper)
        mean, cov = m.own(loss, params, state, hyper)
        assert np.shape(mean) == (flat.shape[0],), f"learner {learner.name}: own moments' mean has shape {np.shape(mean)}"
        _psd(f"learner {learner.name}: own moments' covariance", cov, flat.shape[0])
        moved = _steps(learner, loss, params, state, hyper) - np.asarray(flat)
        se = moved.std(0, ddof=1) / np.sqrt(moved.shape[0])
        gap = np.abs(np.asarray(mean) - np.asarray(flat) - moved.mean(0))
        if np.any(flat) and np.all(gap <= Z * se + 1e-12 * (1 + np.abs(np.asarray(mean)))):
            raise AssertionError(f"learner {learner.name}: StepMoments.own returns the new params as its mean; it "
                                 "must return the mean of the displacement θ' − θ (and its covariance)")
        _matches_samples(f"learner {learner.name}: displacements of its steps vs StepMoments.own", moved, mean, cov)
    if learner.theory is not None and not _declares_noise(learner) and flat.shape[0] <= MAX_DIM:
        two = _steps(learner, loss, params, learner.init(params, hyper), hyper, draws=2)
        assert np.array_equal(two[0], two[1]), (
            f"learner {learner.name}: its step is random (two keys moved the params differently with exact "
            "gradients) but it declares no noise of its own, so the theory would predict no drift from it: declare "
            "StepMoments(own_cov=..., mean_step=...) and LearnerTheory(covariance=...), or take the randomness out "
            "of the step")


def _declares_noise(learner) -> bool:
    """Whether a learner declares randomness of its own (a covariance, own_cov, or own moments)."""
    m = learner.moments
    return learner.theory.covariance is not None or (m is not None and (m.own_cov is not None or m.own is not None))


def _steps(learner, loss, params, state, hyper, draws: int = DRAWS) -> np.ndarray:
    """The learner's new flat params after one step with exact gradients, for ``draws`` keys: (draws, d)."""
    exact = Oracle(value=lambda k, p: loss(p), grad=lambda k, p: jax.grad(loss)(p))
    keys = jax.random.split(jax.random.PRNGKey(12), draws)
    return np.asarray(jax.jit(jax.vmap(lambda k: ravel_pytree(learner.step(k, params, state, hyper, exact)[0])[0]))(keys))


def _own_noise(learner, m, loss, params, hyper):
    """The learner's own noise: its steps around mean_step, over many keys, have the declared own_cov."""
    d = ravel_pytree(params)[0].shape[0]
    state = learner.init(params, hyper)
    exact = Oracle(value=lambda k, p: loss(p), grad=lambda k, p: jax.grad(loss)(p))
    mean = ravel_pytree(m.mean_step(params, state, hyper, exact))[0]
    steps = _steps(learner, loss, params, state, hyper)
    _psd(f"learner {learner.name}: own_cov", m.own_cov(params, hyper), d)
    _matches_samples(f"learner {learner.name}: steps vs mean_step and own_cov", steps, mean, m.own_cov(params, hyper))


def _jax_context(loss, unravel, flat, hyper, eta):
    """The JAX covariance context at the flat params, traceable in them (so a potential can be differentiated)."""
    from flatland.theory import CovarianceContext

    rows = lambda f: jnp.ravel(loss.residuals(unravel(f)))  # noqa: E731
    gauss_newton = lambda f: 2 * loss.kappa * jax.jacfwd(rows)(f).T @ jax.jacfwd(rows)(f)  # noqa: E731
    d = flat.shape[0]
    return CovarianceContext(H=gauss_newton(flat), eye=jnp.eye(d), eta=eta, kappa=loss.kappa, hyper=hyper,
                             J=jax.jacfwd(rows)(flat), theta=flat,
                             dH=jnp.moveaxis(jax.jacfwd(gauss_newton)(flat), -1, 0), backend="jax")


def check_learner_potential(learner: Learner, loss: Loss, on_gamma) -> None:
    """A learner's mean step at a point of Γ is −gain·∇U of its declared potential (U = 0 if none).

    The theory takes the mean step on Γ to be −lr·∇(L + U); ∇L = 0 there, so
    whatever a learner does on Γ on average must come from U. A weight-decay
    learner that forgets to declare U, or declares the wrong one, fails here. The
    mean step is the step itself for a learner without randomness of its own, and
    its declared ``mean_step`` for one with ``own_cov`` (a Langevin learner with
    weight decay passed unchecked before); learners with ``own`` moments, or
    random ones that declare no mean step, are not checked.
    """
    m, theory = learner.moments, learner.theory
    if theory is None or m is None or m.gradient_gain is None or m.own is not None or loss.residuals is None:
        return
    random = m.own_cov is not None or theory.covariance is not None
    if random and m.mean_step is None:
        return
    flat, unravel = ravel_pytree(on_gamma)
    assert np.abs(np.asarray(ravel_pytree(jax.grad(loss)(on_gamma))[0])).max() <= 1e-12, "point is not on Γ"
    hyper = _hyper(learner, on_gamma)
    oracle = Oracle(value=lambda k, p: loss(p), grad=lambda k, p: jax.grad(loss)(p))
    for h in (hyper, {k: jnp.where(v == 0, jnp.asarray(0.01, v.dtype), v) for k, v in hyper.items()}):
        state = learner.init(on_gamma, h)
        new = (m.mean_step(on_gamma, state, h, oracle) if random
               else learner.step(jax.random.PRNGKey(0), on_gamma, state, h, oracle)[0])
        got = np.asarray(ravel_pytree(new)[0] - flat)
        gain = float(m.gradient_gain(h))
        if theory.potential is None:
            want = np.zeros_like(got)
        else:
            hf = {k: jnp.asarray(v) for k, v in h.items()}
            U = lambda f: jnp.asarray(theory.potential(_jax_context(loss, unravel, f, hf, gain)), f.dtype)  # noqa: E731
            want = -gain * np.asarray(jax.grad(U)(flat))
        assert np.allclose(got, want, rtol=1e-6, atol=1e-12 * max(1.0, float(np.abs(flat).max()))), (
            f"learner {learner.name}: at a point of Γ (∇L = 0) its {'mean ' if random else ''}step moved the params by "
            f"{got.tolist()}, but "
            f"its declared potential gives −gain·∇U = {want.tolist()} (LearnerTheory(potential=...) must be what "
            "the step descends besides L)")
