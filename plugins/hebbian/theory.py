"""Rotational diffusion of PSP under synaptic noise, derived with SymPy from the update rule itself.

Derivation (what ``pair_variance`` computes, for one pair of output directions i < j): write the mean
update of (W, S) per unit η, linearise it at the fixed point W = [Λ_k 0], S = Λ_k, and restrict it to
the three coordinates a pair couples, (W_ij, W_ji, S_ij). The linear map has one zero mode, the
infinitesimal rotation (W_ij, W_ji, S_ij) ∝ (λ_j, −λ_i, λ_j − λ_i); its left null vector ℓ is conserved
by the mean dynamics, so the rotation angle moves only by noise: per step Δφ = ℓ·ξ / ℓ·v. Its variance
with noise variances c_W on each W entry and c_S on S's off-diagonal entry is

    V_ij = [c_W (λ_i⁻² + λ_j⁻²) + c_S (λ_i − λ_j)² / (λ_i² λ_j²)] / 4   (per step).

The sampling noise of online learning does not enter at this order: at the fixed point its increments
of (W_ij, W_ji, S_ij) are all η x_i x_j, and ℓ·(1, 1, 1) = 0. Convention verified here: the mean-square
angle grows as ⟨Δφ²⟩ = D t with D = Σ_{i<j} V_ij (no factor 2). With only W noise (c_S = 0) and k = 2
this is Qin et al. (2023)'s D_φ = ησ² Σ_{i≤k} λ_i⁻² / 4 (c_W = ησ²); lateral noise adds the second term,
zero only for equal eigenvalues. With flatland's ``update`` noise on M (independent entries, variance
c_W each) the symmetric part S gets c_S = c_W / 2 off the diagonal.
"""
from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=1)
def pair_variance():
    """(expression, symbols) of V_ij derived from the linearised mean update (module doc)."""
    import sympy as sp

    li, lj, cW, cS = sp.symbols("lambda_i lambda_j c_W c_S", positive=True)
    w11, w12, w21, w22, s11, s12, s22 = sp.symbols("w11 w12 w21 w22 s11 s12 s22")
    W = sp.Matrix([[w11, w12], [w21, w22]])
    S = sp.Matrix([[s11, s12], [s12, s22]])
    C = sp.diag(li, lj)
    F = S.inv() * W
    dW = -W + F * C                       # mean of y xᵀ − W
    dS = -S + F * C * F.T                 # mean of y yᵀ − S
    coords = [w12, w21, s12]
    rhs = [dW[0, 1], dW[1, 0], dS[0, 1]]
    at = {w11: li, w22: lj, w12: 0, w21: 0, s11: li, s22: lj, s12: 0}
    J = sp.Matrix([[sp.simplify(sp.diff(r, c).subs(at)) for c in coords] for r in rhs])
    null = J.T.nullspace()
    if len(null) != 1:
        raise RuntimeError(f"expected one zero mode of the pair dynamics, found {len(null)}")
    ell = null[0]
    v = sp.Matrix([lj, -li, lj - li])     # d/dφ of (W_12, W_21, S_12) under W → RW, S → R S Rᵀ
    if sp.simplify(J * v) != sp.zeros(3, 1):
        raise RuntimeError("the rotation is not a zero mode: derivation inconsistent")
    norm = sp.simplify((ell.T * v)[0])
    var = sp.factor(sp.simplify((cW * (ell[0] ** 2 + ell[1] ** 2) + cS * ell[2] ** 2) / norm ** 2))
    return var, (li, lj, cW, cS)


def diffusion_constant(spectrum, k: int, c_w: float, c_s: float) -> float:
    """D = Σ_{i<j≤k} V_ij: the per-step growth of the squared rotation angle (module doc)."""
    import sympy as sp

    expr, syms = pair_variance()
    f = sp.lambdify(syms, expr, "numpy")
    lam = np.asarray(spectrum, float)[:k]
    return float(sum(f(lam[i], lam[j], c_w, c_s) for i in range(k) for j in range(i + 1, k)))


def synaptic_constant(spectrum, k: int, sigma_w: float, sigma_m: float) -> float:
    """D for independent per-step noise of s.d. σ_W on W's and σ_M on M's entries (S gets c_S = σ_M²/2)."""
    return diffusion_constant(spectrum, k, sigma_w ** 2, sigma_m ** 2 / 2)


def flatland_noise_constant(spectrum, k: int, eta: float, sigma: float) -> float:
    """D for flatland's PSP: update noise of s.d. √η σ on every W and M entry (c_W = ησ², c_S = ησ²/2)."""
    return synaptic_constant(spectrum, k, np.sqrt(eta) * sigma, np.sqrt(eta) * sigma)
