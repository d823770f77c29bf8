"""Assembling one ``flatland run``: components, metrics, extensions and compiled chunks.

What: ``build_setup(cfg)`` looks every name up in the registry — the task (a
registered loss, created with the ``[task]`` options), the learner, the noise
model, the ``[run] metrics`` and the run extensions whose ``applies(loss)`` is
true — checks that the task provides what each metric and noise model
``requires``, and returns a :class:`Setup` whose ``chunk`` compiles one
``scan`` per (length, log period) on first use.

Initial params: ``loss.init(key)`` per seed when the loss has one; otherwise
every seed starts at ``[task] start`` or at the loss's ``point``. A metric's
output becomes CSV columns when every leaf is a scalar (``name`` or
``name.key`` for a dict); otherwise its records go to ``records/*.npz``. All
metrics are logged every ``[run] log_every`` steps, in one record callback
(a Metric's own ``every`` is its default for other users, not used here).
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .assembly import assemble
from .config import RunConfig
from .errors import UserError
from .extensions import RunContext, resolve_options
from .normal_draws import PHILOX
from .simulate import ensemble, make_runner
from .stepping import as_hyper, make_step, positive_why

PRNG_IMPL = {"threefry": "threefry2x32", "philox": PHILOX, "rbg": "rbg", "unsafe_rbg": "unsafe_rbg"}
CORE = ("task", "learner", "noise", "run")


@dataclasses.dataclass
class Setup:
    """Everything assembled for one configuration (``cfg`` resolved, extension defaults filled)."""

    cfg: RunConfig
    loss: object
    noise: object
    learner: object
    hyper: dict
    init: Callable                 # key -> params of one seed
    step: Callable
    record: Callable
    base_key: jax.Array
    metric_names: tuple
    columns: tuple                 # metrics.csv columns after step, seed
    column_of: dict                # column -> records -> (seeds, logs) array
    array_metrics: tuple           # metrics with non-scalar values (records/*.npz)
    extensions: tuple
    contexts: tuple
    plugins: tuple
    compiled: dict = dataclasses.field(default_factory=dict)

    def chunk(self, keys, params, state, t0, n=None, every=None):
        """``n`` steps (default ``snapshot_every``) from step t0 for every seed, records every ``every``."""
        n = self.cfg.run["snapshot_every"] if n is None else int(n)
        every = self.cfg.run["log_every"] if every is None else int(every)
        if (n, every) not in self.compiled:
            self.compiled[(n, every)] = _compile(self, n, every)
        return self.compiled[(n, every)](keys, params, state, t0, self.hyper)


def _compile(setup: Setup, n: int, every: int) -> Callable:
    """(keys, params, state, t0, hyper) -> trace; hyper is an argument, so rebound setups share it."""
    run = make_runner(setup.step, n, every=every, record=setup.record)
    if ensemble_mode(setup.cfg.run["ensemble"]) == "loop":
        one = jax.jit(run)

        def chunk(keys, params, state, t0, hyper):
            outs = []
            for i in range(keys.shape[0]):
                pick = lambda t, i=i: jax.tree_util.tree_map(lambda a: a[i], t)  # noqa: E731
                outs.append(one(keys[i], pick(params), pick(state), hyper, t0))
            return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *outs)
        return chunk
    many = ensemble(run)
    return lambda keys, params, state, t0, hyper: many(keys, params, state, hyper, t0)


def ensemble_mode(mode: str) -> str:
    """How several seeds run: ``"loop"`` (one compiled single-seed chunk per seed) or ``"vmap"`` (one vmapped
    chunk). ``"auto"`` picks by where JAX computes: loop on a CPU, where at the Fig 2 size on a busy 2-core
    machine it was up to ~1.6x faster per chain; vmap on an accelerator, where 16 seeds ran 8x faster vmapped
    on an H200 (benchmarks/relu_speed.py)."""
    if mode != "auto":
        return mode
    return "loop" if jax.default_backend() == "cpu" else "vmap"


def _create(reg, kind, section: dict, dtype):
    """Create a component; section keys that are factory parameters are options, the rest hyper."""
    name = section["name"]
    entry = reg.entry(kind, name)
    label = {"learners": "learner", "noise": "noise"}[kind]
    try:
        params = inspect.signature(entry.factory).parameters
    except (TypeError, ValueError):
        params = {}
    opts = {k: v for k, v in section.items() if k != "name" and k in params}
    rest = {k: v for k, v in section.items() if k != "name" and k not in params}
    option_types(label, name, params, opts)
    try:
        comp = entry.factory(**opts)
    except (TypeError, ValueError, OSError) as exc:
        raise UserError(f"[{label}] {name}: bad option: {_one_line(exc)}") from None
    # a factory parameter that is also a hyperparameter sets the default it is checked against:
    # check it against the factory's own default instead (same rules as any hyperparameter)
    own = {k: params[k].default for k in opts if k in comp.hyper and type(params[k].default) in (int, float)}
    try:
        as_hyper(own, {k: opts[k] for k in own})
        hyper = as_hyper(comp.hyper, rest, dtype=dtype)
    except ValueError as exc:
        raise UserError(f"[{label}] {name}: {exc}") from None
    for k in getattr(comp, "positive", ()):
        if k in hyper and not bool(np.all(np.asarray(hyper[k]) > 0)):
            raise UserError(f"[{label}] {name}: {k} must be > 0 ({positive_why(k)}), got {rest.get(k, comp.hyper[k])!r}")
    return comp, hyper


_KINDS = ((bool, "true or false", (bool,)), (int, "an integer", (int,)), (float, "a number", (int, float)),
          (str, "a string", (str,)))


def option_types(label: str, name: str, params, opts: dict) -> None:
    """A factory option must have the type of its default (bool, int, float, str): a string "16" for an
    integer option used to reach the component's own code, which raised inside the run's build."""
    for k, v in opts.items():
        default = params[k].default if k in params else inspect.Parameter.empty
        for kind, says, ok in _KINDS:
            if type(default) is kind:
                if type(v) not in ok:
                    raise UserError(f"[{label}] {name}: {k} must be {says} like its default {default!r}, got {v!r}")
                break


def _create_noise(reg, section: dict, dtype):
    """The noise model of ``[noise]``: one, or several composed (``name = [...]``, settings in ``[noise.NAME]``)."""
    names = section["name"]
    if isinstance(names, str):
        return _create(reg, "noise", section, dtype)
    from .composition import compose_noise

    made = [_create(reg, "noise", {"name": n, **section.get(n, {})}, dtype) for n in names]
    try:
        noise = compose_noise([m for m, _ in made])
    except ValueError as exc:
        raise UserError(f"[noise] {exc}") from None
    hyper = {f"{m.name}.{k}": v for m, h in made for k, v in h.items()}
    return noise, hyper


def _loss(reg, cfg: RunConfig):
    name = cfg.task["name"]
    entry = reg.entry("losses", name)  # unknown task: one line listing the known ones
    try:
        option_types("task", name, inspect.signature(entry.factory).parameters, cfg.loss_options())
    except (TypeError, ValueError):   # a factory without a signature: its own checks only
        pass
    try:
        return reg.create("losses", name, **cfg.loss_options())
    except (TypeError, ValueError, OSError) as exc:   # a data file option that is missing, say
        raise UserError(f"[task] {name}: bad option: {_one_line(exc)}") from None


def _one_line(exc) -> str:
    """An exception's message on one line (a factory's own message may span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _init_fn(cfg: RunConfig, loss) -> Callable:
    """key -> params of one seed: init, else [task] start, else the loss's point."""
    name, start = cfg.task["name"], cfg.task.get("start")
    if start is not None:
        if loss.init is not None:
            raise UserError(f"[task] start: task {name!r} draws its params with init; start is for a task with a point")
        if not isinstance(start, list) or not start:
            raise UserError(f"[task] start must be a non-empty list of numbers, got {start!r}")
        if loss.point is not None and len(start) != len(loss.point):
            raise UserError(f"[task] start has {len(start)} coordinates; task {name!r} has {len(loss.point)}")
        p0 = jnp.asarray(start, jnp.result_type(float))
        return lambda key: p0
    if loss.init is not None:
        return loss.init
    if loss.point is not None:
        p0 = jnp.asarray(loss.point, jnp.result_type(float))
        return lambda key: p0
    raise UserError(f"[task] {name!r} has neither init nor point: give [task] start = [...]")


def _require(what: str, needs, loss, task: str) -> None:
    extras = getattr(loss, "extras", {}) or {}
    missing = [k for k in needs if k not in extras]
    if missing:
        raise UserError(f"{what} needs loss.extras[{missing[0]!r}], which task {task!r} does not provide")


def _metrics(reg, cfg: RunConfig, loss, init):
    """The record function and the CSV layout of the chosen registered metrics."""
    task = cfg.task["name"]
    metrics = {}
    for name in cfg.run["metrics"]:
        m = reg.create("metrics", name)
        _require(f"[run] metric {name!r}", m.requires, loss, task)
        metrics[name] = m

    def record(params, state, hyper):
        return {n: jax.tree_util.tree_map(lambda v: jnp.asarray(v, jnp.float64), m.fn(params, loss))
                for n, m in metrics.items()}

    p0 = jax.eval_shape(init, jax.random.key(0))
    columns, column_of, arrays = [], {}, []
    for name, m in metrics.items():
        try:
            shape = jax.eval_shape(lambda p, m=m: m.fn(p, loss), p0)   # this metric alone: the error is its own
        except (ValueError, TypeError, KeyError) as exc:
            raise UserError(f"[run] metric {name!r} cannot run on task {task!r}: {exc}".splitlines()[0]) from None
        leaves = jax.tree_util.tree_flatten_with_path(shape)[0]
        if not all(leaf.shape == () for _, leaf in leaves):
            arrays.append(name)
            continue
        for path, _ in leaves:
            keys = [str(getattr(k, "key", getattr(k, "idx", k))) for k in path]
            col = ".".join([name] + keys)
            columns.append(col)
            column_of[col] = lambda r, name=name, path=path: _at(r[name], path)
    return tuple(metrics), record, tuple(columns), column_of, tuple(arrays)


def _at(tree, path):
    for k in path:
        tree = tree[getattr(k, "key", getattr(k, "idx", None))]
    return tree


def _extensions(reg, cfg: RunConfig, loss):
    """Active extensions with their contexts; every extra config table must belong to one of them."""
    built = [(e.name, e.factory()) for e in reg.entries("run_extensions")]
    active = [x for _, x in built if x.applies(loss)]
    owner = {x.section: (n, x) for n, x in built if x.section}
    for sec in cfg.extensions:
        if sec not in owner:
            raise UserError(f"unknown config section [{sec}] (known: {', '.join(CORE)}"
                            + "".join(f", {s}" for s in sorted(owner)) + ")")
        name, ext = owner[sec]
        if ext not in active:
            raise UserError(f"[{sec}] is read by run extension {name!r}, which does not apply to task "
                            f"{cfg.task['name']!r}")
    contexts = [RunContext(loss, resolve_options(x, cfg.extensions.get(x.section, {})), dict(cfg.run)) for x in active]
    for x, ctx in zip(active, contexts):
        x.check(ctx)
    tables = {}
    for x in active:
        for f in x.tables:
            if f in tables or f == "metrics.csv":
                raise UserError(f"run extensions {tables.get(f, 'engine')} and {x.name} both write {f}")
            tables[f] = x.name
    resolved = {x.section: ctx.options for x, ctx in zip(active, contexts) if x.section}
    return tuple(active), tuple(contexts), resolved


def _dtype(init):
    leaves = [a for a in jax.tree_util.tree_leaves(jax.eval_shape(init, jax.random.key(0)))
              if jnp.issubdtype(a.dtype, jnp.floating)]
    return leaves[0].dtype if leaves else jnp.result_type(float)


def build_setup(cfg: RunConfig, asm=None) -> Setup:
    """Assemble everything ``cfg`` names (see module doc); every mistake is a one-line UserError."""
    asm = asm or assemble()
    reg = asm.registry
    loss = _loss(reg, cfg)
    init = _init_fn(cfg, loss)
    dtype = _dtype(init)
    noise, nh = _create_noise(reg, cfg.noise, dtype)
    _require(f"[noise] {noise.name!r}", getattr(noise, "requires", ()), loss, cfg.task["name"])
    learner, lh = _create(reg, "learners", cfg.learner, dtype)
    names, record, columns, column_of, arrays = _metrics(reg, cfg, loss, init)
    extensions, contexts, resolved = _extensions(reg, cfg, loss)
    cfg = dataclasses.replace(cfg, extensions=resolved)
    steps = [(x.name, s) for x, ctx in zip(extensions, contexts) if (s := x.step(ctx, noise, learner)) is not None]
    if len(steps) > 1:
        raise UserError(f"run extensions {', '.join(n for n, _ in steps)} each replace the step; keep one")
    step = steps[0][1] if steps else make_step(loss, noise, learner)
    base = jax.random.key(cfg.run["seed"], impl=PRNG_IMPL[cfg.run["prng"]])
    return Setup(cfg, loss, noise, learner, {"learner": lh, "noise": nh}, init, step, record, base, names,
                 columns, column_of, arrays, extensions, contexts, tuple(asm.plugins))


def _options_only(reg, kind: str, section: dict) -> dict:
    """A learner/noise section without its hyperparameters (the keys that are not factory options)."""
    try:
        params = inspect.signature(reg.entry(kind, section["name"]).factory).parameters
    except (TypeError, ValueError):
        params = {}
    return {k: v for k, v in section.items() if k == "name" or k in params}


def structure_key(cfg: RunConfig, reg) -> str:
    """What the compiled chunks of ``cfg`` depend on: the config without hyperparameter values, seed and steps.

    Hyperparameters (learner/noise keys that are not factory options) and the
    base key are arguments of the compiled chunk, so configs with the same
    structure share one :class:`Setup` through :func:`rebind`.
    """
    import json

    d = cfg.to_dict()
    d["run"] = {k: v for k, v in d["run"].items() if k not in ("seed", "steps")}
    d["learner"] = _options_only(reg, "learners", d["learner"])
    names = d["noise"]["name"]
    if isinstance(names, str):
        d["noise"] = _options_only(reg, "noise", d["noise"])
    else:
        d["noise"] = {"name": names} | {n: _options_only(reg, "noise", {"name": n, **d["noise"].get(n, {})})
                                        for n in names}
    return json.dumps(d, sort_keys=True, default=str)


def rebind(setup: Setup, cfg: RunConfig, reg) -> Setup:
    """``setup`` for ``cfg`` of the same :func:`structure_key`: new hyperparameters, seed and steps, same compiled chunks."""
    dtype = _dtype(setup.init)
    _, nh = _create_noise(reg, cfg.noise, dtype)
    _, lh = _create(reg, "learners", cfg.learner, dtype)
    cfg = dataclasses.replace(cfg, extensions=setup.cfg.extensions)
    for ctx in setup.contexts:
        ctx.run.update(cfg.run)
    base = jax.random.key(cfg.run["seed"], impl=PRNG_IMPL[cfg.run["prng"]])
    return dataclasses.replace(setup, cfg=cfg, hyper={"learner": lh, "noise": nh}, base_key=base)


def initial_state(setup: Setup):
    """Params and learner state of every seed, with a leading seed axis."""
    S = setup.cfg.run["seeds"]
    keys = jax.random.split(jax.random.fold_in(setup.base_key, 0), S)
    params = jax.vmap(setup.init)(keys)
    state = jax.vmap(lambda p: setup.learner.init(p, setup.hyper["learner"]))(params)
    return params, state


def chunk_keys(setup: Setup, c: int):
    """Per-seed keys of chunk c (steps c·snapshot_every …): ``split(fold_in(base, c + 1), seeds)``."""
    return jax.random.split(jax.random.fold_in(setup.base_key, c + 1), setup.cfg.run["seeds"])
