"""YOLO datasets (docs.ultralytics.com/datasets): detect, segment and classify.

``data.yaml`` names the classes (``names`` as a list or an ``{index: name}`` map) and the
split folders; ``labels/<split>/<stem>.txt`` beside ``images/<split>/<stem>.<ext>`` holds one
object per line, coordinates as fractions of the image size: ``class xc yc w h`` (detect) or
``class x1 y1 x2 y2 …`` (segment, >= 3 vertices). Classify datasets are class folders
(``<split>/<class>/<image>``), read by the image-folder format.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from vital_desktop.core.errors import ValidationError
from vital_desktop.services.formats import folder
from vital_desktop.services.formats.base import ExportSet, Format, ImageLabels, Shape, number, shapes_from_data
from vital_desktop.services.formats.files import IMAGE_SUFFIXES, place_image, walk

_YAML_NAMES = ("data.yaml", "dataset.yaml", "data.yml")


def _yaml_file(root: Path) -> Path | None:
    return next((root / n for n in _YAML_NAMES if (root / n).is_file()), None)


def detect(path: Path) -> bool:
    if path.is_dir():
        return _yaml_file(path) is not None or (path / "labels").is_dir()
    return path.suffix.lower() in (".yaml", ".yml") and path.name in _YAML_NAMES


def class_names(yaml_path: Path) -> list[str]:
    import yaml

    try:
        doc = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{yaml_path.name} is not valid YAML: {str(exc).splitlines()[0]}") from None
    names = doc.get("names") if isinstance(doc, dict) else None
    if isinstance(names, list):
        return [str(n) for n in names]
    if isinstance(names, dict):
        try:
            index = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise ValidationError(f"{yaml_path.name}: names must map class numbers to names") from None
        if sorted(index) != list(range(len(index))):
            raise ValidationError(f"{yaml_path.name}: class numbers must be 0..{len(index) - 1}")
        return [index[i] for i in range(len(index))]
    raise ValidationError(f"{yaml_path.name} has no 'names' list of classes")


def _parse_line(line: str, names: list[str], where: str) -> Shape:
    fields = line.split()
    try:
        cls = int(fields[0])
    except ValueError:
        raise ValidationError(f"{where}: the class {fields[0]!r} is not a class number") from None
    if not 0 <= cls < len(names):
        raise ValidationError(f"{where}: class number {cls} is not in data.yaml's names (0..{len(names) - 1})")
    values = [number(v, "coordinate", where) for v in fields[1:]]
    if len(values) == 4:
        xc, yc, w, h = values
        return Shape("box", names[cls], box=(xc - w / 2, yc - h / 2, w, h), where=where)
    if len(values) >= 6 and len(values) % 2 == 0:
        return Shape("polygon", names[cls], points=list(zip(values[0::2], values[1::2], strict=True)), where=where)
    if len(values) in (2, 4) or len(values) % 2:
        raise ValidationError(f"{where}: expected 'class xc yc w h' or 'class x1 y1 x2 y2 x3 y3 ...', "
                              f"got {len(values)} coordinate(s)")
    raise ValidationError(f"{where}: a polygon needs at least 3 points, got {len(values) // 2}")


def read(path: Path) -> list[ImageLabels]:
    root = path.parent if path.is_file() else path
    labels_dir = root / "labels"
    if not labels_dir.is_dir():
        if _yaml_file(root) is None and any(p.is_dir() for p in root.iterdir()):
            return folder.read(root)  # a classify dataset: class folders
        raise ValidationError(f"{root} has no labels/ folder (a YOLO dataset holds labels/<split>/<image>.txt)")
    yaml_path = _yaml_file(root)
    if yaml_path is None:
        raise ValidationError(f"{root} has no data.yaml naming the classes")
    names = class_names(yaml_path)
    images_by_stem = {}
    if (root / "images").is_dir():
        for rel, _ in walk(root / "images", IMAGE_SUFFIXES):
            images_by_stem[str(PurePosixPath(rel).with_suffix(""))] = rel
    out = []
    for rel, label_path in walk(labels_dir, (".txt",)):
        stem = str(PurePosixPath(rel).with_suffix(""))
        image_rel = images_by_stem.get(stem)
        file_name = image_rel if image_rel else stem
        parts = PurePosixPath(file_name).parts
        if len(parts) > 1 and parts[0].lower() in folder.SPLITS:
            file_name = "/".join(parts[1:])  # the split folder is the dataset's, not the sheet's
        image = ImageLabels(file_name, f"labels/{rel}", scale="fraction")
        try:
            text = label_path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ValidationError(f"labels/{rel} is not UTF-8 text") from None
        for number_, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                image.shapes.append(_parse_line(line, names, f"labels/{rel} line {number_}"))
        out.append(image)
    return out


def _fmt(v: float) -> str:
    return repr(float(v))


def write(target: Path, export: ExportSet) -> None:
    spec = export.spec
    names = list(spec.classes)
    for item in export.items:
        for shape in shapes_from_data(spec, item.label_data):
            if shape.label not in names:
                names.append(shape.label)
    index = {n: i for i, n in enumerate(names)}
    target.mkdir(parents=True)
    for split in ("train", "val"):  # YOLO trainers expect both, even when one is empty
        (target / "images" / split).mkdir(parents=True, exist_ok=True)
        (target / "labels" / split).mkdir(parents=True, exist_ok=True)
    for item in export.items:
        if item.width is None or item.height is None:
            raise ValidationError(f"item {item.item_ref}: the image's size is unknown (is its file there?), so "
                                  "YOLO's fractional coordinates cannot be written")
        rel = PurePosixPath(item.image_path or f"{item.item_ref}.png")
        lines = []
        for shape in shapes_from_data(spec, item.label_data):
            if shape.kind == "box":
                assert shape.box is not None
                x, y, w, h = shape.box
                coords = [(x + w / 2) / item.width, (y + h / 2) / item.height, w / item.width, h / item.height]
            else:
                coords = [c for px, py in shape.points for c in (px / item.width, py / item.height)]
            lines.append(" ".join([str(index[shape.label]), *map(_fmt, coords)]))
        label_file = target / "labels" / item.split / rel.with_suffix(".txt")
        label_file.parent.mkdir(parents=True, exist_ok=True)
        label_file.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        place_image(item.absolute_path, target / "images" / item.split / rel)
    import yaml

    doc = {"path": ".", "train": "images/train", "val": "images/val", "names": dict(enumerate(names))}
    (target / "data.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")


FORMATS = [Format("yolo", "YOLO dataset folder (detect, segment; classify as class folders)", read=read,
                  write=write, detect=detect, layout="folder", kinds=("boxes", "polygons"),
                  read_kinds=("boxes", "polygons", "classification"))]
