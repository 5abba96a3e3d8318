"""RESI subnet 46 miner. ``python neurons/miner.py --help`` lists every flag."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from resi.launch import main_of  # noqa: E402

main = main_of("resi.miner.cli")

if __name__ == "__main__":
    sys.exit(main())
