"""flatland.geometry: the geometry of representational drift (Aitken et al. 2022).

A plain function API on arrays of responses, shaped (sessions, stimulus
groups, repeats, neurons), from a simulation or a recording:

* per group: :func:`group_pca` (oriented PCs, variance ratios, participation
  ratio D, variational space ⌈D⌉);
* between sessions: :func:`drift_vector`, :func:`gamma` (with
  :func:`gamma_chance`), :func:`overlap` Γ (with :func:`overlap_chance`),
  :func:`pc_resolved` and :func:`linear_fit`, :func:`angle_deg`;
* classifiers: :func:`session_separability`, :func:`pair_classifier`,
  :func:`relative_cross_accuracy`;
* everything at once, with resampling controls (Δt = 0): :func:`measure`;
* the simulated study behind the drift-geometry checks: :func:`run_study`
  (protocols ``QUICK``/``DEFAULT``, noise types ``NOISE_TYPES``).
"""
from ._classify import LinearClassifier, PairClassifier, pair_classifier, relative_cross_accuracy, session_separability
from ._drift import (
    LinearFit, PCResolved, angle_deg, drift_vector, gamma, gamma_chance, linear_fit, overlap,
    overlap_chance, pc_resolved, relative_drift,
)
from ._pca import GroupPCA, group_pca, participation_ratio, variance_along
from .analysis import Measurement, measure, split_half, validate_responses
from .experiment import DEFAULT
from .figures import CAPTIONS as FIGURE_CAPTIONS, plot_pc_resolved, plot_vs_dt, write_figures
from .study import NOISE_TYPES, QUICK, run_study

__all__ = [
    "GroupPCA", "group_pca", "participation_ratio", "variance_along", "drift_vector", "gamma",
    "gamma_chance", "overlap", "overlap_chance", "pc_resolved", "PCResolved", "linear_fit", "LinearFit",
    "angle_deg", "relative_drift", "LinearClassifier", "PairClassifier", "pair_classifier", "relative_cross_accuracy",
    "session_separability", "Measurement", "measure", "split_half", "validate_responses",
    "DEFAULT", "NOISE_TYPES", "QUICK", "run_study", "FIGURE_CAPTIONS", "plot_pc_resolved", "plot_vs_dt",
    "write_figures",
]
