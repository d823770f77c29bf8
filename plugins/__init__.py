"""flatland's built-in plugins (installed as ``flatland_plugins``).

Each module in ``BUILTIN`` is a pluggy plugin: it implements some of the hooks
in :mod:`flatland.hookspecs`. They are registered from this explicit list, in
this order, never by scanning the folder.
"""

BUILTIN = (
    "flatland_plugins.valleys",
    "flatland_plugins.noise",
    "flatland_plugins.learners",
    "flatland_plugins.metrics",
    "flatland_plugins.valley_checks",
    "flatland_plugins.valley_checks_more",
    "flatland_plugins.relu",
    "flatland_plugins.geometry_task",
    "flatland_plugins.geometry_noise",
    "flatland_plugins.geometry_metrics",
    "flatland_plugins.geometry_checks",
    "flatland_plugins.geometry_penalty",
)
