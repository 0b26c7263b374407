"""Background jobs yield the CPU to the GUI thread: the pools' threads run nicer (Linux)."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from vital_desktop.ui.workers import JobRunner


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_a_job_runs_on_a_nicer_thread_than_the_gui(qtbot, monkeypatch):
    monkeypatch.setenv("VITAL_WORKER_NICE", "5")
    gui = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    runner = JobRunner()  # new pools: new threads, lowered on their first job
    job = runner.submit("priority", lambda _p: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()),
                        visible=False)
    qtbot.waitUntil(lambda: not job.running, timeout=10_000)
    assert job.error is None and job.result == min(19, gui + 5)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == gui  # the GUI thread is untouched
    assert runner.wait(10_000)


def test_the_app_keeps_a_core_free_for_the_window(qtbot, store, settings, monkeypatch):
    from vital_desktop.app import build_main_window
    from vital_desktop.services import accounts
    from vital_desktop.ui.workers import CORES_KEPT_FOR_THE_WINDOW, engine_threads

    def duckdb_threads() -> int:
        with store.engine.connect() as connection:
            return int(connection.exec_driver_sql("SELECT current_setting('threads')").scalar_one())

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    monkeypatch.delenv("VITAL_ENGINE_THREADS", raising=False)
    assert engine_threads() == max(1, cores - CORES_KEPT_FOR_THE_WINDOW)
    window = build_main_window(store, accounts.get_user(store, "alice"), settings=settings)
    qtbot.addWidget(window)
    assert duckdb_threads() == engine_threads()  # DuckDB's parallel workers leave the window a core
    window.close()
    monkeypatch.setenv("VITAL_ENGINE_THREADS", "3")
    assert engine_threads() == 3
    monkeypatch.setenv("VITAL_ENGINE_THREADS", "none")
    assert engine_threads() == max(1, cores - CORES_KEPT_FOR_THE_WINDOW)
