"""The general rule (Blanc et al. 2020; Damian et al. 2021; Li, Wang & Arora 2022): any noise covariance C → normal fluctuations S → drift.

Written once for NumPy and JAX (``xp`` is the array module), so ``predict``
and the compiled JAX predictions share the arithmetic. The normal space is the
top-``m`` eigenspace of the curvature matrix H (Gauss–Newton 2κJᵀJ when
residuals exist), m being the rank on Γ — which keeps the rule meaningful at
points slightly off Γ as met along simulated trajectories.

1. S solves the discrete Lyapunov equation S − (I−ηH)S(I−ηH) = C_N; in H's
   eigenbasis S_ij = C_ij / (η(λ_i+λ_j) − η²λ_iλ_j); leading order drops η².
   A learner whose step noise grows with the gradient (a covariance K(g),
   quadratic in g = ∇L ≈ Hδ off Γ; SED's probe −μπ(π·g) gives η²(ggᵀ + |g|²I))
   adds E_δ K(Hδ) = 𝒦(HSH) to the right-hand side at finite η, a term linear in S:
   the equation is then solved as a linear system on the normal block.
2. drift v = −(η/2) P_T [tr(S ∂_k H)]_k, plus, where C couples tangent and
   normal directions (C_TN = P_T C P_N ≠ 0, e.g. multiplicative noise; zero for
   C = aI + bH), the tangent motion of the projected point Φ from that coupling:
   ½ ∂²Φ[C_TN + C_NT] = −½ P_T ∇³L[H⁺M + MH⁺], M = C_TN + C_NT.
3. on a curved Γ the projected point also moves along the normal:
   n_curv = ½ ∂²Φ[P_T C P_T] = −½ H⁺ ∇³L[P_T C P_T]; an observable c of Φ(θ)
   moves by E[Δc] = ∇c·(v + n_curv) + ½ tr(∇²c · P_T C P_T).
(∂²Φ of the gradient-flow projection: Li, Wang & Arora 2022, Lemma 4.3.)
"""
from __future__ import annotations


def normal_split(xp, H, m: int):
    """(λ_N, U_N, P_T): top-m eigenvalues/eigenvectors of H and the tangent projector."""
    d = H.shape[0]
    lam, U = xp.linalg.eigh(H)
    lam_n, U_n = lam[d - m:], U[:, d - m:]
    P_T = xp.eye(d) - U_n @ U_n.T
    return lam_n, U_n, P_T


def stationary_covariance(xp, lam_n, U_n, C, eta, finite_eta: bool, gradient_cov=None):
    """S on the normal space (as a d×d matrix) from the discrete Lyapunov equation.

    With ``gradient_cov`` (g -> K(g), see the module docstring) and ``finite_eta``
    the gradient-driven noise enters too (``with_gradient_noise``).
    """
    if gradient_cov is not None and finite_eta:
        return with_gradient_noise(xp, lam_n, U_n, C, eta, gradient_cov)[0]
    C_n = U_n.T @ C @ U_n
    li, lj = lam_n[:, None], lam_n[None, :]
    denom = eta * (li + lj)
    if finite_eta:
        denom = denom - eta**2 * li * lj
    return U_n @ (C_n / denom) @ U_n.T


def with_gradient_noise(xp, lam_n, U_n, C, eta, gradient_cov):
    """(S, E_δ K(Hδ)) at finite η when the step's covariance also holds K(g), g = Hδ, δ ~ N(0, S).

    K is quadratic, so E K(g) for g ~ N(0, G) is Σ_k μ_k K(u_k) over G's eigenpairs, and for
    G = λ_aλ_b (u_a u_bᵀ + u_b u_aᵀ) it is λ_aλ_b/2 [K(u_a + u_b) − K(u_a − u_b)]. On the normal
    block (unknowns S_ab, a ≤ b) the equation
    η(ΛS + SΛ) − η²ΛSΛ − U_Nᵀ 𝒦(U_N ΛSΛ U_Nᵀ) U_N = U_Nᵀ C U_N is linear: solve it directly.
    """
    m = lam_n.shape[0]
    pairs = [(a, b) for a in range(m) for b in range(a, m)]
    index = {p: i for i, p in enumerate(pairs)}
    C_n = U_n.T @ C @ U_n
    images, columns = [], []
    for a, b in pairs:
        u, w = U_n[:, a], U_n[:, b]
        if a == b:
            K = lam_n[a] ** 2 * gradient_cov(u)
        else:
            K = lam_n[a] * lam_n[b] / 2 * (gradient_cov(u + w) - gradient_cov(u - w))
        images.append(K)
        K_n = U_n.T @ K @ U_n
        lyap = eta * (lam_n[a] + lam_n[b]) - eta**2 * lam_n[a] * lam_n[b]
        columns.append(xp.stack([(lyap if (i, j) == (a, b) else 0.0) - K_n[i, j] for i, j in pairs]))
    A = xp.stack(columns, axis=1)
    c = xp.linalg.solve(A, xp.stack([C_n[i, j] for i, j in pairs]))
    S_n = xp.stack([xp.stack([c[index[(min(i, j), max(i, j))]] for j in range(m)]) for i in range(m)])
    EK = sum(c[k] * images[k] for k in range(len(pairs)))
    return U_n @ S_n @ U_n.T, EK


def drift_from_s(xp, S, dH, P_T, eta):
    """v = −(η/2) P_T tr(S ∂_k H), with ``dH[k] = ∂_k H``."""
    g = xp.einsum("ij,kij->k", S, dH)
    return -(eta / 2) * (P_T @ g)


def projection_terms(xp, dH, C, lam_n, U_n, P_T):
    """(mixed, n_curv) of rule 2–3: tangent drift from C's tangent–normal coupling, normal motion of Φ.

    ``dH[k] = ∂_k ∇²L`` must be the full third derivative (not the Gauss–Newton one's) here.
    """
    d = P_T.shape[0]
    H_pinv = U_n @ (U_n / lam_n[None, :]).T
    P_N = xp.eye(d) - P_T
    C_TT = P_T @ C @ P_T
    M = P_T @ C @ P_N
    M = M + M.T
    n_curv = -0.5 * (H_pinv @ xp.einsum("kij,ij->k", dH, C_TT))
    mixed = -0.5 * (P_T @ xp.einsum("kij,ij->k", dH, H_pinv @ M + M @ H_pinv))
    return mixed, n_curv


def general_drift(xp, H, dH, C, eta, m: int, finite_eta: bool = True, gradient_cov=None):
    """Drift per step of the general rule at a point (rules 1–2 along Γ); returns (v, S, P_T)."""
    d = H.shape[0]
    if m == 0:
        return xp.zeros(d), xp.zeros((d, d)), xp.eye(d)
    lam_n, U_n, P_T = normal_split(xp, H, m)
    S = stationary_covariance(xp, lam_n, U_n, C, eta, finite_eta, gradient_cov)
    return drift_from_s(xp, S, dH, P_T, eta), S, P_T


def ito_term(xp, hess_c, P_T, C):
    """½ tr(∇²c · P_T C P_T): the Itô correction of an observable's mean change."""
    return 0.5 * xp.sum(hess_c * (P_T @ C @ P_T))


def gauss_newton_derivs(xp, J, dJ, kappa):
    """(H, ∇³L) on Γ from J (n×d) and ``dJ[k] = ∂_k J``: H = 2κJᵀJ and the full third derivative.

    ∂_k∇²L = 2κ Σ_r (∂_k J_ri J_rj + J_ri ∂_k J_rj + J_rk ∂_i∂_j r_r) + O(r): the last term is
    not in ∂_k(2κJᵀJ); it points along the normal in k (so the drift v does not see it) but
    bends Φ on a curved Γ (n_curv and the tangent–normal term need it).
    """
    H = 2 * kappa * (J.T @ J)
    JtdJ = xp.einsum("ri,krj->kij", J, dJ)
    return H, 2 * kappa * (JtdJ + xp.swapaxes(JtdJ, 1, 2) + xp.einsum("rk,irj->kij", J, dJ))
