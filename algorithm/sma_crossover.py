"""SMA crossover: buy when the 20-minute average crosses above the 50-minute one.

Sells the whole position when it crosses back down.

Invests up to 95 % of the instance's cash on a buy and sells the whole position on a sell.
Needs 51 completed minute bars; holds until they exist.
"""

from autotrader_desktop.api import get_data_for_algorithm, get_position

FAST, SLOW = 20, 50


def _mean(values):
    return sum(values) / len(values)


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.ticker = ticker
        self.initial_capital = initial_capital

    def run(self, current_time, algo_id):
        bars = get_data_for_algorithm(
            self.ticker, "last_n_bars", n=SLOW + 1, before_timestamp=current_time
        )
        if len(bars) < SLOW + 1:
            return "hold", 0
        closes = [bar["ohlcv"]["c"] for bar in bars]
        fast_now, slow_now = _mean(closes[-FAST:]), _mean(closes[-SLOW:])
        fast_before, slow_before = _mean(closes[-FAST - 1 : -1]), _mean(closes[-SLOW - 1 : -1])
        position = get_position(algo_id)
        if fast_before <= slow_before and fast_now > slow_now and position["shares"] == 0:
            shares = int(position["cash"] * 0.95 // closes[-1])
            return ("buy", shares) if shares > 0 else ("hold", 0)
        if fast_before >= slow_before and fast_now < slow_now and position["shares"] > 0:
            return "sell", position["shares"]
        return "hold", 0
