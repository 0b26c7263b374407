"""The first `scripts/test.sh` on a clean machine (issue 17, item 5): its two big parts, old against new.

    .venv/bin/python benchmarks/bench_first_run.py build [--rounds 2]
        llama-cpp-python's wheel compiled from its source, with the old flags (-DGGML_NATIVE=OFF only)
        and with scripts/llama_build_flags.sh's, interleaved; every build in its own empty pip cache
        (`pip wheel --no-deps`). Wall and CPU seconds, the libraries in each wheel, and where the
        compile time went (Ninja's log) -> benchmarks/results/first_run_build.json
    .venv/bin/python benchmarks/bench_first_run.py suite [--rounds 2] [--workers 2] [PATH ...]
        the whole suite (or the PATHs given) in one process against `-n WORKERS --dist loadfile`, interleaved
        -> benchmarks/results/first_run_suite.json
    .venv/bin/python benchmarks/bench_first_run.py cold [--source /work/main]
        the real thing: a fresh clone, an empty pip cache, `bash .ci/run`; the time of each step
        (set-up, ruff, the tests) from the script's own progress lines
        -> benchmarks/results/first_run_cold.json

The machine is shared: every run records the load average before and after it; CPU seconds
(user + system of the children) are what the flags change, whatever the load.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_report

ROOT = Path(__file__).resolve().parents[1]
OLD_FLAGS = "-DGGML_NATIVE=OFF"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(cmd: list[str], cwd: Path, env: dict[str, str], log: Path | None = None) -> dict[str, object]:
    """Wall and CPU seconds of one command (its output to `log`), with the load around it."""
    load_before = os.getloadavg()[0]
    cpu = _children_cpu()
    start = time.perf_counter()
    with open(log or os.devnull, "w") as out:
        code = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    return {"wall_s": round(time.perf_counter() - start, 1), "cpu_s": round(_children_cpu() - cpu, 1),
            "exit": code, "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}


def _new_flags() -> str:
    env = {k: v for k, v in os.environ.items() if k != "CMAKE_ARGS"}
    out = subprocess.run(["bash", "-c", '. scripts/llama_build_flags.sh && printf %s "$CMAKE_ARGS"'], cwd=ROOT,
                         env=env, capture_output=True, text=True, check=True)
    return out.stdout


def _llama_version() -> str:
    match = re.search(r"^llama-cpp-python==(\S+)", (ROOT / "requirements.lock").read_text(), re.MULTILINE)
    if not match:
        raise SystemExit("llama-cpp-python is not in requirements.lock")
    return match.group(1)


_PARTS = (("mtmd", "tools/mtmd"), ("common", "/common/"), ("httplib", "cpp-httplib"), ("ggml-cpu", "ggml-cpu"),
          ("ggml", "ggml/"), ("llama", "/src/"))


def _ninja_split(build_dir: Path) -> dict[str, float]:
    """Compile seconds by part (from .ninja_log: one line per output, start and end in ms)."""
    parts: dict[str, float] = {}
    for log in build_dir.rglob(".ninja_log"):
        for line in log.read_text().splitlines()[1:]:
            fields = line.split("\t")
            if len(fields) < 4:
                continue
            seconds = (int(fields[1]) - int(fields[0])) / 1000
            name = next((part for part, pattern in _PARTS if pattern in fields[3]), "other")
            parts[name] = round(parts.get(name, 0.0) + seconds, 1)
    return dict(sorted(parts.items(), key=lambda kv: -kv[1]))


def bench_build(rounds: int, only: str | None = None, out: str = "first_run_build") -> None:
    """Old and new flags interleaved, `rounds` builds each (or only one kind); the report is rewritten
    after every build, so a run cut short still leaves what it measured."""
    version = _llama_version()
    py = sys.executable
    flags = {"old": OLD_FLAGS, "new": _new_flags()}
    runs: dict[str, list[dict[str, object]]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory(prefix="llama-build-") as tmp:
        work = Path(tmp)
        dl_env = {**os.environ, "PIP_CACHE_DIR": str(work / "dl-cache")}
        subprocess.run([py, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", "llama-cpp-python",
                        f"llama-cpp-python=={version}", "-d", str(work / "sdist")], env=dl_env, check=True)
        [sdist] = (work / "sdist").glob("*.tar.gz")
        for i in range(rounds):
            for name in [n for n in (("old", "new") if i % 2 == 0 else ("new", "old")) if only in (None, n)]:
                run_dir = work / f"{name}-{i}"
                run_dir.mkdir()
                env = {**os.environ, "PIP_CACHE_DIR": str(run_dir / "cache"), "CMAKE_ARGS": flags[name]}
                env.pop("CMAKE_BUILD_PARALLEL_LEVEL", None)
                if name == "new":  # what scripts/llama_build_flags.sh exports besides CMAKE_ARGS
                    env["CMAKE_BUILD_PARALLEL_LEVEL"] = str(os.cpu_count() or 2)
                result = _run([py, "-m", "pip", "wheel", "-q", "--no-deps", "-C", f"build-dir={run_dir / 'build'}",
                               str(sdist), "-w", str(run_dir / "wheel")], ROOT, env, run_dir / "pip.log")
                wheels = list((run_dir / "wheel").glob("*.whl"))
                if wheels:
                    with zipfile.ZipFile(wheels[0]) as whl:
                        result["libraries"] = sorted({Path(n).name.split(".so")[0] for n in whl.namelist()
                                                      if ".so" in n})
                    result["wheel_bytes"] = wheels[0].stat().st_size
                result["compile_s_by_part"] = _ninja_split(run_dir / "build")
                runs[name].append(result)
                print(name, result, flush=True)
                shutil.rmtree(run_dir, ignore_errors=True)
                _build_report(out, version, flags, runs)


def _build_report(out: str, version: str, flags: dict[str, str], runs: dict[str, list[dict[str, object]]]) -> None:
    summary = {name: {"wall_s": statistics.median(float(str(r["wall_s"])) for r in rs),
                      "cpu_s": statistics.median(float(str(r["cpu_s"])) for r in rs)}
               for name, rs in runs.items() if rs}
    report: dict[str, object] = {
        "what": f"pip wheel --no-deps llama-cpp-python=={version} from its sdist, empty pip cache per build",
        "flags": flags, "runs": runs, "median": summary,
        "note": "interleaved old/new; wall time depends on the shared machine's load, CPU time much less",
    }
    if "old" in summary and "new" in summary:
        report["ratio_new_over_old"] = {k: round(summary["new"][k] / summary["old"][k], 3) for k in summary["new"]}
    write_report(out, report)


_SUMMARY = re.compile(r"(\d+) passed.* in ([\d.]+)s")


def bench_suite(rounds: int, workers: int, paths: list[str]) -> None:
    py = sys.executable
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    modes = {"serial": [], "parallel": ["-n", str(workers), "--dist", "loadfile"]}
    runs: dict[str, list[dict[str, object]]] = {name: [] for name in modes}
    with tempfile.TemporaryDirectory(prefix="suite-") as tmp:
        for i in range(rounds):
            for name in list(modes) if i % 2 == 0 else list(modes)[::-1]:
                log = Path(tmp) / f"{name}-{i}.log"
                result = _run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", *modes[name], *paths], ROOT, env, log)
                tail = log.read_text(errors="replace").splitlines()[-1:] or [""]
                result["summary"] = tail[0].strip("= ")
                match = _SUMMARY.search(tail[0])
                result["passed"] = int(match.group(1)) if match else None
                runs[name].append(result)
                print(name, result, flush=True)
    summary = {name: statistics.median(float(str(r["wall_s"])) for r in rs) for name, rs in runs.items()}
    write_report("first_run_suite", {
        "what": f"python -m pytest -q -p no:cacheprovider {' '.join(paths) or '(whole suite)'}, "
                f"serial vs -n {workers} --dist loadfile",
        "runs": runs, "wall_s_median": summary, "ratio_parallel_over_serial": round(summary["parallel"] / summary["serial"], 3),
        "note": "interleaved; the machine is shared by the team (load average per run)",
    })


# Progress lines of setup.sh and test.sh, in the order they appear (the older test.sh ran mypy, then pytest).
_MARKS = (("setup", re.compile(r"^setup: ")), ("ruff", re.compile(r"^test: ruff")),
          ("mypy_and_tests", re.compile(r"^test: mypy")), ("first_test_result", re.compile(r"^[.FEsxX]+\s*(\[\s*\d+%\])?\s*$")),
          ("mypy_done", re.compile(r"^test: mypy(: | FAILED)")))


def bench_cold(source: Path) -> None:
    """A fresh clone of `source`, an empty pip cache and no mypy cache: `bash .ci/run`, step by step."""
    with tempfile.TemporaryDirectory(prefix="cold-run-") as tmp:
        clone = Path(tmp) / "vital-desktop"
        subprocess.run(["git", "clone", "-q", str(source), str(clone)], check=True)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True,
                                check=True).stdout.strip()
        env = {**os.environ, "PIP_CACHE_DIR": str(Path(tmp) / "pip-cache"), "CI": "true"}
        for name in ("CMAKE_ARGS", "CMAKE_BUILD_PARALLEL_LEVEL", "PYTHONPATH", "VIRTUAL_ENV"):
            env.pop(name, None)
        load_before = os.getloadavg()
        marks: dict[str, float] = {}
        lines: list[str] = []
        start = time.perf_counter()
        with subprocess.Popen(["bash", ".ci/run"], cwd=clone, env=env, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                now = time.perf_counter() - start
                lines.append(line.rstrip())
                for mark, pattern in _MARKS:
                    if mark not in marks and pattern.search(line):
                        marks[mark] = round(now, 1)
            code = proc.wait()
        total = round(time.perf_counter() - start, 1)
    marks["end"] = total
    write_report("first_run_cold", {
        "what": "fresh clone, empty pip cache, bash .ci/run (set-up with llama.cpp compiled, ruff, mypy, suite)",
        "source_commit": commit, "exit": code, "total_s": total,
        "seconds_from_start": marks, "note": "each mark is when that progress line first appeared",
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "last_lines": lines[-6:],
    })
    if code != 0:
        raise SystemExit(f".ci/run failed ({code}); last lines: {lines[-20:]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="what", required=True)
    build = sub.add_parser("build")
    build.add_argument("--rounds", type=int, default=2)
    build.add_argument("--only", choices=("old", "new"), default=None, help="build with one set of flags only")
    build.add_argument("--out", default="first_run_build", help="report name in benchmarks/results/")
    suite = sub.add_parser("suite")
    suite.add_argument("--rounds", type=int, default=2)
    suite.add_argument("--workers", type=int, default=2)
    suite.add_argument("paths", nargs="*", help="test folders or files (default: the whole suite)")
    cold = sub.add_parser("cold")
    cold.add_argument("--source", type=Path, default=ROOT)
    args = parser.parse_args()
    commands = {"build": lambda: bench_build(args.rounds, args.only, args.out),
                "suite": lambda: bench_suite(args.rounds, args.workers, args.paths),
                "cold": lambda: bench_cold(args.source)}
    commands[args.what]()


if __name__ == "__main__":
    main()
