"""AutoTrader Desktop: run your own Python trading algorithms every minute and paper-trade them."""

__version__ = "0.1.0"
