"""mexc-paper: a local paper-trading testnet that speaks MEXC Spot V3."""

__version__ = "0.1.0"
