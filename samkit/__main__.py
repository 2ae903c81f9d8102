"""``python -m samkit``: the ``samkit`` command, for when its script is not on ``PATH``."""

import sys

from samkit.cli import main

sys.exit(main())
