"""DATA stage: sheets are pointers to a metadata file and an image folder, never copies.

Importing a sheet reads the metadata file in place (DuckDB's CSV/Parquet readers), joins each
row to its image by the image column, hashes the image files (in a thread pool: hashlib
releases the GIL), and writes the item index in one transaction through the Arrow bulk path.
Every check runs before anything is written, so a refused import leaves the store unchanged.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ConflictError, NotFoundError, ValidationError
from vital_desktop.core.ids import iso, new_id, new_ids
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.services.accounts import require
from vital_desktop.services.input_limits import header_size, mixed_line_endings, pixel_problem, refuse_long_cells
from vital_desktop.store import audit
from vital_desktop.store.bulk import insert_arrow
from vital_desktop.store.db import Store
from vital_desktop.store.models import Sheet, SheetItem

CLASSIFICATION_TAGS = ("PHI", "PII", "CONFIDENTIAL", "EXPORT_CONTROLLED")
METADATA_FORMATS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}
MAX_REPORTED = 20  # how many offending keys/rows an error message names


@dataclass(frozen=True)
class SheetInfo:
    id: str
    name: str
    description: str
    metadata_path: str
    metadata_format: str
    image_root: str | None
    key_column: str
    image_column: str | None
    columns: list[str]
    classification: list[str]
    item_count: int
    missing_count: int
    created_by: str
    created_at: str | None
    item_kind: str = "image"  # image, document or telemetry (services/item_kinds.py)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ItemInfo:
    item_ref: str
    position: int
    image_path: str | None
    absolute_image_path: str | None
    file_sha256: str | None
    file_size: int | None
    missing: bool
    metadata: dict[str, Any]

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ImportReport:
    sheet: SheetInfo
    items: int
    missing: list[str] = field(default_factory=list)
    labels: int = 0  # labels created from a folder-per-class layout

    def to_dict(self) -> dict:
        return {"sheet": self.sheet.to_dict(), "items": self.items, "missing_count": len(self.missing),
                "missing": self.missing[:MAX_REPORTED], "labels": self.labels}


def _sheet_info(row: Sheet) -> SheetInfo:
    return SheetInfo(
        id=row.id, name=row.name, description=row.description, metadata_path=row.metadata_path,
        metadata_format=row.metadata_format, image_root=row.image_root, key_column=row.key_column,
        image_column=row.image_column, columns=list(row.columns or []), classification=list(row.classification or []),
        item_count=row.item_count, missing_count=row.missing_count, created_by=row.created_by,
        created_at=iso(row.created_at), item_kind=row.item_kind or "image",
    )


def parse_classification(tags: str | list[str] | None) -> list[str]:
    """Normalise and check data classification tags (PHI, PII, CONFIDENTIAL, EXPORT_CONTROLLED)."""
    if tags is None:
        return []
    items = [t.strip().upper() for t in (tags.split(",") if isinstance(tags, str) else tags) if t.strip()]
    unknown = [t for t in items if t not in CLASSIFICATION_TAGS]
    if unknown:
        raise ValidationError(f"unknown classification tag(s) {', '.join(unknown)}; use {', '.join(CLASSIFICATION_TAGS)}")
    return sorted(set(items))


_PLAIN_TYPES = (pa.types.is_string, pa.types.is_large_string, pa.types.is_integer, pa.types.is_boolean,
                pa.types.is_floating, pa.types.is_null)


def metadata_column(table: pa.Table) -> pa.Array:
    """The `sheet_items.metadata` column for these rows (inserted with a cast to JSON): the rows
    themselves as a struct when every column is plain (text, integers, booleans, finite floats),
    which DuckDB turns into JSON objects in the insert; otherwise each row encoded here (NaN as
    null, dates as ISO text, bytes as hex). A Python object per row cost as much as hashing the
    row's image."""
    import pyarrow.compute as pc

    plain = table.num_columns > 0 and all(any(test(f.type) for test in _PLAIN_TYPES) for f in table.schema)
    for column in table.schema if plain else ():
        if pa.types.is_floating(column.type) and table.num_rows and pc.any(pc.invert(pc.is_finite(
                table.column(column.name).fill_null(0)))).as_py():
            plain = False  # NaN or infinity: null in JSON, which the row path writes
            break
    if plain:
        return pa.StructArray.from_arrays([c.combine_chunks() for c in table.columns], names=table.column_names)
    return pa.array([json.dumps(_jsonable(r), ensure_ascii=False) for r in table.to_pylist()], pa.string())


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def read_metadata(path: Path) -> tuple[str, pa.Table]:
    """Read a CSV or Parquet metadata file in place; unreadable files are a `ValidationError`."""
    import duckdb

    path = Path(path)
    fmt = METADATA_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValidationError(f"metadata file {path.name}: unsupported type {path.suffix!r}; use .csv or .parquet")
    if not path.is_file():
        raise ValidationError(f"metadata file {path} does not exist or is not a file")
    import tempfile

    try:
        with duckdb.connect() as conn, tempfile.TemporaryDirectory(prefix="vital-meta-") as alias_dir:
            reader = "read_csv_auto(?, header=true, sample_size=-1)" if fmt == "csv" else "read_parquet(?)"
            literal = str(path)
            if any(c in literal for c in "*?[]{}"):
                # DuckDB reads a path as a glob (meta[1].csv would read meta1.csv): go through a
                # link with a plain name so the file the user named is the file read.
                alias = Path(alias_dir) / f"metadata{path.suffix.lower()}"
                os.symlink(path.resolve(), alias)
                literal = str(alias)
            table = conn.sql(f"SELECT * FROM {reader}", params=[literal]).to_arrow_table()
    except Exception as exc:
        mixed = mixed_line_endings(path) if fmt == "csv" else None
        if mixed:
            raise ValidationError(f"metadata file {path.name} mixes Windows (CRLF) and Unix (LF) line endings "
                                  f"({mixed}); save it again with one kind of line ending") from exc
        raise ValidationError(f"cannot read metadata file {path.name}: {str(exc).splitlines()[0]}") from exc
    if table.num_rows == 0:
        raise ValidationError(f"metadata file {path.name} has no rows")
    refuse_long_cells(table, f"metadata file {path.name}")
    return fmt, table


def _is_escaping(rel: str) -> bool:
    """Absolute paths, drive letters, UNC paths and '..' components may point outside the image root.

    Plain string tests: this runs once per item inside the hashing pool, where pathlib's
    objects cost more interpreter time than the hash.
    """
    if not rel:
        return True
    posix = rel.replace("\\", "/")
    if posix.startswith("/") or (len(posix) >= 2 and posix[1] == ":"):
        return True
    return ".." in posix.split("/")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _hash_one(path: Path) -> tuple[str | None, int | None]:
    try:
        if not path.is_file():
            return None, None
        return sha256_file(path), path.stat().st_size
    except OSError:
        return None, None


_ESCAPES = ("escapes", None)
_TOO_LARGE = "too-large:"  # the hash slot of a refused image carries this prefix and the reason


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _check_and_hash(root: str, rel: str, real_dirs: dict[str, str]) -> tuple[str | None, int | None] | tuple[str, None]:
    """Inside the pool: refuse a path leaving `root`, then hash the file (None, None if absent).

    A link anywhere on the path may lead out, so the file's folder is resolved — once per
    folder, not per file (`real_dirs` caches it) — and the file itself when it is a link.
    """
    if _is_escaping(rel):
        return _ESCAPES
    path = os.path.join(root, rel)
    parent = os.path.dirname(path)
    real_parent = real_dirs.get(parent)
    if real_parent is None:
        real_parent = real_dirs.setdefault(parent, os.path.realpath(parent))
    if not _inside(real_parent, root) or (os.path.islink(path) and not _inside(os.path.realpath(path), root)):
        return _ESCAPES
    try:  # one open and one read for a small file: as little as the hash itself needs
        with open(path, "rb") as handle:
            # read() sized by the file: read(64 MiB) allocated 64 MiB per small file
            small = os.fstat(handle.fileno()).st_size < 1 << 26
            data = handle.read() if small else handle.read(1 << 16)
            pixels = header_size(data[:1 << 16])
            if pixels is not None and (problem := pixel_problem(*pixels)):
                return _TOO_LARGE + problem, None  # a decompression bomb: refused before decoding
            if small:
                return hashlib.sha256(data).hexdigest(), len(data)
    except OSError:
        return None, None
    return _hash_one(Path(path))


def import_sheet(
    store: Store,
    *,
    actor: User,
    name: str,
    metadata_path: Path | str | None,
    key_column: str | None = None,
    image_root: Path | str | None = None,
    image_column: str | None = None,
    classification: str | list[str] | None = None,
    description: str = "",
    progress: Progress | None = None,
    class_label_type: str | None = None,
) -> tuple[ImportReport, Changes]:
    """Build the item index of a new sheet. All checks run before the single write transaction.

    Without a metadata file the sheet is the image folder itself (see `sheet_folders`); with
    `class_label_type`, a folder-per-class layout also creates labels of that type.
    """
    require(actor, "import_sheet")
    progress = progress or Progress()
    name = (name or "").strip()
    if not name:
        raise ValidationError("a sheet needs a name")
    tags = parse_classification(classification)
    if metadata_path is None:
        from vital_desktop.services.sheet_folders import import_folder

        if image_root is None:
            raise ValidationError("a sheet needs a metadata file, an image folder (--images DIR), or both")
        return import_folder(store, actor=actor, name=name, image_root=image_root, classification=tags,
                             description=description, class_label_type=class_label_type, progress=progress)
    if class_label_type:
        raise ValidationError("labels from class folders need a sheet made from the folder alone (no metadata file)")
    if not key_column:
        raise ValidationError("a sheet from a metadata file needs its key column (--key)")
    metadata_path = Path(metadata_path).expanduser().resolve()
    with store.read() as s:
        if s.scalar(sa.select(Sheet.id).where(Sheet.name == name)) is not None:
            raise ConflictError(f"a sheet named {name!r} already exists")
    fmt, table = read_metadata(metadata_path)
    columns = table.column_names
    for label, col in (("key", key_column), ("image", image_column)):
        if col is not None and col not in columns:
            raise ValidationError(
                f"{label} column {col!r} is not in {metadata_path.name}; its columns are: {', '.join(columns)}"
            )
    if image_column is not None and image_root is None:
        raise ValidationError("an image column needs an image folder (--images DIR)")
    root: Path | None = None
    if image_root is not None:
        root = Path(image_root).expanduser().resolve()
        if not root.is_dir():
            raise ValidationError(f"image folder {root} does not exist or is not a folder")

    keys = [None if v is None else str(v) for v in table.column(key_column).to_pylist()]
    blanks = [i + 2 for i, k in enumerate(keys) if k is None or not k.strip()]
    if blanks:
        raise ValidationError(f"key column {key_column!r} is empty on row(s) {', '.join(map(str, blanks[:MAX_REPORTED]))}")
    seen: dict[str, int] = {}
    duplicates: list[str] = []
    for i, k in enumerate(keys):
        if k in seen and k not in duplicates:
            duplicates.append(k)
        seen.setdefault(str(k), i)
    if duplicates:
        raise ValidationError(
            f"key column {key_column!r} has duplicate values: {', '.join(duplicates[:MAX_REPORTED])}"
            + (f" (and {len(duplicates) - MAX_REPORTED} more)" if len(duplicates) > MAX_REPORTED else "")
        )

    rel_paths: list[str | None] = [None] * len(keys)
    if image_column is not None and root is not None:
        for i, value in enumerate(table.column(image_column).to_pylist()):
            if value is not None and str(value).strip() != "":
                rel_paths[i] = str(value).strip().replace("\\", "/")

    # Path checks and hashing run together in the pool: a serial pass of resolve() calls
    # before hashing starts cost as much as the hashing itself.
    todo = [i for i, rel in enumerate(rel_paths) if rel is not None]
    progress.start(len(todo), f"hashing {len(todo)} images")
    hashes: list[tuple[str | None, int | None]] = [(None, None)] * len(keys)
    escaping: list[str] = []
    too_large: list[str] = []

    def encode_metadata() -> pa.Array:
        return metadata_column(table)

    from vital_desktop.services.sheet_scan import map_in_pool

    real_dirs: dict[str, str] = {}
    results = map_in_pool(lambda i: _check_and_hash(str(root), rel_paths[i] or "", real_dirs),
                          todo if root is not None else [],
                          progress, alongside=encode_metadata)
    metadata_json = results.pop()
    if root is not None and todo:
        for i, result in zip(todo, results, strict=True):
            if result == _ESCAPES:
                escaping.append(f"row {i + 2} ({keys[i]}): {rel_paths[i]}")
            elif str(result[0]).startswith(_TOO_LARGE):
                too_large.append(f"row {i + 2} ({keys[i]}): {rel_paths[i]}: {str(result[0])[len(_TOO_LARGE):]}")
            else:
                hashes[i] = result
    if too_large:
        raise ValidationError("images that cannot be used: " + "; ".join(too_large[:MAX_REPORTED]))
    if escaping:
        raise ValidationError(
            "image paths must stay inside the image folder; these escape it: " + "; ".join(escaping[:MAX_REPORTED])
        )

    absent = [image_column is not None and h is None for h, _ in hashes]
    missing = [str(k) for k, gone in zip(keys, absent, strict=True) if gone]
    sheet_id = new_id()
    items = pa.table({
        "id": new_ids(len(keys)),
        "sheet_id": [sheet_id] * len(keys),
        "item_ref": keys,
        "position": list(range(len(keys))),
        "image_path": rel_paths,
        "file_sha256": [h for h, _ in hashes],
        "file_size": pa.array([n for _, n in hashes], pa.int64()),
        "missing": absent,
        "metadata": metadata_json,
    })
    with store.session() as s:
        sheet = Sheet(
            id=sheet_id, name=name, description=description, metadata_path=str(metadata_path), metadata_format=fmt,
            image_root=str(root) if root else None, key_column=key_column, image_column=image_column,
            columns=columns, classification=tags, item_count=len(keys), missing_count=len(missing),
            created_by=actor.username,
        )
        s.add(sheet)
        s.flush()
        insert_arrow(s, "sheet_items", items, casts={"metadata": "JSON"})
        audit.record(s, actor, "sheet.import", name, {"items": len(keys), "missing": len(missing),
                                                        "classification": tags, "metadata": str(metadata_path)})
        info = _sheet_info(sheet)
    progress.finish(f"imported {len(keys)} items")
    return ImportReport(info, len(keys), missing), Changes(sheets=True)


def list_sheets(store: Store) -> list[SheetInfo]:
    with store.read() as s:
        return [_sheet_info(r) for r in s.scalars(sa.select(Sheet).order_by(Sheet.name))]


def find_sheet(s: sa.orm.Session, ref: str) -> Sheet:
    row = s.scalar(sa.select(Sheet).where(sa.or_(Sheet.name == ref, Sheet.id == ref)))
    if row is None:
        names = s.scalars(sa.select(Sheet.name).order_by(Sheet.name)).all()
        raise NotFoundError(f"no sheet named {ref!r}" + (f"; sheets here: {', '.join(names)}" if names else ""))
    return row


def get_sheet(store: Store, ref: str) -> SheetInfo:
    """A sheet by name or id."""
    with store.read() as s:
        return _sheet_info(find_sheet(s, ref))


def _item_info(row: SheetItem, root: str | None) -> ItemInfo:
    absolute = str(Path(root) / row.image_path) if (root and row.image_path) else None
    return ItemInfo(row.item_ref, row.position, row.image_path, absolute, row.file_sha256, row.file_size,
                    row.missing, row.item_metadata or {})


def list_items(
    store: Store, sheet: str, *, offset: int = 0, limit: int | None = 100, item_refs: list[str] | None = None
) -> list[ItemInfo]:
    """Items in sheet order, a page at a time (the GUI fetches on demand)."""
    with store.read() as s:
        row = find_sheet(s, sheet)
        query = sa.select(SheetItem).where(SheetItem.sheet_id == row.id)
        if item_refs is not None:
            query = query.where(SheetItem.item_ref.in_(item_refs))
        query = query.order_by(SheetItem.position).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        return [_item_info(r, row.image_root) for r in s.scalars(query)]


def get_item(store: Store, sheet: str, item_ref: str) -> ItemInfo:
    items = list_items(store, sheet, item_refs=[item_ref], limit=None)
    if not items:
        raise NotFoundError(f"sheet {sheet!r} has no item {item_ref!r}")
    return items[0]


def item_refs(store: Store, sheet: str) -> list[str]:
    with store.read() as s:
        row = find_sheet(s, sheet)
        return list(s.scalars(sa.select(SheetItem.item_ref).where(SheetItem.sheet_id == row.id).order_by(SheetItem.position)))


@dataclass(frozen=True)
class ImportPreview:
    """What an import would join, shown by the GUI's Create Sheet wizard before any write."""

    columns: list[str]
    total_rows: int
    #: (item key, image path as written, whether that file exists) for the first rows
    rows: list[tuple[str, str | None, bool]]
    #: key values that occur more than once in the whole file (the import would refuse them)
    duplicate_keys: list[str] = field(default_factory=list)
    #: "row N (key): path" of image paths that escape the image folder (refused too)
    escaping_paths: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def preview_import(
    metadata_path: Path | str, *, key_column: str | None = None, image_root: Path | str | None = None,
    image_column: str | None = None, limit: int = 10,
) -> ImportPreview:
    """Read the metadata file and check the first rows' images, writing nothing."""
    _, table = read_metadata(Path(metadata_path).expanduser())
    columns = table.column_names
    rows: list[tuple[str, str | None, bool]] = []
    if key_column is not None and key_column in columns:
        head = table.slice(0, limit)
        keys = ["" if v is None else str(v) for v in head.column(key_column).to_pylist()]
        images: list[str | None] = [None] * len(keys)
        if image_column is not None and image_column in columns:
            images = [None if v is None else str(v) for v in head.column(image_column).to_pylist()]
        root = Path(image_root).expanduser() if image_root else None
        for key, image in zip(keys, images, strict=True):
            exists = bool(root and image and not _is_escaping(image) and (root / image).is_file())
            rows.append((key, image, exists))
    duplicates: list[str] = []
    escaping: list[str] = []
    if key_column is not None and key_column in columns:
        all_keys = ["" if v is None else str(v) for v in table.column(key_column).to_pylist()]
        seen: set[str] = set()
        for key in all_keys:
            if key in seen and key not in duplicates and len(duplicates) < MAX_REPORTED:
                duplicates.append(key)
            seen.add(key)
        if image_column is not None and image_column in columns:
            for i, value in enumerate(table.column(image_column).to_pylist()):
                if value is not None and _is_escaping(str(value)) and len(escaping) < MAX_REPORTED:
                    escaping.append(f"row {i + 2} ({all_keys[i]}): {value}")
    return ImportPreview(columns, table.num_rows, rows, duplicates, escaping)


@dataclass(frozen=True)
class RelocateReport:
    sheet: SheetInfo
    checked: int
    mismatched: list[str]
    missing: list[str]

    def to_dict(self) -> dict:
        return {"sheet": self.sheet.to_dict(), "checked": self.checked, "mismatched": self.mismatched[:MAX_REPORTED],
                "missing": self.missing[:MAX_REPORTED]}


def relocate_sheet(
    store: Store, *, actor: User, sheet: str, image_root: Path | str | None = None,
    metadata_path: Path | str | None = None, progress: Progress | None = None,
) -> tuple[RelocateReport, Changes]:
    """Point a sheet at the same images in another place (another drive letter, mount point or
    copy). Every image is hashed against the index first: a folder whose files differ is refused,
    so a relocation can never silently swap the pictures under existing labels."""
    require(actor, "import_sheet")
    progress = progress or Progress()
    if image_root is None and metadata_path is None:
        raise ValidationError("say where the sheet moved: a new image folder and/or metadata file")
    root = Path(image_root).expanduser().resolve() if image_root is not None else None
    if root is not None and not root.is_dir():
        raise ValidationError(f"image folder {root} does not exist or is not a folder")
    new_metadata = Path(metadata_path).expanduser().resolve() if metadata_path is not None else None
    if new_metadata is not None and not new_metadata.is_file():
        raise ValidationError(f"metadata file {new_metadata} does not exist")
    with store.read() as s:
        row = find_sheet(s, sheet)
        if root is not None and row.image_column is None:
            raise ValidationError(f"sheet {row.name!r} has no images to relocate")
        indexed = [] if root is None else list(s.execute(
            sa.select(SheetItem.item_ref, SheetItem.image_path, SheetItem.file_sha256)
            .where(SheetItem.sheet_id == row.id, SheetItem.missing.is_(False), SheetItem.image_path.is_not(None))))
    progress.start(len(indexed), f"checking {len(indexed)} images in {root}")
    mismatched: list[str] = []
    missing: list[str] = []
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        results = pool.map(lambda entry: (entry, _hash_one((Path(str(root)) / entry[1]).resolve())), indexed)
        for (item_ref, _, expected), (digest, _) in results:
            progress.check()
            if digest is None:
                missing.append(item_ref)
            elif digest != expected:
                mismatched.append(item_ref)
            progress.advance()
    if mismatched or missing:
        problems = []
        if mismatched:
            problems.append(f"{len(mismatched)} image(s) differ from the indexed files (e.g. {', '.join(mismatched[:5])})")
        if missing:
            problems.append(f"{len(missing)} image(s) are not there (e.g. {', '.join(missing[:5])})")
        raise ValidationError(f"{root} does not hold this sheet's images: " + "; ".join(problems))
    with store.session() as s:
        row = find_sheet(s, sheet)
        old = row.image_root
        if root is not None:
            row.image_root = str(root)
        if new_metadata is not None:
            row.metadata_path = str(new_metadata)
        audit.record(s, actor, "sheet.relocate", row.name, {"from": old, "to": row.image_root, "checked": len(indexed),
                                                            "metadata": row.metadata_path})
        s.flush()
        info = _sheet_info(row)
    progress.finish(f"relocated {row.name}")
    return RelocateReport(info, len(indexed), [], []), Changes(sheets=True)
