"""``python -m emofuse.cli``."""

import sys

from emofuse.cli import main

sys.exit(main())
