"""``python -m resi.data`` is ``resi-data``."""

import sys

from resi.data.cli import main

sys.exit(main())
