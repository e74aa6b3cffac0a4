"""The price chart: candlesticks and volume of one symbol, with an instance's fills.

Each series is one graphics item. It draws only the bars in view, from a handful of
QPainterPaths (rising/falling bodies and wicks) that are rebuilt only when the visible
range or the zoom level changes. Zoomed out so far that candles would be narrower than a
few pixels, bars are combined into wider ones (open of the first, high/low over all,
close of the last, summed volume), so drawing costs as much for 100,000 bars as for 300.
The in-progress candle is drawn separately, so its live updates never rebuild the paths.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pyqtgraph as pg
from pyqtgraph import functions as fn
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QLabel, QStackedWidget, QVBoxLayout, QWidget

from autotrader_desktop.feed.market_data import MIN_BARS  # stored once subscribed
from autotrader_desktop.queries import Bars, Fills
from autotrader_desktop.ui import theme

BAR_SECONDS = 60
BODY_WIDTH = 0.7  # of a bar's width
MIN_BAR_PX = 3  # bars narrower than this on screen are combined
BARS_IN_VIEW = 150  # shown when a symbol is opened
Y_PADDING = 0.06  # of the visible price range, above and below
RECHECKED_BARS = 2  # the newest stored bars, read again with each refresh
GRID_OPACITY = 0.15  # of the foreground over the background

EMPTY = Bars.from_rows([])


def aggregate(bars: Bars, span: int) -> Bars:
    """`bars` combined into buckets of `span` seconds (aligned to multiples of `span`)."""
    if span <= BAR_SECONDS or len(bars) == 0:
        return bars
    bucket = bars.t // span * span
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(bucket)] - 1
    return Bars(
        bucket[starts],
        bars.o[starts],
        np.maximum.reduceat(bars.h, starts),
        np.minimum.reduceat(bars.l, starts),
        bars.c[ends],
        np.add.reduceat(bars.v, starts),
    )


def bucket_span(seconds_per_px: float) -> int:
    """Seconds per drawn bar at this zoom: a minute, or a power of two minutes, so that
    bars are at least MIN_BAR_PX wide and buckets stay put while panning."""
    needed = MIN_BAR_PX * seconds_per_px / BAR_SECONDS
    return BAR_SECONDS * 2 ** math.ceil(math.log2(needed)) if needed > 1 else BAR_SECONDS


def sliced(bars: Bars, lo: int, hi: int) -> Bars:
    return Bars(*(getattr(bars, name)[lo:hi] for name in Bars.COLUMNS))


def rect_path(x0: np.ndarray, x1: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> QPainterPath:
    """One path of many axis-aligned rectangles (closed sub-paths)."""
    xs = np.stack([x0, x1, x1, x0, x0], axis=1).ravel()
    ys = np.stack([y0, y0, y1, y1, y0], axis=1).ravel()
    connect = np.ones(len(xs), dtype=np.int32)
    connect[4::5] = 0  # the last corner of a rectangle does not lead to the next one
    return fn.arrayToQPath(xs, ys, connect=connect, finiteCheck=False)


class SeriesItem(pg.GraphicsObject):
    """One series of bars (completed + the in-progress one), drawn from cached paths."""

    def __init__(self) -> None:
        super().__init__()
        self.bars = EMPTY
        self.live: Bars | None = None
        self.drawn = 0  # bars (or combined bars) drawn by the last paint
        self._theme = theme.current()
        self._extent: tuple[float, float] | None = None  # y extent of the completed bars
        self._bounds = QRectF()
        self._key: tuple | None = None
        self._paths: list[tuple[QPainterPath, QPen, QBrush]] = []

    # --- data -------------------------------------------------------------------------

    def set_bars(self, bars: Bars) -> None:
        self.bars = bars
        self._extent = self._y_extent(bars) if len(bars) else None
        self._key = None
        if self.live is not None and len(bars) and self.live.t[0] <= bars.t[-1]:
            self.live = None
        self._geometry_changed()

    def set_live(self, live: Bars | None) -> None:
        """The in-progress bar; ignored while it is not newer than the last completed one."""
        if live is not None and len(self.bars) and live.t[0] <= self.bars.t[-1]:
            live = None
        self.live = live
        self._geometry_changed()

    def set_theme(self, current: theme.Theme) -> None:
        self._theme = current
        self._key = None
        self.update()

    def with_live(self, bars: Bars) -> Bars:
        """`bars` (a tail of the completed ones) followed by the in-progress bar."""
        if self.live is None:
            return bars
        return Bars(*(np.append(getattr(bars, n), getattr(self.live, n)) for n in Bars.COLUMNS))

    def time_span(self) -> tuple[float, float] | None:
        """Start of the first and of the newest bar (in-progress included)."""
        if self.live is not None:
            first = self.bars.t[0] if len(self.bars) else self.live.t[0]
            return float(first), float(self.live.t[0])
        if len(self.bars):
            return float(self.bars.t[0]), float(self.bars.t[-1])
        return None

    def visible(self, x0: float, x1: float) -> Bars:
        """Completed and in-progress bars overlapping [x0, x1]."""
        lo = int(np.searchsorted(self.bars.t, x0 - BAR_SECONDS, side="right"))
        hi = int(np.searchsorted(self.bars.t, x1, side="right"))
        part = sliced(self.bars, lo, hi)
        if self.live is not None and x0 - BAR_SECONDS < self.live.t[0] <= x1:
            part = self.with_live(part)
        return part

    def bar_at(self, x: float | None) -> tuple[Bars, bool]:
        """The bar under `x` (the newest if None) as a one-bar series, and if it is live."""
        if self.live is not None and (x is None or x >= self.live.t[0] or not len(self.bars)):
            return self.live, True
        index = len(self.bars) - 1
        if x is not None:
            index = max(0, min(index, int(np.searchsorted(self.bars.t, x, side="right")) - 1))
        return sliced(self.bars, index, index + 1), False

    def _geometry_changed(self) -> None:
        self.prepareGeometryChange()
        extents = [e for e in (self._extent, self.live and self._y_extent(self.live)) if e]
        span = self.time_span()
        if span is None or not extents:
            self._bounds = QRectF()
        else:
            low = min(e[0] for e in extents)
            high = max(e[1] for e in extents)
            self._bounds = QRectF(span[0], low, span[1] + BAR_SECONDS - span[0], high - low)
        self.update()

    # --- drawing ----------------------------------------------------------------------

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(self, painter: QPainter, *args) -> None:
        view = self.viewRect()
        seconds_per_px = self.pixelWidth()
        if view is None or not seconds_per_px:
            return
        span = bucket_span(seconds_per_px)
        # Combined bars include the in-progress one; single bars draw it on its own, so
        # that its updates leave the cached paths alone.
        combined_live = span > BAR_SECONDS and self.live is not None
        source = self.with_live(self.bars) if combined_live else self.bars
        lo = int(np.searchsorted(source.t, view.left() - span, side="left"))
        hi = int(np.searchsorted(source.t, view.right() + span, side="right"))
        live_key = (
            tuple(float(getattr(self.live, n)[0]) for n in Bars.COLUMNS)
            if (combined_live)
            else None
        )
        key = (lo, hi, span, live_key)
        if key != self._key:
            shown = aggregate(sliced(source, lo, hi), span)
            self._paths = self.build(shown, span)
            self._key = key
            self.drawn = len(shown)
        paths = self._paths
        if self.live is not None and not combined_live:
            paths = paths + self.build(self.live, BAR_SECONDS)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for path, pen, brush in paths:
            painter.setPen(pen)
            painter.setBrush(brush)
            painter.drawPath(path)

    def _colours(self) -> tuple[QColor, QColor]:
        return self._theme.gain, self._theme.loss

    # --- what a subclass draws ----------------------------------------------------------

    def _y_extent(self, bars: Bars) -> tuple[float, float]:
        raise NotImplementedError

    def build(self, bars: Bars, span: int) -> list[tuple[QPainterPath, QPen, QBrush]]:
        """Paths, pens and brushes for `bars`, each `span` seconds wide."""
        raise NotImplementedError


class CandleItem(SeriesItem):
    def _y_extent(self, bars: Bars) -> tuple[float, float]:
        return float(bars.l.min()), float(bars.h.max())

    def build(self, bars: Bars, span: int) -> list[tuple[QPainterPath, QPen, QBrush]]:
        centre = bars.t + span / 2
        half = span * BODY_WIDTH / 2
        rising = bars.c >= bars.o
        out = []
        for mask, colour in zip((rising, ~rising), self._colours(), strict=True):
            if not mask.any():
                continue
            pen = pg.mkPen(colour, width=1)
            x = centre[mask]
            wicks = fn.arrayToQPath(
                np.repeat(x, 2),
                np.stack([bars.l[mask], bars.h[mask]], axis=1).ravel(),
                connect="pairs",
                finiteCheck=False,
            )
            bodies = rect_path(x - half, x + half, bars.o[mask], bars.c[mask])
            out.append((wicks, pen, QBrush(Qt.BrushStyle.NoBrush)))
            out.append((bodies, pen, QBrush(colour)))
        return out


class VolumeItem(SeriesItem):
    def _y_extent(self, bars: Bars) -> tuple[float, float]:
        return 0.0, float(bars.v.max())

    def build(self, bars: Bars, span: int) -> list[tuple[QPainterPath, QPen, QBrush]]:
        centre = bars.t + span / 2
        half = span * BODY_WIDTH / 2
        rising = bars.c >= bars.o
        out = []
        for mask, colour in zip((rising, ~rising), self._colours(), strict=True):
            if not mask.any():
                continue
            fill = QColor(colour)
            fill.setAlpha(140)
            x = centre[mask]
            zero = np.zeros(len(x))
            path = rect_path(x - half, x + half, zero, bars.v[mask])
            out.append((path, pg.mkPen(fill, width=1), QBrush(fill)))
        return out


def _mixed(colour: QColor, background: QColor, opacity: float) -> QColor:
    """The opaque colour of `colour` drawn at `opacity` over `background`."""
    rgb = zip(
        (colour.red(), colour.green(), colour.blue()),
        (background.red(), background.green(), background.blue()),
        strict=True,
    )
    return QColor(*(round(opacity * a + (1 - opacity) * b) for a, b in rgb))


def _on_candles(times: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The middle of the candle each time falls on: the one of its minute, else the newest
    one before it (none before it: its own minute)."""
    minutes = times // BAR_SECONDS * BAR_SECONDS
    if not len(starts):
        return minutes + BAR_SECONDS / 2
    before = np.searchsorted(starts, minutes, side="right") - 1
    on = np.where(before >= 0, starts[np.maximum(before, 0)], minutes)
    return on + BAR_SECONDS / 2


def _local(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch).astimezone()


class ChartWidget(QWidget):
    """Candles on a local-time axis, a linked volume pane, fills, a crosshair readout.

    The view follows the newest bar (the live candle) until the user pans or zooms away
    from it, and comes back to following when the user brings the newest bar into view
    again. While it follows, the view shows the newest BARS_IN_VIEW minutes (or as many
    as the user zoomed to), whatever arrived first: a new instance's chart, which gets its
    live candle before its history, looks exactly like one opened after a restart.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.symbol: str | None = None
        self._following = True  # the newest bar is in view: keep it there as bars arrive
        self._width = BARS_IN_VIEW * BAR_SECONDS  # of the view while following
        self._hover_x: float | None = None  # where the crosshair is, None when not shown
        self._stored_until: int | None = None  # the newest bar read from the database
        self._fills: Fills | None = None
        self._fills_placed_for: tuple | None = None  # the bars the markers were placed on

        self._build_plots()
        self._build_series()
        self._build_crosshair()
        self._build_layout()
        self.apply_theme()
        self.clear()

    def _build_plots(self) -> None:
        """Two plots on one canvas: candles (4/5) over volume, x linked, prices on the right;
        the mouse pans and zooms in time only (y follows the bars in view)."""
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.ci.setSpacing(0)
        self.plot = self.canvas.addPlot(row=0, col=0, axisItems={"bottom": pg.DateAxisItem()})
        self.volume_plot = self.canvas.addPlot(
            row=1, col=0, axisItems={"bottom": pg.DateAxisItem()}
        )
        self.canvas.ci.layout.setRowStretchFactor(0, 4)
        self.canvas.ci.layout.setRowStretchFactor(1, 1)
        self.volume_plot.setXLink(self.plot)
        self.plot.getAxis("bottom").setStyle(showValues=False)
        for plot in (self.plot, self.volume_plot):
            plot.showAxis("right")
            plot.hideAxis("left")
            plot.getAxis("right").setWidth(64)
            plot.setMouseEnabled(x=True, y=False)
            plot.disableAutoRange()
            plot.hideButtons()
            plot.setMenuEnabled(False)
            plot.vb.sigRangeChangedManually.connect(self._moved_by_user)
        self.volume_plot.getAxis("right").setStyle(showValues=False)
        self.plot.vb.sigXRangeChanged.connect(self._fit_y)

    def _build_series(self) -> None:
        """Candles, volume bars and the buy ▲ / sell ▼ markers."""
        self.candles = CandleItem()
        self.volume = VolumeItem()
        self.plot.addItem(self.candles)
        self.volume_plot.addItem(self.volume)
        self.buys = pg.ScatterPlotItem(symbol="t1", size=13, name="buys")
        self.sells = pg.ScatterPlotItem(symbol="t", size=13, name="sells")
        for markers in (self.buys, self.sells):
            markers.setZValue(10)
            self.plot.addItem(markers)

    def _build_crosshair(self) -> None:
        """Dashed lines over both panes and the OHLCV readout above them; the lines show
        only while the pointer is over a plot."""
        self.readout = QLabel()
        self.readout.setTextFormat(Qt.TextFormat.RichText)
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._vline = pg.InfiniteLine(angle=90, movable=False)
        self._hline = pg.InfiniteLine(angle=0, movable=False)
        self._volume_vline = pg.InfiniteLine(angle=90, movable=False)
        for line, plot in (
            (self._vline, self.plot),
            (self._hline, self.plot),
            (self._volume_vline, self.volume_plot),
        ):
            line.setVisible(False)
            line.setZValue(20)
            plot.addItem(line, ignoreBounds=True)
        self.canvas.scene().sigMouseMoved.connect(self._mouse_moved)
        # Moving off the canvas sends no mouse move to the scene: watch for leaving.
        self.canvas.viewport().installEventFilter(self)

    def _build_layout(self) -> None:
        """The readout over the canvas; without a symbol, a message instead of empty axes."""
        self.placeholder = QLabel()
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(self.canvas)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.readout)
        layout.addWidget(self.stack, 1)

    # --- data -------------------------------------------------------------------------

    def clear(self, message: str = "Select an instance to see its chart") -> None:
        self.symbol = None
        self._stored_until = None
        self.candles.set_bars(EMPTY)
        self.volume.set_bars(EMPTY)
        self.set_live(None)
        self.set_fills(None)
        self._hide_crosshair()
        self.readout.clear()
        self.placeholder.setText(message)
        self.stack.setCurrentWidget(self.placeholder)

    def show_bars(self, symbol: str, bars: Bars) -> None:
        """A symbol's stored history; the view shows its newest bars."""
        self.symbol = symbol
        self.stack.setCurrentWidget(self.canvas)
        self._stored_until = int(bars.t[-1]) if len(bars) else None
        self.candles.set_live(None)
        self.volume.set_live(None)
        self.candles.set_bars(bars)
        self.volume.set_bars(bars)
        self._following = True
        self._width = BARS_IN_VIEW * BAR_SECONDS
        self._hide_crosshair()
        self._after_new_data()

    def add_bars(self, bars: Bars, stored: bool = True) -> None:
        """Newer or corrected bars: from the database, or (stored=False) a minute just
        ended as last seen live, until its stored bar replaces it."""
        if not len(bars):
            return
        if stored:
            self._stored_until = max(self._stored_until or 0, int(bars.t[-1]))
        merged = self.candles.bars.merged(bars)
        self.candles.set_bars(merged)
        self.volume.set_bars(merged)
        self._after_new_data()

    def set_live(self, live: Bars | None) -> None:
        self.candles.set_live(live)
        self.volume.set_live(live)
        self._after_new_data()

    def set_fills(self, fills: Fills | None) -> None:
        """Buy ▲ / sell ▼ markers at the fill prices."""
        self._fills = fills
        self._fills_placed_for = None
        self._place_fills()

    def _place_fills(self) -> None:
        """Each marker in the middle of the candle it filled on: its own minute's, or, when
        that minute has no candle (a stopped instance's last sell, a fill after the market
        closed), the newest candle before it, whose price it got. A marker never floats
        after the last candle."""
        bars, live = self.candles.bars, self.candles.live
        key = (len(bars), bars.t[-1] if len(bars) else None, live.t[0] if live else None)
        if key == self._fills_placed_for:
            return
        self._fills_placed_for = key
        fills = self._fills
        if fills is None:
            self.buys.setData([], [])
            self.sells.setData([], [])
            return
        starts = bars.t if live is None else np.append(bars.t, live.t)
        self.buys.setData(_on_candles(fills.buy_t, starts), fills.buy_price)
        self.sells.setData(_on_candles(fills.sell_t, starts), fills.sell_price)

    def history_pending(self) -> bool:
        """A symbol is shown with less history than the feed keeps of it: the rest is on
        its way (a new instance's symbol; its history is fetched once subscribed)."""
        return self.symbol is not None and len(self.candles.bars) < MIN_BARS

    def reload_after(self) -> int | None:
        """Where the next read of stored bars starts (exclusive); None: read them all.

        The newest stored bars are read again: late trades may have corrected them. A
        chart with less history than the feed keeps of a symbol reads it all again: its
        history is still being fetched (a new instance's symbol), older than what is shown.
        """
        if self._stored_until is None or self.history_pending():
            return None
        return self._stored_until - RECHECKED_BARS * BAR_SECONDS

    # --- view ---------------------------------------------------------------------------

    def apply_theme(self) -> None:
        current = theme.current()
        self.canvas.setBackground(current.background)
        # The grid in an opaque colour (what a 15 % line over the background looks like),
        # behind the bars, on major and minor ticks: Qt's raster engine draws a
        # semi-transparent 1 px line a pixel at a time, so pyqtgraph's faded grid cost
        # ~18 ms of each chart repaint (of ~24 ms, 900x560 px), four repaints a second
        # with the live candle; opaque lines cost ~0.3 ms.
        grid = _mixed(current.foreground, current.background, GRID_OPACITY)
        for plot in (self.plot, self.volume_plot):
            plot.showGrid(x=True, y=True)
            for name in ("right", "bottom"):
                axis = plot.getAxis(name)
                axis.setPen(pg.mkPen(current.grid))
                axis.setTextPen(pg.mkPen(current.foreground))
                axis.setTickPen(pg.mkPen(grid))
                axis.setStyle(tickAlpha=255, maxTickLevel=1)
                axis.setZValue(-200)  # below the view box (-100) and so the bars
        self.buys.setBrush(pg.mkBrush(current.gain))
        self.buys.setPen(pg.mkPen(current.foreground, width=1))
        self.sells.setBrush(pg.mkBrush(current.loss))
        self.sells.setPen(pg.mkPen(current.foreground, width=1))
        crosshair = QColor(current.foreground)
        crosshair.setAlpha(110)
        for line in (self._vline, self._hline, self._volume_vline):
            line.setPen(pg.mkPen(crosshair, width=1, style=Qt.PenStyle.DashLine))
        self.candles.set_theme(current)
        self.volume.set_theme(current)

    def _set_limits(self) -> None:
        """Panning stops a little beyond the first and the newest bar; there is always
        room for the view that follows the newest bar (a symbol without history yet)."""
        span = self.candles.time_span()
        if span is None:
            return
        margin = 20 * BAR_SECONDS
        end = self._newest_end(span)
        self.plot.setLimits(
            xMin=min(span[0] - margin, end - self._width),
            xMax=end + margin,
            minXRange=10 * BAR_SECONDS,
        )

    @staticmethod
    def _newest_end(span: tuple[float, float]) -> float:
        """The right edge of a view that follows the newest bar (a little room after it)."""
        return span[1] + 3 * BAR_SECONDS

    def _after_new_data(self) -> None:
        if self.symbol is None:
            return
        self._set_limits()
        span = self.candles.time_span()
        if self._following and span is not None:
            end = self._newest_end(span)
            self.plot.setXRange(end - self._width, end, padding=0)
        self._place_fills()
        self._fit_y()
        self._show_readout(self._hover_x)

    def _moved_by_user(self, *args) -> None:
        """The user panned or zoomed: follow the newest bar while it is in view, at the
        width the user chose."""
        (x0, x1), _ = self.plot.viewRange()
        span = self.candles.time_span()
        self._following = span is not None and x1 >= span[1] + BAR_SECONDS
        if self._following:
            self._width = x1 - x0

    def _fit_y(self, *args) -> None:
        (x0, x1), _ = self.plot.viewRange()
        shown = self.candles.visible(x0, x1)
        if not len(shown):
            return
        low, high = float(shown.l.min()), float(shown.h.max())
        pad = max((high - low) * Y_PADDING, abs(high) * 1e-4)
        self.plot.setYRange(low - pad, high + pad, padding=0)
        # Combined bars sum their volume: fit the pane to what is drawn.
        width_px = max(self.plot.vb.width(), 1.0)
        drawn = aggregate(shown, bucket_span((x1 - x0) / width_px))
        self.volume_plot.setYRange(0, max(float(drawn.v.max()), 1.0) * 1.1, padding=0)

    # --- crosshair ----------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.canvas.viewport() and event.type() == QEvent.Type.Leave:
            self._hide_crosshair()
        return super().eventFilter(watched, event)

    def _hide_crosshair(self) -> None:
        """No pointer over the chart: no lines, and the readout shows the newest bar."""
        for line in (self._vline, self._hline, self._volume_vline):
            line.setVisible(False)
        self._hover_x = None
        self._show_readout(None)

    def _mouse_moved(self, position: QPointF) -> None:
        inside = None
        for plot in (self.plot, self.volume_plot):
            if plot.sceneBoundingRect().contains(position):
                inside = plot
        if inside is None or self.symbol is None:
            self._hide_crosshair()
            return
        point = inside.vb.mapSceneToView(position)
        self._vline.setPos(point.x())
        self._volume_vline.setPos(point.x())
        self._hline.setPos(point.y())
        self._vline.setVisible(True)
        self._volume_vline.setVisible(True)
        self._hline.setVisible(inside is self.plot)
        self._hover_x = point.x()
        self._show_readout(point.x())

    def _show_readout(self, x: float | None) -> None:
        """OHLCV of the bar under the mouse (at `x`), or of the newest bar."""
        if self.symbol is None:
            return
        if self.candles.time_span() is None:
            self.readout.setText(f"<b>{self.symbol}</b> &nbsp; <i>no bars yet</i>")
            return
        bar, live = self.candles.bar_at(x)
        self.readout.setText(self.readout_text(bar, live))

    def readout_text(self, bar: Bars, live: bool) -> str:
        """The readout line for a one-bar series."""
        current = theme.current()
        o, h, low, c, v = (float(getattr(bar, n)[0]) for n in ("o", "h", "l", "c", "v"))
        change = (c - o) / o * 100 if o else 0.0
        colour = theme.signed(current, change)
        change_html = f"{change:+.2f}%"
        if colour is not None:
            change_html = f'<span style="color:{colour.name()}">{change_html}</span>'
        when = _local(float(bar.t[0]))
        return (
            f"<b>{self.symbol}</b> &nbsp; {when:%Y-%m-%d %H:%M}{' (live)' if live else ''}"
            f" &nbsp; O {o:,.2f} &nbsp; H {h:,.2f} &nbsp; L {low:,.2f} &nbsp; C {c:,.2f}"
            f" &nbsp; V {v:,.0f} &nbsp; {change_html}"
        )
