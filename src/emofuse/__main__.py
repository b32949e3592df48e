"""``python -m emofuse``: the command line, also as ``torchrun -m emofuse cv ...`` (a launcher that needs a module)."""

import sys

from emofuse.cli import main

if __name__ == "__main__":
    sys.exit(main())
