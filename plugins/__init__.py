"""flatland's built-in plugins (installed as ``flatland_plugins``).

Each module is a pluggy plugin: it implements some of the hooks in
:mod:`flatland.hookspecs` and uses only flatland's public API, exactly as a
third-party plugin would. The engine registers them from the list of module
names ``flatland.assembly.BUILTIN``, in that order, never by scanning the folder.
"""
