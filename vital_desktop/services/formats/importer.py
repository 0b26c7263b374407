"""`import_labels`: a label file (or folder) of any registered format into canonical labels.

One transaction per file through the one write path (`labels.prepare_records` +
`labels.upsert_records`): a label that disagrees with an existing one becomes a conflict for
review, never an overwrite. Every check runs before anything is written — item matching,
classes, coordinates converted to pixels, geometry against the image — so a refused file
leaves the store unchanged and the error names the file's row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import sqlalchemy as sa

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ValidationError
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.services.accounts import require
from vital_desktop.services.formats.base import (
    CLASS_KINDS,
    SHAPE_KINDS,
    ImageLabels,
    TypeSpec,
    data_from_image,
    labels_used,
    tidy,
)
from vital_desktop.services.formats.geometry import check_shapes
from vital_desktop.services.formats.jsonio import forget_parsed
from vital_desktop.services.formats.types import type_spec
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import SheetItem

MAX_NAMED = 10
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-(.+)$")  # Label Studio prefixes uploaded files with 8 hex digits


@dataclass
class ImportSummary:
    format: str
    file: str
    images: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    conflicts: int = 0
    added_classes: list[str] = field(default_factory=list)
    #: the draft label-type version the added classes went to (its labels were validated against it)
    draft_version: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def detect_format(path: Path) -> str:
    """The registered format whose detector recognises `path` (a `ValidationError` if none or unsure)."""
    from vital_desktop.services.formats import FORMATS

    path = Path(path)
    if not path.exists():
        raise ValidationError(f"{path} does not exist")
    found = [name for name, fmt in FORMATS.items() if fmt.detect is not None and fmt.detect(path)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise ValidationError(f"cannot tell the format of {path.name}; pass --format "
                              f"({', '.join(n for n, f in FORMATS.items() if f.read)})")
    raise ValidationError(f"{path.name} could be any of {', '.join(found)}; pass --format")


class ItemMatcher:
    """File names → item refs of one sheet: relative path first, then file name, then item ref."""

    def __init__(self, rows: list[tuple[str, str | None, dict]]) -> None:
        self.by_path: dict[str, str] = {}
        self.by_name: dict[str, list[str]] = {}
        self.by_stem: dict[str, list[str]] = {}
        self.refs: set[str] = set()
        self.metadata: dict[str, dict] = {}
        self.paths: dict[str, str | None] = {}
        for ref, rel, metadata in rows:
            self.refs.add(ref)
            self.metadata[ref] = metadata
            self.paths[ref] = rel
            if rel:
                self.by_path[rel] = ref
                self.by_name.setdefault(PurePosixPath(rel).name, []).append(ref)
                self.by_stem.setdefault(str(PurePosixPath(rel).with_suffix("")), []).append(ref)

    def match(self, file_name: str) -> str:
        name = file_name.strip().replace("\\", "/")
        while name.startswith("./"):
            name = name[2:]
        if name in self.by_path:
            return self.by_path[name]
        parts = PurePosixPath(name).parts
        for start in range(1, len(parts)):  # 'images/train/a.png' when the sheet holds 'train/a.png'
            tail = "/".join(parts[start:])
            if tail in self.by_path:
                return self.by_path[tail]
        base = PurePosixPath(name).name
        candidates = self.by_name.get(base, [])
        if not candidates and (m := _UPLOAD_PREFIX.match(base)):
            candidates = self.by_name.get(m.group(1), [])
        if not candidates and not PurePosixPath(name).suffix:  # YOLO names a label by the image's stem
            candidates = self.by_stem.get(name, []) or [
                r for stem, refs in self.by_stem.items() if PurePosixPath(stem).name == base for r in refs]
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            raise ValidationError(f"{file_name!r} is ambiguous: the sheet has {len(candidates)} files named {base!r} "
                                  f"({', '.join(sorted(self.paths[c] or c for c in candidates)[:5])})")
        for key in (name, base, PurePosixPath(base).stem):
            if key in self.refs:
                return key
        raise ValidationError(f"{file_name!r} is not an item of this sheet")


def _image_size(root: str | None, rel: str | None, metadata: dict) -> tuple[int | None, int | None]:
    from vital_desktop.services.formats.export import image_size

    return image_size(root, rel, metadata)


def _to_pixels(image: ImageLabels, width: int | None, height: int | None) -> None:
    """Convert fractional (YOLO) or percentage (Label Studio) coordinates to pixels, in place,
    and round every coordinate to `COORD_DECIMALS` (so corner-based formats give back the
    exported width and height exactly)."""
    if image.scale == "pixels":
        sx = sy = 1.0
    elif width is None or height is None:
        raise ValidationError(f"{image.where}: the image's size is unknown, so its coordinates cannot be "
                              "converted to pixels")
    else:
        sx, sy = (width, height) if image.scale == "fraction" else (width / 100.0, height / 100.0)
    for shape in image.shapes:
        if shape.box is not None:
            x, y, w, h = shape.box
            shape.box = (tidy(x * sx), tidy(y * sy), tidy(w * sx), tidy(h * sy))
        shape.points = [(tidy(x * sx), tidy(y * sy)) for x, y in shape.points]
    image.scale = "pixels"


def unknown_classes(spec: TypeSpec, images: list[ImageLabels], add_classes: bool) -> list[str]:
    """The classes the file names that the label type lacks: refused by name, unless `add_classes`
    (they are then added to a draft version of the type, in the import's transaction)."""
    unknown = sorted(labels_used(images) - set(spec.classes)) if spec.classes else []
    if unknown and not add_classes:
        raise ValidationError(f"label type {spec.name!r} has no class(es) {', '.join(unknown[:MAX_NAMED])}"
                              + (f" (and {len(unknown) - MAX_NAMED} more)" if len(unknown) > MAX_NAMED else "")
                              + "; add them to the label type (or import with --add-classes)")
    return unknown


def import_labels(
    store: Store, *, actor: User, path: Path | str, sheet: str | None = None, label_type: str | None = None,
    fmt: str | None = None, add_classes: bool = False, progress: Progress | None = None,
) -> tuple[ImportSummary, Changes]:
    """Import one label file or folder (format given or recognised from the content)."""
    from vital_desktop.services import labels
    from vital_desktop.services.formats import FORMATS

    require(actor, "label")
    progress = progress or Progress()
    path = Path(path).expanduser()
    fmt = fmt or detect_format(path)
    entry = FORMATS.get(fmt)
    if entry is None or (entry.read is None and not entry.rows):
        raise ValidationError(f"unknown import format {fmt!r}; use "
                              f"{', '.join(n for n, f in FORMATS.items() if f.read or f.rows)}")
    rows_kind = entry.rows and (entry.read is None or (
        entry.prefers_rows is not None and entry.prefers_rows(path)))
    if rows_kind:  # one row per label, naming its sheet and type: today's tabular path
        if add_classes:
            raise ValidationError(f"--add-classes applies to annotation files (coco, yolo, voc, …); the rows of "
                                  f"{path.name} give their label_data against the published label type")
        outcome, changes = labels.import_labels(store, actor=actor, path=path, sheet=sheet, label_type=label_type,
                                                progress=progress)
        return ImportSummary(fmt, path.name, 0, outcome.created, outcome.updated, outcome.unchanged,
                             outcome.conflicts), changes
    if not sheet or not label_type:
        raise ValidationError(f"{fmt} import needs --sheet and --type")
    if not path.exists():
        raise ValidationError(f"{path} does not exist")
    progress.start(4, f"reading {path.name}")
    assert entry.read is not None
    try:
        images = entry.read(path)
    finally:
        forget_parsed()
    with store.read() as s:
        spec = type_spec(s, label_type)
        kinds = entry.read_kinds or entry.kinds
        if kinds and spec.kind not in kinds:
            raise ValidationError(f"{fmt} holds {', '.join(kinds)} labels; {label_type!r} is {spec.kind}")
        if spec.kind not in SHAPE_KINDS + CLASS_KINDS:
            raise ValidationError(f"label type {label_type!r} is of kind {spec.kind}: no annotation format holds it")
        sheet_row = labels.sheet_row(s, sheet)
        sheet_id, root = sheet_row.id, sheet_row.image_root
        matcher = ItemMatcher([(r, p, m or {}) for r, p, m in s.execute(
            sa.select(SheetItem.item_ref, SheetItem.image_path, SheetItem.item_metadata)
            .where(SheetItem.sheet_id == sheet_id))])
    progress.set(1, f"matching {len(images)} images to items")
    records, errors = [], []
    for image in images:
        try:
            ref = matcher.match(image.file_name)
            data = _prepare_image(spec, image, root, matcher, ref)
            records.append(labels.LabelRecord(sheet_id=sheet_id, item_ref=ref, label_type=label_type,
                                              label_data=data, reason=f"imported from {path.name} ({fmt})"))
        except ValidationError as exc:
            errors.append(exc.message if exc.message.startswith(image.where) else f"{image.where}: {exc.message}")
            if len(errors) >= MAX_NAMED:
                break
    if errors:
        text = "; ".join(errors)
        raise ValidationError(text if text.startswith(path.name) else f"{path.name}: {text}", details={"errors": errors})
    added = unknown_classes(spec, images, add_classes)
    if added:
        require(actor, "edit_taxonomy")  # a new class is a taxonomy change
    progress.set(2, f"checking {len(records)} labels")
    progress.check()
    with store.session() as s:
        draft = None
        if added:  # the same transaction: a refused file adds no class either
            from vital_desktop.services.label_type_edits import add_classes_to_draft

            draft, added = add_classes_to_draft(s, actor, label_type, added,
                                                reason=f"classes added by importing {path.name} ({fmt})")
            for record in records:
                record.label_type_version = draft.version
        records = labels.prepare_records(s, records)
        progress.set(3, f"writing {len(records)} labels")
        outcome = labels.upsert_records(s, actor, records, action="import")
        summary = ImportSummary(fmt, path.name, len(images), outcome.created, outcome.updated, outcome.unchanged,
                                outcome.conflicts, added, draft.version if draft else None)
        audit.record(s, actor, "label.import", path.name, {"format": fmt, "sheet": sheet, "label_type": label_type,
                                                          **outcome.to_dict(), "added_classes": added,
                                                          "draft_version": summary.draft_version})
    progress.finish(f"imported {len(records)} labels")
    return summary, Changes(labels=True, label_types=bool(added))


def _prepare_image(spec: TypeSpec, image: ImageLabels, root: str | None, matcher: ItemMatcher, ref: str) -> dict:
    if spec.kind in SHAPE_KINDS:
        width, height = _image_size(root, matcher.paths.get(ref), matcher.metadata.get(ref, {}))
        if width is not None and image.width is not None and (width, height) != (image.width, image.height):
            raise ValidationError(f"{image.where}: the file says the image is {image.width}x{image.height} but "
                                  f"{matcher.paths.get(ref) or ref} is {width}x{height}")
        width = width if width is not None else image.width
        height = height if height is not None else image.height
        _to_pixels(image, width, height)
        data = data_from_image(spec, image)
        check_shapes(data, width, height, where=image.where)
        return data
    return data_from_image(spec, image)
