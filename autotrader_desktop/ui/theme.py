"""Colours that follow the system light/dark scheme.

Nothing here is a fixed foreground or background: plain text and backgrounds come from the
application palette. Only meaning-carrying colours (gain/loss, status, warning) are chosen
here, in two shades each, so that they stay readable on a light and on a dark background.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QLabel

from autotrader_desktop import resources


@dataclass(frozen=True)
class Theme:
    gain: QColor  # P&L > 0, buys, rising candles
    loss: QColor  # P&L < 0, sells, falling candles
    warning: QColor  # drift badge, stale data
    running: QColor
    muted: QColor  # stopped instances, secondary text
    background: QColor  # chart background: the palette's base colour
    foreground: QColor  # chart axes and text
    grid: QColor


def is_dark(palette: QPalette | None = None) -> bool:
    palette = palette or QGuiApplication.palette()
    window = palette.color(QPalette.ColorRole.Window)
    text = palette.color(QPalette.ColorRole.WindowText)
    return window.lightness() < text.lightness()


def current() -> Theme:
    """The theme for the application's palette right now."""
    palette = QGuiApplication.palette()
    dark = is_dark(palette)
    foreground = palette.color(QPalette.ColorRole.Text)
    grid = QColor(foreground)
    grid.setAlpha(40)
    return Theme(
        gain=QColor("#4cc38a" if dark else "#17803d"),
        loss=QColor("#ff6b6b" if dark else "#c62828"),
        warning=QColor("#f5b942" if dark else "#a35c00"),
        running=QColor("#6cb6ff" if dark else "#1f5fbf"),
        muted=palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text),
        background=palette.color(QPalette.ColorRole.Base),
        foreground=foreground,
        grid=grid,
    )


def message_label(colour: QColor, text: str = "", lines: int = 0) -> QLabel:
    """A wrapping label in a meaning-carrying colour (inline errors, warnings), with room
    for `lines` lines kept (see keep_room)."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet(f"color: {colour.name()}")
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    keep_room(label, lines)
    return label


def keep_room(label: QLabel, lines: int) -> None:
    """Keep room for `lines` lines of the label's text even while it is shorter or empty:
    a message that appears or grows then never moves or squeezes what is around it (a
    dialog does not grow for a wrapped label's new height). Clear it rather than hide it."""
    if lines:
        text = label.text()
        label.setText("\n".join("M" * lines))
        label.setMinimumHeight(label.sizeHint().height())
        label.setText(text)


def signed(theme: Theme, value: float | None) -> QColor | None:
    """Gain or loss colour for a signed amount; None (palette text) for zero or unknown."""
    if value is None or abs(value) < 0.005:
        return None
    return theme.gain if value > 0 else theme.loss


def app_icon() -> QIcon:
    """The application icon from resources/ (PNGs at their sizes, the SVG for the rest)."""
    icon = QIcon()
    for size, png in resources.icon_pngs().items():
        icon.addFile(str(png), QSize(size, size))
    icon.addFile(str(resources.icon_path()))
    return icon
