"""The general rule (THEORY.md): any noise covariance C → normal fluctuations S → drift.

Written once for NumPy and JAX (``xp`` is the array module), so ``predict``
and the compiled JAX predictions share the arithmetic. The normal space is the
top-``m`` eigenspace of the curvature matrix H (Gauss–Newton 2κJᵀJ when
residuals exist), m being the rank on Γ — which keeps the rule meaningful at
points slightly off Γ as met along simulated trajectories.

1. S solves the discrete Lyapunov equation S − (I−ηH)S(I−ηH) = C_N; in H's
   eigenbasis S_ij = C_ij / (η(λ_i+λ_j) − η²λ_iλ_j); leading order drops η².
2. drift v = −(η/2) P_T [tr(S ∂_k H)]_k.
3. an observable c moves by E[Δc] = ∇c·v + ½ tr(∇²c · P_T C P_T).
"""
from __future__ import annotations


def normal_split(xp, H, m: int):
    """(λ_N, U_N, P_T): top-m eigenvalues/eigenvectors of H and the tangent projector."""
    d = H.shape[0]
    lam, U = xp.linalg.eigh(H)
    lam_n, U_n = lam[d - m:], U[:, d - m:]
    P_T = xp.eye(d) - U_n @ U_n.T
    return lam_n, U_n, P_T


def stationary_covariance(xp, lam_n, U_n, C, eta, finite_eta: bool):
    """S on the normal space (as a d×d matrix) from the discrete Lyapunov equation."""
    C_n = U_n.T @ C @ U_n
    li, lj = lam_n[:, None], lam_n[None, :]
    denom = eta * (li + lj)
    if finite_eta:
        denom = denom - eta**2 * li * lj
    return U_n @ (C_n / denom) @ U_n.T


def drift_from_s(xp, S, dH, P_T, eta):
    """v = −(η/2) P_T tr(S ∂_k H), with ``dH[k] = ∂_k H``."""
    g = xp.einsum("ij,kij->k", S, dH)
    return -(eta / 2) * (P_T @ g)


def general_drift(xp, H, dH, C, eta, m: int, finite_eta: bool = True):
    """Drift per step of the general rule at a point; returns (v, S, P_T)."""
    d = H.shape[0]
    if m == 0:
        return xp.zeros(d), xp.zeros((d, d)), xp.eye(d)
    lam_n, U_n, P_T = normal_split(xp, H, m)
    S = stationary_covariance(xp, lam_n, U_n, C, eta, finite_eta)
    return drift_from_s(xp, S, dH, P_T, eta), S, P_T


def ito_term(xp, hess_c, P_T, C):
    """½ tr(∇²c · P_T C P_T): the Itô correction of an observable's mean change."""
    return 0.5 * xp.sum(hess_c * (P_T @ C @ P_T))


def gauss_newton_derivs(xp, J, dJ, kappa):
    """(H, ∂_k H) of H = 2κJᵀJ from J (n×d) and ``dJ[k] = ∂_k J``."""
    H = 2 * kappa * (J.T @ J)
    JtdJ = xp.einsum("ri,krj->kij", J, dJ)
    return H, 2 * kappa * (JtdJ + xp.swapaxes(JtdJ, 1, 2))
