"""Trial runs of untrusted model files (imported from bundles) in a child process with a memory cap.

A model that passes the format checks can still refuse to run, or cost gigabytes per call (a
``ConstantOfShape`` node asking for 4 GB). Before such a model is accepted it is loaded and
run once on a dummy input in a separate Python process whose address space is capped with
``resource.setrlimit(RLIMIT_AS)`` and whose wall time is bounded; a crash, an allocation
failure or a timeout there refuses the model and costs this process nothing.

- ONNX (`trial_run_onnx`): only the standard operator domains (`ALLOWED_ONNX_DOMAINS`) are
  accepted, checked statically first (custom-domain ops need code this site does not have);
  then an onnxruntime session runs every input filled with zeros (dynamic dimensions = 1).
- GGUF (`trial_load_gguf`): llama.cpp loads the file with ``vocab_only=True`` (header,
  metadata and vocabulary parsed; weights not loaded), so a valid magic with garbage inside
  is refused.

The child is ``sys.executable -c ...``; on a platform without ``resource`` (Windows) the cap
is not applied and the timeout alone bounds the trial.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from vital_desktop.core.errors import ValidationError

ALLOWED_ONNX_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
TRIAL_MEMORY_BYTES = 1024**3
TRIAL_TIMEOUT_S = 120

_CAP = """
import sys
try:
    import resource
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
except (ImportError, ValueError, OSError):
    pass
"""

_ONNX_CHILD = _CAP + """
import numpy as np
import onnxruntime as ort
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
options.log_severity_level = 3
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
types = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
         "tensor(int32)": np.int32, "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}
feeds = {}
for item in session.get_inputs():
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in item.shape]
    feeds[item.name] = np.zeros(shape, dtype=types.get(item.type, np.float32))
session.run(None, feeds)
print("trial ok")
"""

_GGUF_CHILD = _CAP + """
from llama_cpp import Llama
Llama(model_path=sys.argv[1], vocab_only=True, verbose=False, n_threads=1)
print("trial ok")
"""


def _memory_for(path: Path, memory_bytes: int | None) -> int:
    if memory_bytes is not None:
        return memory_bytes
    # Room for the runtime itself plus a few copies of the weights; a bomb asks for far more.
    return max(TRIAL_MEMORY_BYTES, 4 * path.stat().st_size + 512 * 1024**2)


def _run_child(code: str, path: Path, memory: int, timeout: float, what: str) -> None:
    try:
        result = subprocess.run([sys.executable, "-c", code, str(path), str(memory)], capture_output=True,
                                text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ValidationError(f"the {what} did not finish a trial run within {timeout:.0f} s") from None
    except OSError as exc:
        raise ValidationError(f"the {what} trial run could not start: {exc.strerror or exc}") from None
    if result.returncode != 0 or "trial ok" not in result.stdout:
        lines = [line for line in (result.stderr or "").splitlines() if line.strip()]
        why = lines[-1][:300] if lines else f"exit status {result.returncode}"
        if "allocate" in why.lower() or "memoryerror" in why.lower() or result.returncode < 0:
            why = f"it needs more than {memory // 1024**2} MiB of memory for one run ({why})"
        raise ValidationError(f"the {what} does not run: {why}")


def check_onnx_domains(path: Path) -> None:
    """Refuse operators outside the standard domains (custom ops need code this site lacks)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any parser failure is a refusal
        raise ValidationError(f"the ONNX model cannot be read: {str(exc)[:200]}") from None
    nodes = list(model.graph.node) + [n for f in model.functions for n in f.node]
    for graph_node in nodes:
        if graph_node.domain not in ALLOWED_ONNX_DOMAINS:
            raise ValidationError(f"the ONNX model uses operator {graph_node.op_type!r} from the custom domain "
                                  f"{graph_node.domain!r}; only standard ONNX operators can run here")
    for opset in model.opset_import:
        if opset.domain not in ALLOWED_ONNX_DOMAINS:
            raise ValidationError(f"the ONNX model imports the custom operator set {opset.domain!r}")


#: (file SHA-256, memory cap) of ONNX files that passed a trial run in this process: the same
#: bytes are not run again (a bundle's payload is tried at import, then again at registration).
_PASSED: set[tuple[str, int]] = set()
_PASSED_LOCK = threading.Lock()


def trial_run_onnx(path: Path | str, *, memory_bytes: int | None = None, timeout: float = TRIAL_TIMEOUT_S) -> None:
    """Raise `ValidationError` unless the model runs once on zeros within the memory cap."""
    from vital_desktop.inference.classifier import file_sha256

    path = Path(path)
    memory = _memory_for(path, memory_bytes)
    key = (file_sha256(path), memory)
    with _PASSED_LOCK:
        if key in _PASSED:
            return
    check_onnx_domains(path)
    _run_child(_ONNX_CHILD, path, memory, timeout, "ONNX model")
    with _PASSED_LOCK:
        _PASSED.add(key)


def trial_load_gguf(path: Path | str, *, memory_bytes: int | None = None, timeout: float = TRIAL_TIMEOUT_S) -> None:
    """Raise `ValidationError` unless llama.cpp loads the file's header and vocabulary."""
    path = Path(path)
    memory = memory_bytes if memory_bytes is not None else 2 * TRIAL_MEMORY_BYTES
    _run_child(_GGUF_CHILD, path, memory, timeout, "GGUF model")
