"""Reading a GGUF file's metadata (key/value header) without loading the model.

A GGUF file starts with ``GGUF``, a format version, the tensor and key/value counts, then the
key/values (the chat template among them: ``tokenizer.chat_template``), then the tensor
descriptions and, aligned, the tensor data. Registering a model reads only this header, so a
multi-gigabyte model is checked in milliseconds (the tokenizer's arrays are skipped, not
decoded). Every length read from the file is capped: a hostile header cannot make us allocate
more than `MAX_STRING` bytes for one value or walk more than `MAX_ITEMS` entries.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from vital_desktop.core.errors import ValidationError

MAGIC = b"GGUF"
MAX_STRING = 4 * 1024 * 1024  # a chat template is a few KB; 4 MiB is generous
MAX_ITEMS = 10_000_000  # entries of one array (vocabularies reach ~260k)
MAX_KEYS = 100_000
#: The keys whose values are kept (arrays are skipped whatever their key).
KEPT_PREFIXES = ("general.", "tokenizer.chat_template", "tokenizer.ggml.model", "tokenizer.ggml.bos_token_id",
                 "tokenizer.ggml.eos_token_id")

# value type → struct format (scalar types)
_SCALARS: dict[int, str] = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
                            11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class GgufHeader:
    """What the header says: format version, counts, and the kept key/values."""

    version: int
    tensor_count: int
    metadata: dict[str, Any] = field(default_factory=dict)
    context_length: int | None = None

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) and value.strip() else None

    @property
    def architecture(self) -> str | None:
        value = self.metadata.get("general.architecture")
        return value if isinstance(value, str) else None

    def card(self) -> dict[str, Any]:
        """The facts a registry card keeps about the file."""
        import hashlib

        template = self.chat_template
        return {"format": "gguf", "gguf_version": self.version, "architecture": self.architecture,
                "model_name": self.metadata.get("general.name"), "context_length": self.context_length,
                "chat_template": bool(template),
                "chat_template_sha256": hashlib.sha256(template.encode("utf-8")).hexdigest() if template else None}


class _Reader:
    def __init__(self, handle: BinaryIO, name: str) -> None:
        self.handle = handle
        self.name = name

    def take(self, n: int) -> bytes:
        data = self.handle.read(n)
        if len(data) != n:
            raise ValidationError(f"{self.name} is cut short inside its GGUF header")
        return data

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self, keep: bool = True) -> str | None:
        length = self.scalar("<Q")
        if length > MAX_STRING:
            raise ValidationError(f"{self.name} declares a {length}-byte text in its GGUF header (limit {MAX_STRING})")
        if not keep:
            self.handle.seek(length, 1)
            return None
        try:
            return self.take(length).decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError(f"{self.name} has text in its GGUF header that is not UTF-8") from None

    def value(self, kind: int, keep: bool) -> Any:
        if kind in _SCALARS:
            return self.scalar(_SCALARS[kind])
        if kind == _STRING:
            return self.string(keep)
        if kind == _ARRAY:
            item_kind, count = self.scalar("<I"), self.scalar("<Q")
            if count > MAX_ITEMS:
                raise ValidationError(f"{self.name} declares a {count}-entry array in its GGUF header")
            if item_kind in _SCALARS:  # skip fixed-size items in one seek
                self.handle.seek(struct.calcsize(_SCALARS[item_kind]) * count, 1)
            else:
                for _ in range(count):
                    self.value(item_kind, keep=False)
            return None
        raise ValidationError(f"{self.name} has an unknown value type {kind} in its GGUF header")


def read_header(path: Path | str) -> GgufHeader:
    """The GGUF header of `path`; a `ValidationError` naming the problem for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"no GGUF file at {path}")
    with path.open("rb") as handle:
        reader = _Reader(handle, path.name)
        if handle.read(4) != MAGIC:
            raise ValidationError(f"{path.name} is not a GGUF model (the file does not start with the GGUF magic bytes)")
        version = reader.scalar("<I")
        if version < 2:
            raise ValidationError(f"{path.name} is GGUF version {version}; llama.cpp needs version 2 or newer")
        tensors, keys = reader.scalar("<Q"), reader.scalar("<Q")
        if keys > MAX_KEYS:
            raise ValidationError(f"{path.name} declares {keys} metadata keys")
        metadata: dict[str, Any] = {}
        for _ in range(keys):
            key = reader.string() or ""
            kind = reader.scalar("<I")
            keep = key.startswith(KEPT_PREFIXES) or key.endswith(".context_length")
            value = reader.value(kind, keep)
            if keep and value is not None:
                metadata[key] = value
    arch = metadata.get("general.architecture")
    context = metadata.get(f"{arch}.context_length") if isinstance(arch, str) else None
    return GgufHeader(version, int(tensors), metadata, int(context) if isinstance(context, int) else None)
