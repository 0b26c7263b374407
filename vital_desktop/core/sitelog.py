"""One log per site: JSON lines under ``<site>/logs/``, rotated, shared by the app, the CLI and workers.

`configure(home, process=...)` attaches a single rotating JSON-lines handler to the root
logger (idempotent: calling it again for the same file does nothing; for another site it
moves the handler). Every record carries the time (UTC, ISO 8601), level, process role
(``app``, ``cli``, ``worker``…), pid, thread, logger name and message, plus the formatted
traceback when there is one, so an error a user saw can be diagnosed from the file alone.

`log_user_error(exc, context)` is what every place that *shows* an error calls: the message
the user read and the traceback go into the same log.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import threading
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOG_DIRNAME = "logs"
LOG_FILENAME = "vital.jsonl"
#: 5 MiB a file, 5 old files kept: 30 MiB at most on a laptop, weeks of normal use.
MAX_BYTES = 5 * 1024 * 1024
BACKUP_COUNT = 5

_lock = threading.Lock()
_handler: logging.Handler | None = None
_process = "vital"

log = logging.getLogger("vital_desktop")


def log_path(home: Path | str) -> Path:
    """Where the site's current log file is."""
    return Path(home) / LOG_DIRNAME / LOG_FILENAME


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line; never raises on odd arguments."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the record
            message = f"{record.msg!r} {record.args!r}"
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "process": getattr(record, "vital_process", _process),
            "pid": record.process,
            "thread": record.threadName,
            "logger": record.name,
            "message": message,
        }
        if record.exc_info:
            entry["traceback"] = "".join(traceback.format_exception(*record.exc_info))
        extra = getattr(record, "vital", None)
        if isinstance(extra, dict):
            entry["context"] = extra
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(home: Path | str, *, process: str, level: int | str | None = None) -> Path:
    """Send this process's logging to the site's JSON-lines log (and return its path).

    The level defaults to ``VITAL_LOG`` or INFO. Failing to create the log folder (a read-only
    site) is not fatal: logging then stays where it was.
    """
    global _handler, _process
    path = log_path(home)
    with _lock:
        _process = process
        if _handler is not None and getattr(_handler, "baseFilename", None) == str(path.resolve()):
            return path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(path.parent, 0o700)
            handler = logging.handlers.RotatingFileHandler(
                path, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT, encoding="utf-8", delay=False
            )
            os.chmod(path, 0o600)
        except OSError:
            return path
        handler.setFormatter(JsonLinesFormatter())
        root = logging.getLogger()
        if _handler is not None:
            root.removeHandler(_handler)
            _handler.close()
        root.addHandler(handler)
        _handler = handler
        wanted = level if level is not None else os.environ.get("VITAL_LOG", "INFO")
        root.setLevel(wanted if isinstance(wanted, int) else str(wanted).upper())
    return path


def detach() -> None:
    """Remove the site handler (tests, and a process that closes its site)."""
    global _handler
    with _lock:
        if _handler is not None:
            logging.getLogger().removeHandler(_handler)
            _handler.close()
            _handler = None


def log_user_error(exc: BaseException, context: str = "") -> None:
    """Log an error that is being shown to a user, with its traceback."""
    from vital_desktop.core.errors import Cancelled, VitalError

    level = logging.INFO if isinstance(exc, Cancelled) else logging.ERROR
    message = exc.message if isinstance(exc, VitalError) else f"{type(exc).__name__}: {exc}"
    log.log(level, "shown to the user%s: %s", f" ({context})" if context else "", message,
            exc_info=(type(exc), exc, exc.__traceback__))


def read_entries(home: Path | str, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The log's entries, oldest first, across rotated files (unparseable lines are kept as text)."""
    base = log_path(home)
    files = [base.with_name(f"{base.name}.{i}") for i in range(BACKUP_COUNT, 0, -1)] + [base]
    entries: list[dict[str, Any]] = []
    for file in files:
        if not file.is_file():
            continue
        with open(file, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                line = line.strip()
                if not line:
                    continue
                try:
                    entries.append(json.loads(line))
                except json.JSONDecodeError:
                    entries.append({"message": line, "unparsed": True})
    return entries[-limit:] if limit else entries
