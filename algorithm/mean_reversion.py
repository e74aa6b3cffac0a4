"""Mean reversion, written the way web-AutoTrader files were (its old imports still work).

Buys 10 shares when the last close is 1.5 standard deviations below the 30-minute mean;
sells them when the close gets back above the mean. Needs 30 completed minute bars.
"""

import statistics

from database.db_manager import get_data_for_algorithm
from system_databse.system_db_manager import get_transactions

WINDOW = 30
LOT = 10


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.ticker = ticker
        self.initial_capital = initial_capital

    def run(self, current_time, algo_id):
        bars = get_data_for_algorithm(self.ticker, "last_n_bars", n=WINDOW)
        if len(bars) < WINDOW:
            return "hold", 0
        closes = [bar["ohlcv"]["c"] for bar in bars]
        mean, spread = statistics.fmean(closes), statistics.pstdev(closes)
        transactions = get_transactions(algo_id)
        holding = bool(transactions) and transactions[0]["type"] == "buy"
        if not holding and spread > 0 and closes[-1] < mean - 1.5 * spread:
            return "buy", LOT
        if holding and closes[-1] > mean:
            return "sell", transactions[0]["shares"]
        return "hold", 0
