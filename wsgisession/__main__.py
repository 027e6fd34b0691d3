"""``python -m wsgisession``: the same as the ``wsgisession`` command."""

import sys

from .cli import main

sys.exit(main())
