"""flatland: a plugin testbed for implicit regularization and drift near zero-loss manifolds.

The engine: component contracts, the plugin registry and its assembly, step
composition. ``flatland.theory`` holds the symbolic side, ``flatland_plugins``
the built-in components, ``flatland.testing`` the conformance kit.
"""
from .xla_flags import request_deterministic_gpu as _request_deterministic_gpu
from .xla_flags import request_wide_cpu_vectors as _request_wide_cpu_vectors

# Before JAX starts its backend: bit-for-bit runs on GPUs too, and 512-bit vectors on AMD CPUs with AVX-512
# (flatland/xla_flags.py says why).
_request_deterministic_gpu()
_request_wide_cpu_vectors()

from pathlib import Path as _Path  # noqa: E402

from .source_tree import map_checkout as _map_checkout  # noqa: E402

# Imported from a checkout that no install maps: flatland.theory and flatland_plugins are its own folders.
_map_checkout(_Path(__file__).parent, {f"{__name__}.theory": "theory", "flatland_plugins": "plugins"})

import jax as _jax  # noqa: E402

# float64 is the default: drift constants and Hessian eigenvalues near zero need it.
_jax.config.update("jax_enable_x64", True)

from .assembly import Assembly, BrokenPlugin, PluginInfo, assemble  # noqa: E402
from .contracts import (  # noqa: E402
    KINDS, Check, CheckContext, CheckResult, CovarianceContext, Learner, LearnerTheory, Loss, Metric, NoiseModel, Oracle,
    StepMoments,
)
from .errors import PluginError, UserError  # noqa: E402
from .hookspecs import hookimpl  # noqa: E402
from .stepping import as_hyper, make_oracle, make_step, optax_learner  # noqa: E402
from .simulate import ensemble, make_runner  # noqa: E402
from .drift import DriftRun, measure_drift  # noqa: E402
from .estimators import mean_se, missing_moments, ratio_along, step_moments  # noqa: E402
from .laws import step_law  # noqa: E402
from .composition import ComposedNoise, compose_noise  # noqa: E402
from .lab import Lab, Measured  # noqa: E402
from .verdicts import decisive, drift_ratio, failed, scalar, vector_verdict  # noqa: E402
from .extensions import RunContext, RunExtension, Snapshot  # noqa: E402
from .run_files import read_csv  # noqa: E402
from .normal_draws import PHILOX, normal_from_words, philox_words, standard_normal  # noqa: E402
from .sweep_stats import (  # noqa: E402
    SweepClaim, SweepSection, claim as sweep_claim, fraction as sweep_fraction, median as sweep_median, median_ci,
    paper_verdict, pearson_ci, wilson,
)

__all__ = [
    "Assembly", "BrokenPlugin", "PluginInfo", "assemble", "KINDS", "Check", "CheckContext", "CheckResult",
    "CovarianceContext", "Learner", "LearnerTheory", "StepMoments", "Loss", "Metric", "NoiseModel", "Oracle", "PluginError",
    "UserError", "hookimpl", "as_hyper", "make_oracle", "make_step", "optax_learner",
    # simulating and measuring (for checks): the compiled loop, drift ensembles, estimators, verdicts
    "ensemble", "make_runner", "DriftRun", "measure_drift", "mean_se", "missing_moments", "ratio_along",
    "step_moments", "step_law", "ComposedNoise", "compose_noise", "Lab", "Measured", "decisive", "drift_ratio", "failed", "scalar",
    "vector_verdict",
    # noise draws: Philox words and a normal per 32-bit word (same law, cheaper than jax.random.normal)
    "PHILOX", "normal_from_words", "philox_words", "standard_normal",
    # long runs: run extensions (snapshots, reports, figures of a task family) and their files
    "RunContext", "RunExtension", "Snapshot", "read_csv",
    # sweeps: claims about a results table, with intervals and the paper-comparison verdict
    "SweepClaim", "SweepSection", "sweep_claim", "sweep_fraction", "sweep_median", "median_ci", "paper_verdict",
    "pearson_ci", "wilson",
]
