"""The reference Resi API server (``python -m resi.api.server``). Needs ``pip install '.[localnet]'``."""

from resi.extras import require_localnet

require_localnet("the reference API server")
