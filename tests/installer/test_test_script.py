"""scripts/test.sh (README command 2) and the llama.cpp build flags setup.sh compiles with.

test.sh runs here for real in a copy of the scripts folder whose set-up, ruff, mypy and python are
small stand-ins that record how they were called and exit as told: the arguments reach pytest
unchanged, the suite runs in parallel workers unless told not to, and a failing mypy fails the
command even when every test passes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the scripts are bash")


def _stub(path: Path, body: str) -> None:
    path.write_text("#!/usr/bin/env bash\n" + body + "\n")
    path.chmod(0o755)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "test.sh", tmp_path / "scripts" / "test.sh")
    _stub(tmp_path / "scripts" / "setup.sh", "exit 0")
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    _stub(venv / "ruff", 'exit "${RUFF_EXIT:-0}"')
    _stub(venv / "mypy", 'echo "mypy says: ${MYPY_SAYS:-Success: no issues found}"; exit "${MYPY_EXIT:-0}"')
    _stub(venv / "python", 'echo "pytest args: $*" > "$(dirname "$0")/../../pytest-args"; '
                           'echo "3 passed in 0.1s"; exit "${PYTEST_EXIT:-0}"')
    return tmp_path


def _run(tree: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "VITAL_TEST_WORKERS"}
    full.update(env)
    return subprocess.run(["bash", str(tree / "scripts" / "test.sh"), *args], env=full, capture_output=True,
                          text=True, timeout=60, check=False)


def test_arguments_reach_pytest_and_the_suite_runs_in_workers(tree: Path) -> None:
    done = _run(tree, "tests/test_lock.py", "-x")
    assert done.returncode == 0, done.stderr
    args = (tree / "pytest-args").read_text()
    assert "-m pytest -q -p no:cacheprovider -n" in args and "--dist loadfile tests/test_lock.py -x" in args
    workers = int(args.split(" -n ")[1].split()[0])
    assert workers >= 2
    assert "3 passed" in done.stdout
    assert "test: mypy: mypy says: Success" in done.stderr


def test_no_workers_when_asked(tree: Path) -> None:
    done = _run(tree, "tests/x.py", VITAL_TEST_WORKERS="0")
    assert done.returncode == 0, done.stderr
    args = (tree / "pytest-args").read_text()
    assert " -n " not in args and "--dist" not in args and args.strip().endswith("tests/x.py")


def test_a_failing_mypy_fails_the_command_when_the_tests_pass(tree: Path) -> None:
    done = _run(tree, MYPY_EXIT="1", MYPY_SAYS="vital_desktop/x.py:1: error: bad")
    assert done.returncode == 1
    assert "vital_desktop/x.py:1: error: bad" in done.stderr and "mypy found errors" in done.stderr


def test_failing_tests_keep_their_exit_status(tree: Path) -> None:
    done = _run(tree, PYTEST_EXIT="5")
    assert done.returncode == 5
    both = _run(tree, PYTEST_EXIT="1", MYPY_EXIT="1")
    assert both.returncode == 1


def test_a_ruff_finding_stops_before_the_tests(tree: Path) -> None:
    done = _run(tree, RUFF_EXIT="1")
    assert done.returncode == 1 and not (tree / "pytest-args").exists()


def _flags(**env: str) -> tuple[str, str]:
    # (nproc also honours OpenMP's thread limits: leave them out so it counts the cores)
    full = {k: v for k, v in os.environ.items()
            if k not in ("CMAKE_ARGS", "CMAKE_BUILD_PARALLEL_LEVEL", "OMP_NUM_THREADS", "OMP_THREAD_LIMIT")}
    full.update(env)
    out = subprocess.run(["bash", "-c", '. scripts/llama_build_flags.sh; printf "%s\\n%s" "$CMAKE_ARGS" '
                          '"$CMAKE_BUILD_PARALLEL_LEVEL"'], cwd=ROOT, env=full, capture_output=True, text=True,
                         check=True).stdout.split("\n")
    return out[0], out[1]


def test_llama_cpp_is_built_portable_and_text_only_on_every_core() -> None:
    args, parallel = _flags()
    assert "-DGGML_NATIVE=OFF" in args.split() and "-DLLAVA_BUILD=OFF" in args.split()
    assert int(parallel) == len(os.sched_getaffinity(0))  # what nproc counts
    # a caller's own flags replace ours whole, as before
    assert _flags(CMAKE_ARGS="-DGGML_CUDA=ON", CMAKE_BUILD_PARALLEL_LEVEL="7") == ("-DGGML_CUDA=ON", "7")
