"""The local network: SeaweedFS as S3, a local chain, the reference API server, the local listing site, miners
and validators on loopback (``python -m resi.localnet``). Needs ``pip install '.[localnet]'``."""

from resi.extras import require_localnet

require_localnet("the local network")
