"""Hebbian/anti-Hebbian drift (Qin et al., Nat Neurosci 2023) as a plugin: PSP similarity matching.

Registers the task ``psp``, the noise models ``online-samples`` and ``synaptic``, the learner ``gda`` (gradient
descent–ascent, which is the Hebbian/anti-Hebbian rule on the similarity-matching objective) and the
metric ``psp-rotation``. :mod:`.psp` has the model, :mod:`.theory` the rotational diffusion constant
derived from the update rule. Uses only flatland's public API.
"""
from flatland import hookimpl

from .psp import OnlineSamples, SynapticNoise, gda, psp_task, rotation_metric
from .ring import centroid_metric, nsm_ring_task, similarity_metric


@hookimpl
def flatland_losses(register):
    register("psp", psp_task, "linear similarity matching (PSP): inputs N(0, diag(spectrum)), y = M⁻¹Wx; "
             "options n, k, spectrum")
    register("nsm-ring", nsm_ring_task, "non-negative similarity matching on a ring (place fields): options n, k, "
             "positions, kappa, beta, spread, seed")


@hookimpl
def flatland_noise_models(register):
    register("online-samples", OnlineSamples, "one fresh input per step (online Hebbian learning; task psp)")
    register("synaptic", SynapticNoise, "psp: W ← W + σ_W ξ, M ← M + σ_M ζ after each step (options sigma_w, sigma_m)")


@hookimpl
def flatland_learners(register):
    register("gda", gda, "gradient descent–ascent (ascent on leaves named by option ascent, rate lr/τ): "
             "PSP's Hebbian/anti-Hebbian rule at τ = ½")


@hookimpl
def flatland_metrics(register):
    register("psp-rotation", rotation_metric, "psp: orthogonal factor Q of the learned map's top-k block (k × k)")
    register("ring-centroids", centroid_metric, "nsm-ring: circular centroid of each cell's field (radians)")
    register("ring-similarity", similarity_metric, "nsm-ring: the population similarity matrix YᵀY over positions")


@hookimpl
def flatland_checks(register):
    from .checks import flatland_checks as register_checks

    register_checks(register)
