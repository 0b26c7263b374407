"""The `vital` command while the desktop app holds the site: hand the command to the app.

DuckDB lets one process open a store file, and the desktop app keeps its site open for as long
as it runs. So that administrators and scripts can still use `vital` (even a read-only
`vital sheet list`) while an inspector works in the app, the app listens on a same-user-only
local socket; the command line, finding the store in use, sends its arguments there, the app
runs the very same command (`cli.main`) on its already open store in a worker thread, and the
command line prints what comes back — stdout, stderr (progress bars included) and the exit
status — exactly as it would have printed them alone. Only one process ever opens the file.

Security: the socket lives in a folder only this user can enter (``$XDG_RUNTIME_DIR`` or the
temporary folder, ``vital-<uid>/``, mode 0700, owner checked), each side checks the other's
uid with ``SO_PEERCRED`` where the platform has it, and a request is capped at 1 MiB. The
password travels over that socket only, and the app signs the user in exactly as the command
line would (throttling and audit included).

Wire format: one JSON object per line. The client sends one request
``{"version": 1, "argv": [...], "user": ..., "password": ..., "stdout_tty": bool,
"stderr_tty": bool}``; the server answers with any number of ``{"out": text}`` /
``{"err": text}`` lines and then ``{"exit": code}``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import socket
import struct
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from vital_desktop.core.progress import ProgressSnapshot

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
MAX_REQUEST_BYTES = 1 << 20
#: Commands that cannot run inside the app: `init` must own the store file itself, and the user
#: commands that read a new password from the caller's environment (the app's is not the caller's).
EXCLUSIVE_COMMANDS = frozenset({"init", "user add", "user passwd"})


# --- where the socket is ----------------------------------------------------------------------


def _runtime_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(base) / f"vital-{uid}"


def _private_dir() -> Path:
    """The socket folder, created 0700; refused if another user owns it (a planted folder)."""
    path = _runtime_dir()
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.stat()
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise PermissionError(f"{path} belongs to another user")
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def socket_path(home: Path | str) -> Path:
    """The app's socket for a site folder (short and fixed, whatever the folder's path length)."""
    digest = hashlib.sha256(str(Path(home).expanduser().resolve()).encode("utf-8")).hexdigest()[:24]
    return _runtime_dir() / f"{digest}.sock"


def _peer_uid(conn: socket.socket) -> int | None:
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    raw = conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", raw)
    return int(uid)


def _same_user(conn: socket.socket) -> bool:
    uid = _peer_uid(conn)
    return uid is None or not hasattr(os, "getuid") or uid == os.getuid()


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    conn.sendall((json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8"))


# --- routing one thread's stdout/stderr into the socket ---------------------------------------


_routes = threading.local()


class _StreamRouter(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr: a thread running a bridged command writes to its
    client; every other thread writes where it always did."""

    def __init__(self, original: TextIO, kind: str) -> None:
        self.original = original
        self.kind = kind

    def _target(self) -> Any:
        return getattr(_routes, self.kind, None)

    def write(self, text: str) -> int:  # type: ignore[override]
        target = self._target()
        if target is None:
            return self.original.write(text)
        target(text)
        return len(text)

    def flush(self) -> None:
        if self._target() is None:
            self.original.flush()

    def isatty(self) -> bool:
        target = self._target()
        if target is None:
            return self.original.isatty()
        return bool(getattr(_routes, f"{self.kind}_tty", False))

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


_install_lock = threading.Lock()


def _ensure_routers() -> None:
    """Put the routers in front of sys.stdout/sys.stderr unless they already are (something —
    a test runner's capture, an embedding host — may have replaced them since)."""
    with _install_lock:
        for name, kind in (("stdout", "out"), ("stderr", "err")):
            current = getattr(sys, name)
            if not isinstance(current, _StreamRouter):
                setattr(sys, name, _StreamRouter(current, kind))


def _remove_routers() -> None:
    with _install_lock:
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            if isinstance(current, _StreamRouter):
                setattr(sys, name, current.original)


@contextlib.contextmanager
def _routed(out: Callable[[str], None], err: Callable[[str], None], out_tty: bool, err_tty: bool) -> Iterator[None]:
    _ensure_routers()
    _routes.out, _routes.err, _routes.out_tty, _routes.err_tty = out, err, out_tty, err_tty
    try:
        yield
    finally:
        _routes.out = _routes.err = None


# --- the server (inside the desktop app) --------------------------------------------------------


@dataclass(frozen=True)
class BridgedCommand:
    """What the app is told about a command it runs for the command line."""

    title: str
    argv: tuple[str, ...]


class BridgeServer:
    """Listens for `vital` commands on the site's socket and runs them on the open store.

    `on_start(command)` / `on_progress(command, snapshot)` / `on_end(command, exit_code)` let the
    app show the command in its status bar and refresh its pages; they are called from the
    command's thread (the app marshals them to the GUI thread).
    """

    def __init__(
        self,
        home: Path | str,
        store: Any,
        *,
        on_start: Callable[[BridgedCommand], None] | None = None,
        on_progress: Callable[[BridgedCommand, ProgressSnapshot], None] | None = None,
        on_end: Callable[[BridgedCommand, int], None] | None = None,
    ) -> None:
        self.home = Path(home)
        self.store = store
        self.path = socket_path(home)
        self._on_start, self._on_progress, self._on_end = on_start, on_progress, on_end
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._workers: set[threading.Thread] = set()
        self._workers_lock = threading.Lock()

    def start(self) -> bool:
        """Start listening; False (logged) where the platform or folder does not allow it."""
        if not hasattr(socket, "AF_UNIX"):
            log.warning("command-line bridge unavailable: this platform has no Unix sockets")
            return False
        try:
            _private_dir()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # a stale socket of an app that died (we hold the store now)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old_umask = os.umask(0o177)
            try:
                sock.bind(str(self.path))
            finally:
                os.umask(old_umask)
            sock.listen(8)
            sock.settimeout(0.2)
        except OSError as exc:
            log.warning("command-line bridge unavailable: %s", exc)
            return False
        self._sock = sock
        self._thread = threading.Thread(target=self._accept_loop, name="vital-bridge", daemon=True)
        self._thread.start()
        log.info("command-line bridge listening on %s", self.path)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, wait for running commands (they finish or are cancelled by the app)."""
        if self._sock is None:
            return
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with contextlib.suppress(OSError):
            self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        with self._workers_lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(timeout)
        self._sock = None
        _remove_routers()

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            worker = threading.Thread(target=self._serve, args=(conn,), name="vital-bridge-command", daemon=True)
            with self._workers_lock:
                self._workers.add(worker)
            worker.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(30)
                if not _same_user(conn):
                    log.warning("command-line bridge: refused a connection from another user")
                    return
                request = _read_request(conn)
                if request is None:
                    _send(conn, {"err": "vital: malformed request to the desktop app\n"})
                    _send(conn, {"exit": 2})
                    return
                conn.settimeout(None)
                code = self._run(conn, request)
                with contextlib.suppress(OSError):
                    _send(conn, {"exit": code})
        except OSError as exc:
            log.info("command-line bridge: client went away (%s)", exc)
        finally:
            with self._workers_lock:
                self._workers.discard(threading.current_thread())

    def _run(self, conn: socket.socket, request: dict[str, Any]) -> int:
        from vital_desktop import cli

        argv = [str(a) for a in request.get("argv", [])]
        command = BridgedCommand(title="vital " + " ".join(a for a in argv if not a.startswith("--"))[:80],
                                 argv=tuple(argv))
        lost = threading.Event()

        def writer(kind: str) -> Callable[[str], None]:
            def write(text: str) -> None:
                if text and not lost.is_set():
                    try:
                        _send(conn, {kind: text})
                    except OSError:
                        lost.set()  # the terminal closed (Ctrl+C, `| head`): finish quietly

            return write

        if self._on_start:
            self._on_start(command)
        on_progress = self._on_progress
        mirror = (lambda snap: on_progress(command, snap)) if on_progress is not None else None
        code = 1
        try:
            with _routed(writer("out"), writer("err"), bool(request.get("stdout_tty")),
                         bool(request.get("stderr_tty"))):
                code = cli.main(
                    argv, store=self.store, username=request.get("user"), password=request.get("password"),
                    on_progress=mirror,
                    exclusive_refused=EXCLUSIVE_COMMANDS,
                )
        except SystemExit as exc:  # argparse's --help / usage errors
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        except Exception as exc:
            log.exception("bridged command %s failed", command.title)
            writer("err")(f"vital: the desktop app could not run the command: {exc}\n")
            code = 1
        finally:
            if self._on_end:
                self._on_end(command, code)
        return int(code)


def _read_request(conn: socket.socket) -> dict[str, Any] | None:
    buffer = b""
    while b"\n" not in buffer:
        chunk = conn.recv(65536)
        if not chunk:
            break
        buffer += chunk
        if len(buffer) > MAX_REQUEST_BYTES:
            return None
    line = buffer.split(b"\n", 1)[0]
    try:
        request = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(request, dict) or request.get("version") != PROTOCOL_VERSION:
        return None
    if not isinstance(request.get("argv"), list):
        return None
    return request


# --- the client (the `vital` command) ------------------------------------------------------------


def connect(home: Path | str, timeout: float = 2.0) -> socket.socket | None:
    """A connection to the desktop app holding `home`, or None when no app listens there."""
    if not hasattr(socket, "AF_UNIX"):
        return None
    path = socket_path(home)
    if not path.exists():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    if not _same_user(sock):
        sock.close()
        return None
    return sock


def forward(
    sock: socket.socket,
    argv: list[str],
    *,
    user: str | None,
    password: str | None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Send one command to the app and relay its output; returns its exit status."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    request = {
        "version": PROTOCOL_VERSION, "argv": list(argv), "user": user, "password": password,
        "stdout_tty": _isatty(stdout), "stderr_tty": _isatty(stderr),
    }
    with sock:
        sock.settimeout(None)
        _send(sock, request)
        reader = sock.makefile("r", encoding="utf-8", newline="\n")
        for line in reader:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "out" in message:
                stdout.write(message["out"])
                stdout.flush()
            elif "err" in message:
                stderr.write(message["err"])
                stderr.flush()
            elif "exit" in message:
                return int(message["exit"])
    stderr.write("vital: the desktop app closed the connection before the command finished\n")
    return 1


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
