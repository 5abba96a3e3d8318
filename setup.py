"""Packaging for the RESI subnet 46 neurons (``pip install -e .``)."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def _requirements(name: str) -> list[str]:
    lines = (HERE / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith(("#", "-r"))]


setup(
    name="resi-subnet",
    version="1.0.0",
    description="Bittensor subnet 46 (Resi Labs): miner, validator, reference API and local network",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["resi", "resi.*", "neurons"]),
    install_requires=_requirements("requirements.txt"),
    extras_require={
        "localnet": _requirements("requirements-localnet.txt"),
        "data": _requirements("requirements-data.txt"),
        "test": _requirements("requirements-localnet.txt")
        + _requirements("requirements-data.txt")
        + _requirements("requirements-test.txt"),
    },
    entry_points={
        "console_scripts": [
            "resi-miner=neurons.miner:main",
            "resi-validator=neurons.validator:main",
            "resi-api-server=resi.api.server.__main__:main",
            "resi-localnet=resi.localnet.__main__:main",
            "resi-chain=resi.chain.local:main",
            "resi-chain-node=resi.chain.node:main",
            "resi-scrape=resi.scraping.__main__:main",
            "resi-data=resi.data.cli:main",
        ]
    },
)
