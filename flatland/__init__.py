"""flatland: a plugin testbed for implicit regularization and drift near zero-loss manifolds.

The engine: component contracts, the plugin registry and its assembly, step
composition. ``flatland.theory`` holds the symbolic side, ``flatland_plugins``
the built-in components, ``flatland.testing`` the conformance kit.
"""
import jax as _jax

# float64 is the default: drift constants and Hessian eigenvalues near zero need it.
_jax.config.update("jax_enable_x64", True)

from .assembly import Assembly, BrokenPlugin, PluginInfo, assemble  # noqa: E402
from .contracts import (  # noqa: E402
    KINDS, Check, CheckResult, CovarianceContext, Learner, Loss, Metric, NoiseModel, Oracle,
)
from .errors import PluginError, UserError  # noqa: E402
from .hookspecs import hookimpl  # noqa: E402
from .stepping import as_hyper, make_oracle, make_step, optax_learner  # noqa: E402
from .simulate import ensemble, make_runner  # noqa: E402
from .extensions import RunContext, RunExtension, Snapshot  # noqa: E402
from .run_files import read_csv  # noqa: E402

__all__ = [
    "Assembly", "BrokenPlugin", "PluginInfo", "assemble", "KINDS", "Check", "CheckResult",
    "CovarianceContext", "Learner", "Loss", "Metric", "NoiseModel", "Oracle", "PluginError",
    "UserError", "hookimpl", "as_hyper", "make_oracle", "make_step", "optax_learner",
    "ensemble", "make_runner", "RunContext", "RunExtension", "Snapshot", "read_csv",
]
