"""A theory problem: variables, the loss and, where it is a sum of squares, its residuals.

``Problem`` is the symbolic input to everything in ``flatland.theory``. It is
immutable and hashable by its content (expressions, kappa, variables), so
derivations and compiled functions are cached per problem. Label noise needs
residuals r_i with L = κ Σ r_i²; when only a loss is given they are read off a
loss written as a constant times a sum of squares (``(x*y)**2`` → κ = 1,
r = x*y), and are ``None`` otherwise.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Optional, Sequence

import sympy as sp

from flatland.errors import UserError

from ._parse import parse_expr, symbol


def _exact(value) -> sp.Rational:
    """A float/str/int as an exact rational (0.5 -> 1/2, via its decimal text)."""
    if isinstance(value, sp.Basic):
        return sp.Rational(value)
    return sp.Rational(repr(value) if isinstance(value, float) else str(value))


def _as_square_term(term: sp.Expr):
    """``term`` as (c, r) with term = c r², c > 0 a number, or None."""
    coeff, rest = term.as_coeff_Mul()
    if not coeff.is_positive or rest == 1:
        return None
    root = sp.Integer(1)
    for factor in sp.Mul.make_args(rest):
        base, expo = factor.as_base_exp()
        if not (expo.is_Integer and expo.is_positive and expo % 2 == 0):
            return None
        root *= base ** (expo // 2)
    return coeff, root


def _squares(expr: sp.Expr):
    terms = [_as_square_term(t) for t in sp.Add.make_args(expr)]
    if not terms or any(t is None for t in terms):
        return None
    kappa = terms[0][0]
    residuals = []
    for c, r in terms:
        scale = sp.sqrt(c / kappa)
        residuals.append(r if scale == 1 else scale * r)
    return kappa, tuple(residuals)


#: factoring writes exp(c·x) as exp(x/q)**p for c = p/q and x**(p/q) as a degree-p polynomial in x**(1/q),
#: so a huge p or q (``exp(x*1e300)``) would build a dense polynomial of that degree: beyond this bound the
#: factored and expanded forms are not tried (the expression as written still is)
MAX_FACTOR_DEGREE = 1000


def _small_degrees(expr: sp.Expr) -> bool:
    """Whether every rational exponent and exp-argument coefficient of ``expr`` is within MAX_FACTOR_DEGREE."""
    numbers = [p.exp for p in expr.atoms(sp.Pow) if p.exp.is_Rational]
    for e in expr.atoms(sp.exp):
        numbers += [c for c in sp.Add.make_args(e.args[0]) for c in [c.as_coeff_Mul()[0]] if c.is_Rational]
    return all(max(abs(n.p), n.q) <= MAX_FACTOR_DEGREE for n in numbers)


def residuals_from_loss(expr: sp.Expr):
    """Read ``expr`` as κ Σ r_i²: returns (κ, residuals) or None.

    Tries the expression as written, then factored, then expanded; κ is the
    numeric factor of the first square term, other terms' factors go into
    their residuals as square roots.
    """
    forms = (lambda e: e, sp.factor, sp.expand) if _small_degrees(expr) else (lambda e: e,)
    for form in forms:
        try:
            found = _squares(form(expr))
        except (sp.PolynomialError, TypeError, ValueError):
            found = None
        if found is not None:
            return found
    return None


def _variables(exprs, variables) -> tuple[str, ...]:
    names = set()
    for e in exprs:
        names |= {s.name for s in e.free_symbols}
    if variables is None:
        if not names:
            raise UserError("the expression has no variables")
        return tuple(sorted(names))
    variables = tuple(variables)
    dup = sorted({v for v in variables if variables.count(v) > 1})
    if dup:
        raise UserError(f"variable {dup[0]!r} listed twice")
    return variables


def _split_vars(variables):
    if variables is None:
        return None
    if isinstance(variables, str):
        variables = [v.strip() for v in variables.split(",") if v.strip()]
    for v in variables:
        parse_expr(v)  # validates the name
    return tuple(variables)


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """A loss over named real variables, with residuals when it is κ Σ r².

    ``point`` optionally holds a point on (or near) Γ, e.g. a built-in
    valley's; ``name`` the registered loss name, when there is one.
    """

    variables: tuple[str, ...]
    loss_expr: sp.Expr
    residual_exprs: Optional[tuple[sp.Expr, ...]] = None
    kappa: Optional[sp.Rational] = None
    point: Optional[tuple[float, ...]] = None
    name: Optional[str] = None

    @property
    def symbols(self) -> tuple[sp.Symbol, ...]:
        return tuple(symbol(v) for v in self.variables)

    @property
    def dim(self) -> int:
        return len(self.variables)

    @property
    def has_residuals(self) -> bool:
        return self.residual_exprs is not None

    def __post_init__(self):
        self._as_flatland_symbols()
        res = None if self.residual_exprs is None else tuple(sp.srepr(r) for r in self.residual_exprs)
        key = (tuple(self.variables), sp.srepr(self.loss_expr), res, str(self.kappa))
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_hash", hash(key))

    def _as_flatland_symbols(self):
        """Expressions built with the user's own symbols (``sympy.symbols("x y")``, not declared real) get
        flatland's real symbols of the same names: the derivation tells a plain x from its real x, and such a
        problem had zero drift and a misleading "H vanishes" error. A free symbol that is not one of the
        variables is an error naming it."""
        exprs = [self.loss_expr, *(self.residual_exprs or ())]
        free = set().union(*(e.free_symbols for e in exprs))
        stray = sorted(str(x) for x in free if x.name not in self.variables)
        if stray:
            raise UserError(f"the expression has symbol(s) {', '.join(stray)} that are not among the variables "
                            f"{', '.join(self.variables)}: list them in the variables, or substitute numbers")
        swap = {x: symbol(x.name) for x in free if x != symbol(x.name)}
        if swap:
            object.__setattr__(self, "loss_expr", self.loss_expr.xreplace(swap))
            if self.residual_exprs is not None:
                object.__setattr__(self, "residual_exprs", tuple(r.xreplace(swap) for r in self.residual_exprs))

    @property
    def key(self) -> tuple:
        """What identifies the problem: variables, expressions (srepr) and kappa."""
        return self._key

    def __hash__(self):
        return self._hash

    def __eq__(self, other):
        return isinstance(other, Problem) and self.key == other.key

    def __repr__(self):
        name = f" {self.name}" if self.name else ""
        return f"<Problem{name} L={self.loss_expr} vars={','.join(self.variables)}>"

    @classmethod
    def from_expr(cls, expr_text: str, variables=None, *, point=None, name=None) -> "Problem":
        """A loss given as text; residuals are read off when it is c·Σ squares."""
        variables = _split_vars(variables)
        expr = parse_expr(expr_text, variables)
        found = residuals_from_loss(expr)
        kappa, residuals = found if found is not None else (None, None)
        return cls(_variables([expr], variables), expr, residuals, kappa, _point(point), name)

    @classmethod
    def from_residuals(cls, residual_texts, kappa=0.5, variables=None, *, point=None, name=None) -> "Problem":
        """L = κ Σ r_i² from residual texts (a list, or one comma-separated string)."""
        from ._parse import parse_list

        variables = _split_vars(variables)
        if isinstance(residual_texts, str):
            residuals = parse_list(residual_texts, variables)
        else:
            residuals = [parse_expr(t, variables) for t in residual_texts]
        if not residuals:
            raise UserError("no residuals given")
        try:
            kappa = _exact(kappa)
        except (TypeError, ValueError):
            raise UserError(f"kappa must be a number, got {kappa!r}") from None
        if not kappa.is_positive:
            raise UserError(f"kappa must be positive, got {kappa}")
        loss = kappa * sp.Add(*[r**2 for r in residuals])
        return cls(_variables(residuals, variables), loss, tuple(residuals), kappa, _point(point), name)

    @classmethod
    def from_loss(cls, loss) -> "Problem":
        """From a ``flatland.Loss`` with ``residual_exprs`` (and kappa) or ``expr``."""
        variables = tuple(loss.variables) or None
        point = getattr(loss, "point", None)
        if getattr(loss, "residual_exprs", None):
            return cls.from_residuals(list(loss.residual_exprs), kappa=loss.kappa, variables=variables,
                                      point=point, name=loss.name)
        if getattr(loss, "expr", None):
            return cls.from_expr(loss.expr, variables, point=point, name=loss.name)
        raise UserError(f"loss {loss.name!r} has no expression (expr or residual_exprs) for the theory")

    def require_residuals(self, why: str) -> None:
        """Raise the UserError that tells to pass ``--residuals``."""
        if not self.has_residuals:
            raise UserError(
                f"{why} needs residuals, but the loss {self.loss_expr} is not written as a constant times "
                "a sum of squares: pass --residuals 'r1, r2, ...' (with --kappa)")


def _point(point) -> Optional[tuple[float, ...]]:
    return None if point is None else tuple(float(p) for p in point)


#: a point coordinate: an ASCII decimal number (no underscores, no other scripts' digits, no inf/nan)
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
#: largest |coordinate|: beyond it second derivatives of even a quartic valley overflow float64
MAX_COORDINATE = 1e100


def parse_point(text_or_map, variables: Sequence[str]) -> tuple[float, ...]:
    """``x=1,y=0`` (or a dict, or a sequence) as floats in the order of ``variables``."""
    import math

    if isinstance(text_or_map, str):
        values = {}
        for part in [p.strip() for p in text_or_map.split(",") if p.strip()]:
            name, eq, val = part.partition("=")
            name = name.strip()
            if not eq or not name:
                raise UserError(f"bad point {text_or_map!r}: write NAME=VALUE pairs separated by commas, e.g. x=1,y=0")
            if name in values:
                raise UserError(f"bad point {text_or_map!r}: {name!r} given twice")
            if not _DECIMAL.fullmatch(val.strip()):
                raise UserError(f"bad point {text_or_map!r}: {val.strip()!r} is not a number (write e.g. 1, -0.5, 2e-3)")
            values[name] = float(val)
        text_or_map = values
    if isinstance(text_or_map, dict):
        unknown = sorted(set(text_or_map) - set(variables))
        if unknown:
            raise UserError(f"variable {unknown[0]!r} in the point is not in the expression (variables: {', '.join(variables)})")
        missing = [v for v in variables if v not in text_or_map]
        if missing:
            raise UserError(f"the point gives no value for {', '.join(missing)} (variables: {', '.join(variables)})")
        values = [float(text_or_map[v]) for v in variables]
    else:
        values = [float(v) for v in text_or_map]
        if len(values) != len(variables):
            raise UserError(f"the point has {len(values)} coordinates but there are {len(variables)} variables ({', '.join(variables)})")
    if not all(math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in values):
        raise UserError(f"the point's coordinates must be finite numbers of size at most {MAX_COORDINATE:g}")
    return tuple(values)
