"""The one bridge from core events (emitted on the cycle thread, or the engine channel's
reader thread) to queued Qt signals."""

from __future__ import annotations

import contextlib
from datetime import datetime

from PySide6.QtCore import QObject, Signal

from autotrader_desktop.engine_channel import ClientEvents, WindowEngine
from autotrader_desktop.engine_lock import EngineInfo
from autotrader_desktop.journal import RecordedRun
from autotrader_desktop.orchestrator import CycleReport


class EngineBridge(QObject):
    """Lives on the GUI thread; its signals are emitted from the cycle thread.

    Connect with Qt.QueuedConnection to objects on the GUI thread: the slots then run there,
    never on the thread that emitted.
    """

    cycle_started = Signal(object)  # datetime: the cycle's scheduled time
    cycle_finished = Signal(object)  # CycleReport
    runs_recorded = Signal(object)  # list[RecordedRun], one batch
    engine_lost = Signal(object)  # EngineInfo of the engine process that ended

    def __init__(self, engine: WindowEngine, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._events = engine.events
        self._events.cycle_started.connect(self._on_cycle_started)
        self._events.cycle_finished.connect(self._on_cycle)
        self._events.runs_recorded.connect(self._on_recorded)
        # An engine in the window's own process (the window's tests) is never lost under it.
        if isinstance(self._events, ClientEvents):
            self._events.engine_lost.connect(self._on_lost)

    def detach(self) -> None:
        """Stop listening (the window is closing; a cycle may still be finishing)."""
        self._events.cycle_started.disconnect(self._on_cycle_started, missing_ok=True)
        self._events.cycle_finished.disconnect(self._on_cycle, missing_ok=True)
        self._events.runs_recorded.disconnect(self._on_recorded, missing_ok=True)
        if isinstance(self._events, ClientEvents):
            self._events.engine_lost.disconnect(self._on_lost, missing_ok=True)

    # Called on the cycle thread. RuntimeError: the Qt object is already gone (quitting).
    def _on_cycle_started(self, scheduled_at: datetime) -> None:
        with contextlib.suppress(RuntimeError):
            self.cycle_started.emit(scheduled_at)

    def _on_cycle(self, report: CycleReport) -> None:
        with contextlib.suppress(RuntimeError):
            self.cycle_finished.emit(report)

    def _on_recorded(self, recorded: list[RecordedRun]) -> None:
        with contextlib.suppress(RuntimeError):
            self.runs_recorded.emit(recorded)

    def _on_lost(self, info: EngineInfo) -> None:
        with contextlib.suppress(RuntimeError):
            self.engine_lost.emit(info)
