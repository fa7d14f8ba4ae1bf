"""``python3 -m engine.cli``: the same command line as ``canary-engine``."""

import sys

from engine.cli import main

sys.exit(main())
