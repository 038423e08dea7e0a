"""``python -m ml_switcheroo``."""

import sys

from ml_switcheroo.cli import main

sys.exit(main())
