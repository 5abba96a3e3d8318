"""RESI subnet 46 validator. ``python neurons/validator.py --help`` lists every flag."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from resi.launch import main_of  # noqa: E402

main = main_of("resi.validator.cli")

if __name__ == "__main__":
    sys.exit(main())
