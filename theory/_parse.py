"""Safe parsing of user expressions into SymPy, without ever evaluating Python.

A loss such as ``0.5*(1 + x**2)**2*y**2`` is checked character by character,
parsed with ``ast.parse(mode="eval")`` (which only builds a tree, it runs
nothing) and walked against a whitelist grammar: numbers, variable names
``[a-z][a-z0-9]*``, ``+ - * / **``, parentheses and the functions exp, log,
sqrt, sin, cos, tanh, Abs, Max and relu (= Max(0, ·)). The SymPy expression is
built here node by node; ``sympify``/``eval`` never see the string. Every
refusal is a :class:`flatland.errors.UserError` of one line naming the
offending token. Literals become exact rationals, so worked examples stay exact.
"""
from __future__ import annotations

import ast
import math
import re
import warnings

import sympy as sp

from flatland.errors import UserError

MAX_LENGTH = 500
MAX_DEPTH = 40
#: largest |exponent| of a power whose base and exponent are both numbers
MAX_LITERAL_EXPONENT = 100
#: largest |log10| of a number a literal power may produce
MAX_LOG10 = 300
MAX_BITS = 1000
#: most function applications nested inside one another: the later symbolic stages (three derivatives,
#: the projection) grow steeply with the nesting — measured for the valley tanh∘…∘tanh(x·y), squared:
#: 2.5 s at 4 levels, 7 s at 8, 52 s at 10, over the 60 s budget at 12
MAX_FUNCTION_NESTING = 8
#: most arguments of Max (SymPy's Max simplification grows fast with the count: 32 take ~4 s)
MAX_MAX_ARGS = 16
#: largest |argument| of exp of a number (e^690 ≈ 1e300 still fits a float64)
MAX_EXP_ARG = 690
_LITERAL = re.compile(r"(\d*)\.?(\d*)(?:[eE]([+-]?\d+))?\Z")

_ALLOWED_CHARS = re.compile(r"[A-Za-z0-9_ .+\-*/(),\t]")
_VARIABLE = re.compile(r"[a-z][a-z0-9]*\Z")
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\S")


def _relu(z):
    return sp.Max(sp.Integer(0), z)


#: the whitelisted functions: name -> (builder, allowed argument counts)
FUNCTIONS = {
    "exp": (sp.exp, (1,)),
    "log": (sp.log, (1,)),
    "sqrt": (sp.sqrt, (1,)),
    "sin": (sp.sin, (1,)),
    "cos": (sp.cos, (1,)),
    "tanh": (sp.tanh, (1,)),
    "Abs": (sp.Abs, (1,)),
    "Max": (sp.Max, None),  # two or more
    "relu": (_relu, (1,)),
}


def symbol(name: str) -> sp.Symbol:
    """The SymPy symbol flatland uses for variable ``name`` (declared real)."""
    return sp.Symbol(name, real=True)


def _fail(text: str, what: str) -> UserError:
    shown = text if len(text) <= 60 else text[:57] + "..."
    return UserError(f"cannot parse expression {shown!r}: {what}")


def _segment(text: str, node: ast.AST) -> str:
    seg = ast.get_source_segment(text, node)
    return seg if seg else type(node).__name__


def _check_characters(text: str) -> None:
    for tok in _TOKEN.findall(text):
        if "_" in tok:
            raise _fail(text, f"underscores are not allowed (token {tok!r})")
        if len(tok) == 1 and not _ALLOWED_CHARS.fullmatch(tok):
            raise _fail(text, f"character {tok!r} is not allowed (allowed: numbers, names, + - * / ** ( ) ,)")
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth > MAX_DEPTH:
            raise _fail(text, f"parentheses nested deeper than {MAX_DEPTH} levels (the '(' at column {i + 1})")


def _number(text: str, node: ast.Constant) -> sp.Rational:
    value = node.value
    if type(value) not in (int, float):
        raise _fail(text, f"only real number literals are allowed, not {_segment(text, node)!r}")
    literal = _segment(text, node)
    mag = _literal_log10(literal)
    if mag is not None and abs(mag) > MAX_LOG10:
        raise _fail(text, f"number {literal[:30]!r} is too {'large' if mag > 0 else 'small'} "
                          f"(|log10| ≤ {MAX_LOG10})")
    try:
        return sp.Rational(literal)
    except (TypeError, ValueError):
        raise _fail(text, f"bad number {literal!r}") from None


def _literal_log10(literal: str):
    """log10 of a decimal literal's size read from its digits and exponent, without building the number
    (``1e99999999`` would take minutes as an exact integer); None for zero or an unusual form."""
    m = _LITERAL.match(literal)
    if not m:
        return None
    whole, frac, exp = m.group(1), m.group(2), int(m.group(3) or 0)
    if whole.lstrip("0"):
        return exp + len(whole.lstrip("0")) - 1
    if frac.strip("0"):
        return exp - (len(frac) - len(frac.lstrip("0")) + 1)
    return None


def _log10_abs(x: sp.Expr) -> float:
    """log10 |x| of a number expression, evaluated in floating point with an unbounded exponent."""
    import mpmath

    try:
        v = abs(mpmath.mpf(sp.N(x, 15)))
    except (TypeError, ValueError):
        return math.inf
    return -math.inf if v == 0 else float(mpmath.log10(v))


def _power(text: str, node: ast.AST, base: sp.Expr, expo: sp.Expr) -> sp.Expr:
    """``base**expo``, refusing literal powers that would blow up."""
    if expo.is_Number:
        if abs(float(expo)) > MAX_LITERAL_EXPONENT:
            raise _fail(text, f"exponent in {_segment(text, node)!r} is too large (|exponent| ≤ {MAX_LITERAL_EXPONENT})")
        if base.is_zero and expo.is_negative:
            raise _fail(text, f"division by zero in {_segment(text, node)!r}")
        if base.is_number and not base.is_zero and abs(_log10_abs(base) * float(expo)) > MAX_LOG10:
            raise _fail(text, f"number {_segment(text, node)!r} is too large")
    return sp.Pow(base, expo)


class _Builder:
    """Walks a parsed tree against the whitelist and builds the SymPy expression."""

    def __init__(self, text: str, variables):
        self.text = text
        self.variables = None if variables is None else set(variables)
        self.names: set[str] = set()
        self.calls = 0          # function applications open around the node being built

    def build(self, node: ast.AST, depth: int = 0) -> sp.Expr:
        if depth > MAX_DEPTH:
            raise _fail(self.text, f"nesting deeper than {MAX_DEPTH} levels near {_segment(self.text, node)[:30]!r}")
        text = self.text
        if isinstance(node, ast.Constant):
            return _number(text, node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            inner = self.build(node.operand, depth + 1)
            return -inner if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)):
            left = self.build(node.left, depth + 1)
            right = self.build(node.right, depth + 1)
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if isinstance(node.op, ast.Mult):
                return left * right
            if isinstance(node.op, ast.Div):
                if right.is_zero:
                    raise _fail(text, f"division by zero in {_segment(text, node)!r}")
                return left / right
            return _power(text, node, left, right)
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        if isinstance(node, ast.Attribute):
            raise _fail(text, f"attribute access {_segment(text, node)!r} is not allowed")
        if isinstance(node, ast.BinOp):
            raise _fail(text, f"operator in {_segment(text, node)!r} is not allowed (allowed: + - * / **)")
        raise _fail(text, f"{_segment(text, node)[:40]!r} is not allowed ({type(node).__name__.lower()})")

    def _name(self, node: ast.Name) -> sp.Symbol:
        name = node.id
        if name in FUNCTIONS:
            raise _fail(self.text, f"function {name!r} used without arguments")
        if not _VARIABLE.match(name):
            raise _fail(self.text, f"name {name!r} is not a variable (variables are lowercase letters and digits, starting with a letter)")
        if self.variables is not None and name not in self.variables:
            known = ", ".join(sorted(self.variables)) or "none"
            raise _fail(self.text, f"unknown variable {name!r} (variables: {known})")
        self.names.add(name)
        return symbol(name)

    def _call(self, node: ast.Call, depth: int) -> sp.Expr:
        text = self.text
        if not isinstance(node.func, ast.Name):
            raise _fail(text, f"call of {_segment(text, node.func)!r} is not allowed")
        name = node.func.id
        if name not in FUNCTIONS:
            raise _fail(text, f"unknown function {name!r} (allowed: {', '.join(FUNCTIONS)})")
        if node.keywords:
            raise _fail(text, f"keyword arguments are not allowed in {name!r}")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise _fail(text, f"starred arguments are not allowed in {name!r}")
        fn, counts = FUNCTIONS[name]
        n = len(node.args)
        if (counts is None and not 2 <= n <= MAX_MAX_ARGS) or (counts is not None and n not in counts):
            want = f"2 to {MAX_MAX_ARGS} arguments" if counts is None else f"{counts[0]} argument"
            raise _fail(text, f"{name!r} takes {want}, got {n}")
        self.calls += 1
        if self.calls > MAX_FUNCTION_NESTING:
            raise _fail(text, f"functions nested more than {MAX_FUNCTION_NESTING} deep near "
                              f"{_segment(text, node)[:30]!r} (the symbolic derivatives of deeper nests take "
                              "minutes; introduce fewer layers)")
        try:
            args = [self.build(a, depth + 1) for a in node.args]
        finally:
            self.calls -= 1
        for a in args:
            if a.is_number and a.is_extended_real is False:
                raise _fail(text, f"{_segment(text, node)[:40]!r} has a non-real argument ({a})")
        if name == "exp" and args[0].is_number and _log10_abs(args[0]) > math.log10(MAX_EXP_ARG):
            raise _fail(text, f"exp of a number beyond ±{MAX_EXP_ARG} in {_segment(text, node)[:40]!r} "
                              "is outside floating-point range")
        return fn(*args)


def parse_expr(text: str, variables=None) -> sp.Expr:
    """Parse ``text`` in flatland's safe grammar into a SymPy expression.

    ``variables`` (names) restricts the allowed variable names; otherwise any
    name matching ``[a-z][a-z0-9]*`` is a real symbol. Raises UserError with
    one line naming the offending token for anything outside the grammar.
    """
    if not isinstance(text, str):
        raise UserError(f"expression must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise _fail(text, f"longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise UserError("empty expression")
    _check_characters(text)
    try:
        with warnings.catch_warnings():  # "invalid decimal literal" and the like: the error below says it
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        near = f" near column {exc.offset}" if exc.offset else ""
        raise _fail(text, f"syntax error{near} ({exc.msg})") from None
    except (RecursionError, MemoryError, ValueError):
        raise _fail(text, "too deeply nested") from None
    builder = _Builder(text.strip(), variables)
    try:
        expr = builder.build(tree.body)
    except RecursionError:
        raise _fail(text, "too deeply nested") from None
    if expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise _fail(text, "the expression is not finite (division by zero or log(0)?)")
    if expr.has(sp.I) or any(a.is_number and a.is_extended_real is False for a in sp.preorder_traversal(expr)):
        raise _fail(text, "the expression is not real (a root, log or power of a negative number?)")
    for atom in expr.atoms(sp.Rational):
        if max(abs(atom.p).bit_length(), atom.q.bit_length()) > MAX_BITS:
            raise _fail(text, f"a number in it needs more than {MAX_LOG10} digits (too large, or too small to write exactly)")
    return expr


def parse_list(text: str, variables=None) -> list[sp.Expr]:
    """Parse a comma-separated list of expressions (``--residuals 'r1, r2'``)."""
    if not isinstance(text, str) or not text.strip():
        raise UserError("empty list of expressions")
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [parse_expr(p, variables) for p in parts]
