"""Caps on every length an untrusted file can declare (python-tuf's `config.py` idea).

A value read from a stick is compared with one of these before it is used to size a read,
an allocation or a loop, so a hostile bundle cannot make the importer read, allocate or
iterate more than these bounds.
"""

from __future__ import annotations

from typing import Final

#: Whole bundle file (a 100 MB model plus tables fits with room to spare).
MAX_BUNDLE_BYTES: Final = 8 * 1024**3
#: The signed manifest (canonical JSON).
MAX_MANIFEST_BYTES: Final = 1024 * 1024
#: Signatures on one manifest or one root document.
MAX_SIGNATURES: Final = 16
#: Entries in one manifest.
MAX_ENTRIES: Final = 4096
#: One JSON payload (template, model card, root metadata, config).
MAX_JSON_PAYLOAD_BYTES: Final = 4 * 1024 * 1024
#: One root metadata envelope (a DSSE JSON document).
MAX_ROOT_BYTES: Final = 256 * 1024
#: Nesting depth of any JSON document read from a bundle.
MAX_JSON_DEPTH: Final = 32
#: Root versions that one truststore bundle may walk through.
MAX_ROOT_CHAIN: Final = 64
#: Rows in one Parquet table payload.
MAX_TABLE_ROWS: Final = 5_000_000
#: Memory one table payload may take once decoded (declared uncompressed pages and decoded strings).
MAX_TABLE_BYTES: Final = 512 * 1024**2
#: Read size when streaming files (copy, hash, extract).
CHUNK_BYTES: Final = 1024 * 1024
#: Tolerated difference between the hub's clock and the site's, in seconds.
CLOCK_SKEW_SECONDS: Final = 300
#: Length of a logical payload name.
MAX_NAME_LENGTH: Final = 128
