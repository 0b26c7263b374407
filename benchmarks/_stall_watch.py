"""What is the GUI thread doing when it is late? A watchdog thread for the stall benchmark.

The GUI thread's 5 ms timer stamps `tick()`; a watchdog thread wakes every 5 ms and, whenever the
last stamp is older than `threshold` seconds, samples every thread's Python stack with
`sys._current_frames()`. Two kinds of stall come apart:

- the watchdog itself woke late (it overslept by more than `threshold`): some thread held the GIL
  in a C call that does not release it; the other threads' stacks at wake-up show which;
- the watchdog woke on time but the GUI thread is late: the GUI thread is busy in Python (its
  stack says where) or blocked in C with the GIL released (a lock, a wait, a long Qt call).

It also times every garbage collection (`gc.callbacks`): a full collection holds the GIL in
whichever thread allocated, so every other thread, the GUI's included, waits for it.
"""

from __future__ import annotations

import collections
import gc
import sys
import threading
import time
import traceback
from typing import Any


def _stack(frame: Any, depth: int) -> list[str]:
    entries = traceback.extract_stack(frame)[-depth:]
    return [f"{e.filename.rsplit('/', 2)[-2:][-1] if '/' in e.filename else e.filename}:{e.lineno} {e.name}"
            for e in entries]


class StallWatch:
    """Samples thread stacks while the GUI thread is late; `summary()` ranks what was seen."""

    def __init__(self, threshold: float = 0.04, interval: float = 0.005, depth: int = 8) -> None:
        self.threshold = threshold
        self.interval = interval
        self.depth = depth
        self.gui_id = threading.get_ident()
        self.last_tick = time.perf_counter()
        self.gui_late: collections.Counter[str] = collections.Counter()
        self.gil_held: collections.Counter[str] = collections.Counter()
        self.samples = 0
        self.oversleeps: list[float] = []
        self.episodes: list[dict[str, Any]] = []
        self._episode: dict[str, Any] | None = None
        self.slow_events: list[tuple[float, str]] = []
        self.collections: list[tuple[float, int, int, str]] = []  # (seconds, generation, collected, thread)
        self._gc_started = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stall-watch", daemon=True)

    def tick(self) -> None:
        """Called from the GUI thread's timer."""
        self.last_tick = time.perf_counter()

    def start(self) -> None:
        self.last_tick = time.perf_counter()
        gc.callbacks.append(self._collection)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        if self._collection in gc.callbacks:
            gc.callbacks.remove(self._collection)

    def _collection(self, phase: str, info: dict[str, int]) -> None:
        """A garbage collection starting or ending, in whatever thread triggered it."""
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        spent = time.perf_counter() - self._gc_started
        self.collections.append((spent, info.get("generation", -1), info.get("collected", 0),
                                 threading.current_thread().name))

    def _run(self) -> None:
        previous = time.perf_counter()
        me = threading.get_ident()
        names = {}
        while not self._stop.is_set():
            time.sleep(self.interval)
            now = time.perf_counter()
            overslept = now - previous - self.interval
            previous = now
            late = now - self.last_tick
            if late < self.threshold and overslept < self.threshold:
                if self._episode is not None:
                    self.episodes.append(self._episode)
                    self._episode = None
                continue
            if self._episode is None:
                self._episode = {"late_ms": 0.0, "overslept_ms": 0.0, "gui": collections.Counter(),
                                 "others": collections.Counter()}
            episode = self._episode
            episode["late_ms"] = max(episode["late_ms"], round(late * 1000, 1))
            episode["overslept_ms"] = max(episode["overslept_ms"], round(overslept * 1000, 1))
            self.samples += 1
            frames = sys._current_frames()
            names = {t.ident: t.name for t in threading.enumerate()}
            if overslept >= self.threshold:
                self.oversleeps.append(overslept)
                for ident, frame in frames.items():
                    if ident in (me, self.gui_id):
                        continue
                    key = f"[{names.get(ident, ident)}] " + " > ".join(_stack(frame, self.depth))
                    self.gil_held[key] += 1
                    episode["others"][key] += 1
            gui = frames.get(self.gui_id)
            if gui is not None and late >= self.threshold:
                key = " > ".join(_stack(gui, self.depth))
                self.gui_late[key] += 1
                episode["gui"][key] += 1

    def summary(self, top: int = 8) -> dict[str, Any]:
        """The most-sampled GUI stacks while it was late, and the other threads' stacks when the GIL
        was held away from the watchdog (with how long it overslept)."""
        return {
            "samples": self.samples,
            "watchdog_oversleeps": len(self.oversleeps),
            "worst_oversleep_ms": round(max(self.oversleeps, default=0.0) * 1000, 1),
            "gui_thread_late_stacks": [{"count": n, "stack": s} for s, n in self.gui_late.most_common(top)],
            "other_threads_when_gil_was_held": [{"count": n, "stack": s} for s, n in self.gil_held.most_common(top)],
            "worst_episodes": [
                {"late_ms": e["late_ms"], "overslept_ms": e["overslept_ms"],
                 "gui": [f"{n}x {s}" for s, n in e["gui"].most_common(3)],
                 "others": [f"{n}x {s}" for s, n in e["others"].most_common(3)]}
                for e in sorted(self.episodes, key=lambda e: -e["late_ms"])[:top]],
            "slow_events": [{"ms": round(ms, 1), "cpu_ms": round(cpu, 1), "what": what}
                            for ms, cpu, what in sorted(self.slow_events, reverse=True)[:top]],
            "cpu_heaviest_events": [{"cpu_ms": round(cpu, 1), "ms": round(ms, 1), "what": what}
                                    for cpu, ms, what in sorted(((c, m, w) for m, c, w in self.slow_events),
                                                                reverse=True)[:top]],
            "garbage_collections": {
                "count": len(self.collections),
                "full_collections": sum(1 for c in self.collections if c[1] == 2),
                "total_ms": round(sum(c[0] for c in self.collections) * 1000, 1),
                "longest": [{"ms": round(sec * 1000, 1), "generation": gen, "collected": n, "thread": name}
                            for sec, gen, n, name in sorted(self.collections, reverse=True)[:top]],
            },
        }

    def record_event(self, seconds: float, cpu_seconds: float, what: str) -> None:
        """A Qt event that took long on the GUI thread (from the diagnosing `notify`): its wall time
        and the GUI thread's own CPU time in it (the rest is waiting: for a CPU, the GIL, a lock)."""
        self.slow_events.append((seconds * 1000, cpu_seconds * 1000, what))
