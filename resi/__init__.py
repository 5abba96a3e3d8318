"""RESI subnet 46: decentralized US real-estate listings on Bittensor."""

__version__ = "1.0.0"
