"""Test algorithm: trades every minute so you can watch activity.

Buys one share when flat and sells it on the next run. Needs one completed bar.
"""

from autotrader_desktop.api import get_data_for_algorithm, get_position


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.ticker = ticker
        self.initial_capital = initial_capital

    def run(self, current_time, algo_id):
        bars = get_data_for_algorithm(
            self.ticker, "last_n_bars", n=1, before_timestamp=current_time
        )
        if not bars:
            return "hold", 0
        if get_position(algo_id)["shares"] > 0:
            return "sell", 1
        return "buy", 1
