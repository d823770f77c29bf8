"""The paper's one-hidden-layer network: d_in → n_hid → d_out, readout without bias.

What: ``NetSpec`` (sizes, activation, initialisation regime, dtype),
``init_params(spec, key)``, ``hidden(params, X, act)``, ``forward`` and the
per-activation definition of an *active* unit.

Why this layout: params are a dict ``{"W": (n_hid, d_in), "b": (n_hid,),
"V": (d_out, n_hid)}`` — the hidden weights of unit j are row ``W[j]``, its
bias ``b[j]`` and its readout column ``V[:, j]``, so "everything unit j owns"
is one index along the hidden axis (the Hessian code and the sparse step use
that). ŷ = σ(X Wᵀ + b) Vᵀ, exactly the paper's ``Linear(d_in, n_hid)`` then
``Linear(n_hid, d_out, bias=False)``.

Initialisation (the paper's ``model.py``): W and b ~ N(0, 2/d_in); the readout
V ~ N(0, (2/n_hid)²) for ``"lazy"`` (std 2/n_hid) and N(0, 2/n_hid) for
``"rich"`` (std √(2/n_hid)).

"Active" — one convention for every activation: unit j is active on input t
iff its pre-activation z_tj = W_j·x_t + b_j is > 0 (the unit sits on its
"on" branch). For ReLU this is exactly "activation > 0", and an inactive unit
(z ≤ 0 on every input) has exactly zero gradient and Hessian rows. For
leaky ReLU (slope ``alpha`` below 0), softplus and tanh the same rule is used,
but an "inactive" unit still carries gradient through the off branch, so it
does *not* give exact zero Hessian eigenvalues; the Hessian/zero-row
arguments and the sparse step apply to ReLU only.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from flatland import UserError

ACTIVATIONS = ("relu", "leaky-relu", "softplus", "tanh")
REGIMES = ("lazy", "rich")
DTYPES = {"float64": jnp.float64, "float32": jnp.float32}


@dataclasses.dataclass(frozen=True)
class NetSpec:
    """Sizes, activation, init regime and dtype of the network."""

    d_in: int = 18
    n_hid: int = 500
    d_out: int = 17
    activation: str = "relu"
    regime: str = "lazy"
    dtype: str = "float64"
    alpha: float = 0.01  # leaky-ReLU slope below 0

    def __post_init__(self):
        for name in ("d_in", "n_hid", "d_out"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise UserError(f"network {name} must be a positive integer, got {v!r}")
        if self.activation not in ACTIVATIONS:
            raise UserError(f"unknown activation {self.activation!r} (known: {', '.join(ACTIVATIONS)})")
        if self.regime not in REGIMES:
            raise UserError(f"unknown init regime {self.regime!r} (known: {', '.join(REGIMES)})")
        if self.dtype not in DTYPES:
            raise UserError(f"unknown dtype {self.dtype!r} (known: {', '.join(DTYPES)})")

    @property
    def n_params(self) -> int:
        return self.n_hid * (self.d_in + 1 + self.d_out)

    @property
    def per_unit(self) -> int:
        """Parameters owned by one hidden unit: d_in + 1 + d_out."""
        return self.d_in + 1 + self.d_out

    @property
    def jdtype(self):
        return DTYPES[self.dtype]


def activation_fn(spec: NetSpec):
    """σ(z) for the spec's activation (pure JAX)."""
    if spec.activation == "relu":
        return jax.nn.relu
    if spec.activation == "leaky-relu":
        a = spec.alpha
        return lambda z: jnp.where(z > 0, z, a * z)
    if spec.activation == "softplus":
        return jax.nn.softplus
    return jnp.tanh


def init_params(spec: NetSpec, key: jax.Array) -> dict:
    """Draw W, b ~ N(0, 2/d_in) and V per the regime, in the spec's dtype."""
    kw, kb, kv = jax.random.split(key, 3)
    dt = spec.jdtype
    s_in = jnp.sqrt(2.0 / spec.d_in)
    s_out = 2.0 / spec.n_hid if spec.regime == "lazy" else jnp.sqrt(2.0 / spec.n_hid)
    return {
        "W": (s_in * jax.random.normal(kw, (spec.n_hid, spec.d_in), dt)).astype(dt),
        "b": (s_in * jax.random.normal(kb, (spec.n_hid,), dt)).astype(dt),
        "V": (s_out * jax.random.normal(kv, (spec.d_out, spec.n_hid), dt)).astype(dt),
    }


def preact(params: dict, X: jax.Array) -> jax.Array:
    """z = X Wᵀ + b, shape (T, n_hid)."""
    return X @ params["W"].T + params["b"]


def hidden(params: dict, X: jax.Array, spec: NetSpec) -> jax.Array:
    """Hidden activations σ(z), shape (T, n_hid)."""
    return activation_fn(spec)(preact(params, X))


def forward(params: dict, X: jax.Array, spec: NetSpec) -> jax.Array:
    """Network output ŷ = σ(X Wᵀ + b) Vᵀ, shape (T, d_out)."""
    return hidden(params, X, spec) @ params["V"].T


def active_matrix(params: dict, X: jax.Array) -> jax.Array:
    """Boolean (T, n_hid): unit j active on input t iff z_tj > 0 (see module doc)."""
    return preact(params, X) > 0


def active_units(params: dict, X: jax.Array) -> jax.Array:
    """Boolean (n_hid,): unit active on at least one input."""
    return jnp.any(active_matrix(params, X), axis=0)


def flatten(params: dict) -> jax.Array:
    """Parameters as one vector, ordered unit-major: [W_j, b_j, V_:j] for j = 0..n_hid−1.

    This order puts each unit's d_in + 1 + d_out parameters in one contiguous
    slice, which is what the Hessian code assumes.
    """
    per_unit = jnp.concatenate([params["W"], params["b"][:, None], params["V"].T], axis=1)
    return per_unit.reshape(-1)


def unflatten(theta: jax.Array, spec: NetSpec) -> dict:
    """Inverse of :func:`flatten`."""
    u = theta.reshape(spec.n_hid, spec.per_unit)
    return {"W": u[:, : spec.d_in], "b": u[:, spec.d_in], "V": u[:, spec.d_in + 1:].T}
