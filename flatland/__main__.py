"""``python -m flatland`` is the ``flatland`` command."""
import sys

from flatland.cli import main

sys.exit(main())
