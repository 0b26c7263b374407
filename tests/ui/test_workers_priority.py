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
