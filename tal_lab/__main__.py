"""``python -m tal_lab``: the ``tal-lab`` command line (see ``tal_lab.cli.main``)."""

import sys

from tal_lab.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
