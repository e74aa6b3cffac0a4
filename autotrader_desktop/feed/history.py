"""Client of the historical-data REST API: minute bars (paged) and the latest trade.

Speaks Alpaca's `GET /v2/stocks/{symbol}/bars`, `GET /v2/stocks/bars?symbols=...` and
`GET /v2/stocks/{symbol}/trades/latest`, which the embedded simulator serves too.
Calls block (urllib, standard library): run them on a worker thread, never on the loop.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from autotrader_desktop.credentials import Credentials
from autotrader_desktop.feed.protocol import (
    MinuteBar,
    format_minute,
    is_price,
    parse_bar,
    parse_timestamp,
)

log = logging.getLogger(__name__)

PAGE_LIMIT = 10_000  # Alpaca's maximum

# "path?query" -> (HTTP status, decoded JSON body)
Transport = Callable[[str], tuple[int, Any]]


class HistoryError(RuntimeError):
    """A history request failed; the message says which and why, without secrets."""


class HistoryClient:
    def __init__(
        self,
        base_url: str,
        credentials: Credentials | None = None,
        *,
        feed: str | None = None,
        timeout: float = 10.0,
        transport: Transport | None = None,
    ) -> None:
        """`feed` ("iex"/"sip") is passed to Alpaca; `transport` replaces HTTP (in-process)."""
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._feed = feed
        self._timeout = timeout
        self._transport = transport or self._http_get

    def _http_get(self, target: str) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        if self._credentials is not None:
            headers["APCA-API-KEY-ID"] = self._credentials.key_id
            headers["APCA-API-SECRET-KEY"] = self._credentials.secret_key
        request = urllib.request.Request(self.base_url + target, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                status, body = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise HistoryError(f"cannot reach {self.base_url}: {reason}") from None
        try:
            return status, json.loads(body)
        except ValueError:
            return status, {"message": body[:200].decode(errors="replace")}

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        if self._feed:
            params["feed"] = self._feed
        target = f"{path}?{urlencode(params)}"
        status, payload = self._transport(target)
        if status != 200:
            message = payload.get("message") if isinstance(payload, dict) else None
            hint = " (check the API key and secret)" if status in (401, 403) else ""
            raise HistoryError(
                f"{self.base_url}{path} answered HTTP {status}: {message or 'no details'}{hint}"
            )
        if not isinstance(payload, dict):
            raise HistoryError(f"{self.base_url}{path} answered with unexpected JSON")
        return payload

    def bars(self, symbols: list[str], start: int, end: int) -> dict[str, list[MinuteBar]]:
        """Minute bars with start <= t <= end (epoch seconds) per symbol, oldest first.

        Follows next_page_token until the range is exhausted.
        """
        result: dict[str, list[MinuteBar]] = {symbol: [] for symbol in symbols}
        if not symbols:
            return result
        params: dict[str, Any] = {
            "timeframe": "1Min",
            "start": format_minute(start),
            "end": format_minute(end),
            "limit": PAGE_LIMIT,
            "sort": "asc",
        }
        if len(symbols) == 1:
            path = f"/v2/stocks/{quote(symbols[0], safe='')}/bars"
        else:
            path = "/v2/stocks/bars"
            params["symbols"] = ",".join(symbols)
        skipped = 0
        while True:
            payload = self._get(path, dict(params))
            pages = payload.get("bars") or ([] if len(symbols) == 1 else {})
            if len(symbols) == 1:
                pages = {symbols[0]: pages}
            if not isinstance(pages, dict):
                raise HistoryError(f"{self.base_url}{path}: 'bars' has an unexpected shape")
            for symbol, rows in pages.items():
                if symbol not in result or not isinstance(rows, list):
                    skipped += 1
                    continue
                for row in rows:
                    bar = parse_bar(symbol, row) if isinstance(row, dict) else "not an object"
                    if isinstance(bar, str):
                        skipped += 1
                    else:
                        result[symbol].append(bar)
            token = payload.get("next_page_token")
            if not token:
                break
            params["page_token"] = token
        if skipped:
            log.warning("history from %s: skipped %d malformed bar(s)", self.base_url, skipped)
        return result

    def latest_trade(self, symbol: str) -> tuple[float, float | None] | None:
        """Price and time (epoch s, None if unreadable) of the symbol's latest trade, or
        None if the API has none."""
        payload = self._get(f"/v2/stocks/{quote(symbol, safe='')}/trades/latest", {})
        trade = payload.get("trade")
        if not isinstance(trade, dict) or not is_price(trade.get("p")):
            return None
        try:
            minute, second = parse_timestamp(trade.get("t"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return float(trade["p"]), None
        return float(trade["p"]), minute + second
