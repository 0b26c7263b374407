"""A `vital` command handed to the running app over the bridge vs the same command alone.

    python -m benchmarks.bench_ui_bridge [--rounds 7]   → benchmarks/results/ui_bridge.json

A child process runs the desktop app (offscreen) on a demo site with the bridge listening, as
`vital-desktop` does. A copy of the same site that no app holds is the "alone" case: the same
store contents, so the same work. Each round runs every command once through the app and once
alone, interleaved (same load); the report gives the medians of the wall times (process start to
exit, as a script sees it) and their ratio. Numbers from a shared 2-core machine: the load
average is in the report.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_report  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
USER, PASSWORD = "engineer", "vital-engineer"
COMMANDS = (("sheet", "list"), ("template", "list"), ("audit", "verify"))

APP_CHILD = r"""
import os, sys, time, pathlib
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtWidgets import QApplication
from vital_desktop.app import build_main_window, start_bridge
from vital_desktop.services import accounts
from vital_desktop.store.db import open_store
app = QApplication([])
store = open_store(sys.argv[1])
window = build_main_window(store, accounts.authenticate(store, "engineer", "vital-engineer"), stage="data")
window.show()
server = start_bridge(window.context)
pathlib.Path(sys.argv[2]).write_text("ready")
stop = pathlib.Path(sys.argv[3])
while not stop.exists():
    app.processEvents()
    time.sleep(0.002)
server.stop()
window.quit_answer = True
window.close()
store.close()
os._exit(0)
"""


def run_cli(home: Path, argv: tuple[str, ...]) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO), "VITAL_HOME": str(home), "VITAL_USER": USER,
           "VITAL_PASSWORD": PASSWORD}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "vital_desktop.cli", "--json", *argv], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    spent = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"vital {' '.join(argv)} failed: {done.stderr[-400:]}")
    return spent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    from vital_desktop.services import site

    with tempfile.TemporaryDirectory() as tmp:
        held, alone = Path(tmp) / "held", Path(tmp) / "alone"
        site.init_site(held, demo=True)
        shutil.copytree(held, alone, symlinks=True)
        ready, stop = Path(tmp) / "ready", Path(tmp) / "stop"
        env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
        app = subprocess.Popen([sys.executable, "-c", APP_CHILD, str(held), str(ready), str(stop)], env=env)
        try:
            deadline = time.monotonic() + 300
            while not ready.exists():
                if app.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the app did not start")
                time.sleep(0.1)
            times: dict[str, dict[str, list[float]]] = {" ".join(c): {"app": [], "alone": []} for c in COMMANDS}
            for round_number in range(args.rounds):
                for command in COMMANDS:
                    order = ("app", "alone") if round_number % 2 == 0 else ("alone", "app")
                    for where in order:
                        times[" ".join(command)][where].append(run_cli(held if where == "app" else alone, command))
                print(round_number, {k: {w: round(v[w][-1], 2) for w in v} for k, v in times.items()}, flush=True)
        finally:
            stop.write_text("stop")
            app.wait(timeout=120)
    results = {}
    for command, by in times.items():
        app_median, alone_median = statistics.median(by["app"]), statistics.median(by["alone"])
        results[command] = {"through_the_app_median_s": round(app_median, 3), "alone_median_s": round(alone_median, 3),
                            "ratio_app_vs_alone": round(app_median / alone_median, 2),
                            "through_the_app_s": [round(x, 3) for x in by["app"]],
                            "alone_s": [round(x, 3) for x in by["alone"]]}
    write_report("ui_bridge", {"rounds": args.rounds, "what": "wall time of `vital --json CMD` from process start to "
                               "exit; 'alone' runs on a copy of the site that no app holds", "commands": results})


if __name__ == "__main__":
    main()
