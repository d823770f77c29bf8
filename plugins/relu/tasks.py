"""The paper's tasks as seeded data sets: corridor predictive coding and its relatives.

What: ``corridor(...)`` (the Fig 2 task), ``circular_track(...)`` (simplified
predictive coding), ``random_mapping(...)`` and ``smoothed_mapping(...)``. Each
returns a :class:`TaskData` of host numpy arrays — inputs ``X`` (T, d_in),
targets ``Y`` (T, d_out) and, where the task has a place, the agent's position
and running direction for rate maps. Generation is plain numpy with
``np.random.default_rng(seed)``: it happens once while assembling, never in
traced code, and the same seed always gives the same data. ``probe_walk(data, n)``
continues the walk of a task with positions (corridor, circular track) for n more
steps in the same environment: the probe on which the ``si_probe`` metrics take
their rate maps.

Corridor (Ratzon et al., eLife 2024): a size_x × size_y box, agent held to x = 0 and
y ∈ ±(size_y/2 − buffer), speed v0 + N(0, speed_sd²) per step, heading noise
N(0, heading_sd²) rad per step, turning round (heading 0 or π) at the ends. 17
rays span ±fov_half around the heading and read a wall texture: n_tiles =
2·(size_x+size_y)·n_rays Gaussian values, circularly smoothed with σ =
kernel·n_tiles tiles, laid once round the perimeter. Input x_t = [view at t,
change of heading over the step], target y_t = view at t+1; view part,
heading part and targets are each min–max normalised to [−1, 1].

Where this differs from the public code (Aviv-Ratzon/DriftReg, make_data.py):

* ``texture="continuous"`` (default) maps a wall hit to its arc length along
  the perimeter, so the texture is continuous all the way round. The public
  code puts wall i at phase i/4 although the walls have unequal lengths, so the
  left wall's phase runs past 1 and ~46% of it reads one clamped value (flat).
  ``texture="public"`` reproduces that mapping for comparison.
* ``heading_change="wrapped"`` (default) is the heading difference wrapped to
  [−π, π). The public code takes the raw difference of headings kept mod 2π, so
  a heading wandering across 0 gives a ±2π jump (and the first step is 2π);
  ``heading_change="public"`` reproduces that.
* min–max normalisation is exact (the public code adds 1e-5 to min and max).
* the running direction used for rate maps is the sign of cos(heading) of the
  view, not the sign of the position difference (zero at the clamped ends).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np
from scipy.ndimage import gaussian_filter, gaussian_filter1d

from flatland import UserError


@dataclasses.dataclass(frozen=True)
class TaskData:
    """Inputs, targets and (optionally) position, direction and track extent."""

    name: str
    X: np.ndarray
    Y: np.ndarray
    pos: Optional[np.ndarray] = None        # (T,) position along the track
    direction: Optional[np.ndarray] = None  # (T,) +1 / −1 running direction
    track: Optional[tuple] = None           # (lo, hi) extent of positions
    settings: dict = dataclasses.field(default_factory=dict)

    @property
    def T(self) -> int:
        return self.X.shape[0]


def minmax(a: np.ndarray, ref: Optional[np.ndarray] = None) -> np.ndarray:
    """Min–max normalise the whole array to [−1, 1] (a constant array → 0); with ``ref``, use ``ref``'s
    minimum and maximum instead (a probe walk is mapped as its training set was, so it may leave [−1, 1])."""
    ref = a if ref is None else ref
    lo, hi = float(np.min(ref)), float(np.max(ref))
    if hi - lo <= 0:
        return np.zeros_like(a)
    return 2.0 * (a - lo) / (hi - lo) - 1.0


def _positive(name, v, integer=False):
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
    if integer:
        ok = ok and float(v).is_integer()
    if not ok:
        kind = "a positive integer" if integer else "a positive number"
        raise UserError(f"task parameter {name} must be {kind}, got {v!r}")


def _samples(T):
    """T: an integer ≥ 2 — one sample has no variance across samples, by which the loss is normalised (a
    run with T = 1 went on with loss_norm inf)."""
    _positive("T", T, integer=True)
    if T < 2:
        raise UserError(f"task parameter T must be at least 2 (the loss is normalised by the targets' variance "
                        f"across samples), got {T!r}")


def _choice(name, v, known):
    if v not in known:
        raise UserError(f"task parameter {name} must be one of {', '.join(known)}, got {v!r}")


class _Corridor:
    """Geometry and texture of the box (walls: 0 top y=+sy/2, 1 right, 2 bottom, 3 left)."""

    def __init__(self, size_x, size_y, n_rays, kernel, texture, rng):
        self.sx, self.sy = size_x, size_y
        self.circ = 2 * (size_x + size_y)
        self.n_tiles = int((size_x + size_y) * 2 * n_rays)
        self.texture_mode = texture
        raw = rng.standard_normal(self.n_tiles)
        self.tex = gaussian_filter1d(raw, kernel * self.n_tiles, mode="wrap")

    def hit(self, x0, y0, phi):
        """Wall index and hit point of the ray from (x0, y0) along (sin φ, cos φ)."""
        dx, dy = math.sin(phi), math.cos(phi)
        tx = ((self.sx / 2 if dx > 0 else -self.sx / 2) - x0) / dx if abs(dx) > 1e-300 else math.inf
        ty = ((self.sy / 2 if dy > 0 else -self.sy / 2) - y0) / dy if abs(dy) > 1e-300 else math.inf
        if ty <= tx:
            return (0 if dy > 0 else 2), x0 + ty * dx, y0 + ty * dy
        return (1 if dx > 0 else 3), x0 + tx * dx, y0 + tx * dy

    def phase(self, wall, x, y):
        """Position of a wall point round the perimeter, as a fraction in [0, 1)."""
        sx, sy = self.sx, self.sy
        local = (x + sx / 2, sy / 2 - y, sx / 2 - x, y + sy / 2)[wall]
        if self.texture_mode == "public":
            return wall / 4 + local / self.circ
        start = (0.0, sx, sx + sy, 2 * sx + sy)[wall]
        return ((start + local) / self.circ) % 1.0

    def read(self, phase):
        """Texture value at ``phase`` by periodic linear interpolation between tiles."""
        u = phase * self.n_tiles
        if self.texture_mode == "public":
            u = min(max(u, -1.0), float(self.n_tiles))  # np.interp clamps outside its pads
        i0 = math.floor(u)
        f = u - i0
        n = self.n_tiles
        return (1 - f) * self.tex[i0 % n] + f * self.tex[(i0 + 1) % n]

    def view(self, x, y, theta, n_rays, fov_half):
        out = np.empty(n_rays)
        for i, phi in enumerate(np.linspace(theta - fov_half, theta + fov_half, n_rays)):
            wall, hx, hy = self.hit(x, y, phi)
            out[i] = self.read(self.phase(wall, hx, hy))
        return out


def corridor(seed: int = 0, T: int = 150, size_x: float = 1.0, size_y: float = 14.0,
             buffer_x: float = 0.5, buffer_y: float = 0.1, v0: float = 0.2, speed_sd: float = 0.1,
             heading_sd: float = math.pi ** 2 / 1800, n_rays: int = 17, fov_half: float = math.pi / 8,
             kernel: float = 0.09, texture: str = "continuous", heading_change: str = "wrapped") -> TaskData:
    """The predictive-coding corridor (see module doc). ``heading_sd`` default 2π·(π·0.1/360) rad
    as in the public code; ``buffer_x``/``buffer_y`` are fractions of size_x/size_y."""
    for name, v in (("size_x", size_x), ("size_y", size_y), ("v0", v0), ("fov_half", fov_half), ("kernel", kernel)):
        _positive(name, v)
    _samples(T)
    _positive("n_rays", n_rays, integer=True)
    for name, v in (("speed_sd", speed_sd), ("heading_sd", heading_sd), ("buffer_x", buffer_x), ("buffer_y", buffer_y)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not (0 <= v < (1 if "buffer" in name else math.inf)):
            raise UserError(f"task parameter {name} must be a number ≥ 0{' and < 1' if 'buffer' in name else ''}, got {v!r}")
    _choice("texture", texture, ("continuous", "public"))
    _choice("heading_change", heading_change, ("wrapped", "public"))
    settings = dict(seed=seed, T=int(T), size_x=size_x, size_y=size_y, buffer_x=buffer_x, buffer_y=buffer_y, v0=v0,
                    speed_sd=speed_sd, heading_sd=heading_sd, n_rays=int(n_rays), fov_half=fov_half, kernel=kernel,
                    texture=texture, heading_change=heading_change)
    X, Y, pos, direction, track = _corridor_walk(int(T), **settings)
    return TaskData("corridor", _corridor_inputs(X, int(n_rays)), minmax(Y), pos, direction, track, settings)


def _corridor_inputs(X, n_rays, ref=None):
    """View block and heading column each min–max normalised (with ``ref``'s constants when given)."""
    ref = X if ref is None else ref
    return np.concatenate([minmax(X[:, :n_rays], ref[:, :n_rays]), minmax(X[:, n_rays:], ref[:, n_rays:])], axis=1)


def _corridor_walk(n, seed, T, size_x, size_y, buffer_x, buffer_y, v0, speed_sd, heading_sd, n_rays, fov_half, kernel,
                   texture, heading_change):
    """The first ``n`` steps of the seed's walk, unnormalised: (X, Y, position, direction, track). The draws
    come in a fixed order, so a longer walk starts with the shorter one (``T`` itself is not used)."""
    rng = np.random.default_rng(seed)
    box = _Corridor(size_x, size_y, n_rays, kernel, texture, rng)
    xl = (-size_x / 2 + buffer_x * size_x, size_x / 2 - buffer_x * size_x)
    yl = (-size_y / 2 + buffer_y * size_y, size_y / 2 - buffer_y * size_y)

    x, y = 0.0, 0.0
    theta = (rng.uniform() - 1) / 100
    theta_v = 0.0
    view_heading = theta
    view = box.view(x, y, theta, n_rays, fov_half)
    X = np.empty((n, n_rays + 1))
    Y = np.empty((n, n_rays))
    pos = np.empty(n)
    direction = np.empty(n)
    for t in range(n):
        X[t, :n_rays] = view
        pos[t] = y
        direction[t] = 1.0 if math.cos(view_heading) >= 0 else -1.0
        theta_t = theta
        speed = v0 + speed_sd * rng.standard_normal()
        x, y = x + math.sin(theta) * speed, y + math.cos(theta) * speed
        x = min(max(x, xl[0]), xl[1])
        low, high = y < yl[0], y > yl[1]
        y = min(max(y, yl[0]), yl[1])
        theta = (theta + theta_v) % (2 * math.pi)
        view = box.view(x, y, theta, n_rays, fov_half)
        view_heading = theta
        theta_v = heading_sd * rng.standard_normal()
        if low:
            theta = 0.0
        if high:
            theta = math.pi
        d = theta - theta_t
        X[t, n_rays] = d if heading_change == "public" else (d + math.pi) % (2 * math.pi) - math.pi
        Y[t] = view
    return X, Y, pos - yl[0], direction, (0.0, yl[1] - yl[0])


def _corridor_probe(settings, n):
    T = settings["T"]
    X, _, pos, direction, _ = _corridor_walk(T + n, **settings)
    return _corridor_inputs(X[T:], settings["n_rays"], ref=X[:T]), pos[T:], direction[T:]


def circular_track(seed: int = 0, T: int = 150, d: int = 17, circumference: float = 120.0, fov: float = 30.0,
                   step_scale: float = 20.0) -> TaskData:
    """Simplified predictive coding on a circular track (no velocity input).

    A periodic texture of ``circumference``+1 uniform values smoothed with σ =
    circumference/fov, min–max normalised; the agent advances U(0, 1)·step per
    step (step = circumference/T·step_scale, as in the public code) and sees
    ``d`` texture samples over ``fov`` ahead; x_t = view at t, y_t = view at
    t+1. The public code smooths the texture non-periodically; here it is
    periodic (it is a circle). One running direction.
    """
    for name, v in (("circumference", circumference), ("fov", fov), ("step_scale", step_scale)):
        _positive(name, v)
    _samples(T)
    _positive("d", d, integer=True)
    settings = dict(seed=seed, T=int(T), d=int(d), circumference=circumference, fov=fov, step_scale=step_scale)
    views, p = _circular_walk(int(T), **settings)
    return TaskData("circular-track", minmax(views[:-1]), minmax(views[1:]), p[:-1] % circumference,
                    np.ones(int(T)), (0.0, circumference), settings)


def _circular_walk(n, seed, T, d, circumference, fov, step_scale):
    """Views (n + 1, d) and positions (n + 1,) of the first ``n`` steps of the seed's walk; the step size
    follows the training set's ``T``, so a longer walk starts with the shorter one."""
    rng = np.random.default_rng(seed)
    m = int(round(circumference))
    tex = minmax(gaussian_filter1d(rng.uniform(size=m), circumference / fov, mode="wrap"))
    step = circumference / T * step_scale
    p = np.cumsum(rng.uniform(size=n + 1) * step)
    u = (p[:, None] + np.linspace(0, fov, d)[None, :]) % circumference * (m / circumference)
    i0 = np.floor(u).astype(int)
    f = u - i0
    return (1 - f) * tex[i0 % m] + f * tex[(i0 + 1) % m], p


def _circular_probe(settings, n):
    T = settings["T"]
    views, p = _circular_walk(T + n, **settings)
    return minmax(views[T:T + n], views[:T]), p[T:T + n] % settings["circumference"], np.ones(n)


def random_mapping(seed: int = 0, T: int = 150, d_in: int = 18, d_out: int = 17) -> TaskData:
    """Uniform random inputs → uniform random targets, each min–max normalised to [−1, 1]."""
    _samples(T)
    for name, v in (("d_in", d_in), ("d_out", d_out)):
        _positive(name, v, integer=True)
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(int(T), int(d_in)))
    Y = rng.uniform(size=(int(T), int(d_out)))
    return TaskData("random-mapping", minmax(X), minmax(Y), settings=dict(seed=seed, T=T, d_in=d_in, d_out=d_out))


def smoothed_mapping(seed: int = 0, T: int = 150, d_in: int = 18, d_out: int = 17, smooth: float = 5.0) -> TaskData:
    """Random mapping smoothed as in the public code: a Gaussian filter with σ = (T/smooth, d_out/5)
    over (samples, dimensions) of uniform noise (scipy's reflecting edges), then min–max."""
    _samples(T)
    for name, v in (("d_in", d_in), ("d_out", d_out)):
        _positive(name, v, integer=True)
    _positive("smooth", smooth)
    rng = np.random.default_rng(seed)
    sig = (int(T) / smooth, int(d_out) / 5)
    X = gaussian_filter(rng.uniform(size=(int(T), int(d_in))), sigma=sig)
    Y = gaussian_filter(rng.uniform(size=(int(T), int(d_out))), sigma=sig)
    return TaskData("smoothed-mapping", minmax(X), minmax(Y),
                    settings=dict(seed=seed, T=T, d_in=d_in, d_out=d_out, smooth=smooth))


def probe_walk(data: TaskData, n: int):
    """The training walk continued for ``n`` more steps in the same environment: (X, position, direction), the
    inputs normalised with the training set's constants. A dense probe of the network's tuning along the track:
    rate maps from 150 training samples in 100 bins are dominated by sampling noise. Tasks without positions
    have none (``None``)."""
    walk = PROBES.get(data.name)
    return None if walk is None else walk(data.settings, int(n))


TASKS = {
    "corridor": corridor,
    "circular-track": circular_track,
    "random-mapping": random_mapping,
    "smoothed-mapping": smoothed_mapping,
}

PROBES = {"corridor": _corridor_probe, "circular-track": _circular_probe}
