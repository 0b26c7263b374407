"""Pascal VOC XML (host.robots.ox.ac.uk/pascal/VOC): one ``<annotation>`` file per image.

``<filename>`` (and ``<path>``) name the image, ``<size>`` its ``<width>``/``<height>``, and each
``<object>`` a ``<name>`` and a ``<bndbox>`` of ``xmin ymin xmax ymax``. Coordinates are taken
as pixel edges (``xmin = x``, ``xmax = x + width``), as Label Studio's and CVAT's converters
write them. Parsed with defusedxml: DTDs and entities are refused.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath

from vital_desktop.core.errors import ValidationError
from vital_desktop.services.formats.base import ExportSet, Format, ImageLabels, Shape, number, shapes_from_data
from vital_desktop.services.formats.files import walk
from vital_desktop.services.formats.jsonio import load_xml


def _root_tag(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096).decode("utf-8", "replace")
    except OSError:
        return None
    start = head.find("<", head.find("?>") + 1 if "?>" in head else 0)
    while start != -1 and head[start:start + 2] in ("<!", "<?"):
        start = head.find("<", start + 1)
    if start == -1:
        return None
    return head[start + 1:].split(None, 1)[0].split(">", 1)[0].strip("/")


def detect(path: Path) -> bool:
    if path.is_file():
        return _root_tag(path) == "annotation"
    if path.is_dir():
        xmls = [p for _, p in walk(path, (".xml",))][:5]
        return bool(xmls) and all(_root_tag(p) == "annotation" for p in xmls)
    return False


def _text(node: ET.Element, tag: str, where: str, required: bool = True) -> str | None:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        if required:
            raise ValidationError(f"{where}: <{tag}> is missing")
        return None
    return child.text.strip()


def read_file(path: Path, where: str | None = None) -> ImageLabels:
    where = where or path.name
    root = load_xml(path)
    if root.tag != "annotation":
        raise ValidationError(f"{where}: the root element is <{root.tag}>, not <annotation>")
    file_name = _text(root, "filename", where)
    assert file_name is not None
    image = ImageLabels(file_name, where)
    size = root.find("size")
    if size is not None:
        w, h = _text(size, "width", where, False), _text(size, "height", where, False)
        image.width = int(number(w, "width", where)) if w else None
        image.height = int(number(h, "height", where)) if h else None
        if image.width == 0 or image.height == 0:  # some tools write 0 when they did not know
            image.width = image.height = None
    for k, obj in enumerate(root.findall("object")):
        obj_where = f"{where} object {k}"
        label = _text(obj, "name", obj_where)
        box = obj.find("bndbox")
        if box is None:
            raise ValidationError(f"{obj_where}: <bndbox> is missing")
        xmin, ymin, xmax, ymax = (number(_text(box, t, obj_where), t, obj_where)
                                  for t in ("xmin", "ymin", "xmax", "ymax"))
        image.shapes.append(Shape("box", str(label), box=(xmin, ymin, xmax - xmin, ymax - ymin), where=obj_where))
    return image


def read(path: Path) -> list[ImageLabels]:
    if path.is_file():
        return [read_file(path)]
    files = walk(path, (".xml",))
    if not files:
        raise ValidationError(f"{path} holds no .xml files")
    return [read_file(p, rel) for rel, p in files]


def _sub(parent: ET.Element, tag: str, text: object) -> ET.Element:
    node = ET.SubElement(parent, tag)
    node.text = str(text)
    return node


def write(target: Path, export: ExportSet) -> None:
    target.mkdir(parents=True)
    for item in export.items:
        rel = PurePosixPath(item.image_path or item.item_ref)
        root = ET.Element("annotation")
        _sub(root, "folder", rel.parent.as_posix() if str(rel.parent) != "." else "")
        _sub(root, "filename", rel.as_posix())
        size = ET.SubElement(root, "size")
        _sub(size, "width", item.width or 0)
        _sub(size, "height", item.height or 0)
        _sub(size, "depth", 3)
        _sub(root, "segmented", 0)
        for shape in shapes_from_data(export.spec, item.label_data):
            assert shape.box is not None
            x, y, w, h = shape.box
            obj = ET.SubElement(root, "object")
            _sub(obj, "name", shape.label)
            _sub(obj, "pose", "Unspecified")
            _sub(obj, "truncated", 0)
            _sub(obj, "difficult", 0)
            box = ET.SubElement(obj, "bndbox")
            for tag, value in (("xmin", x), ("ymin", y), ("xmax", x + w), ("ymax", y + h)):
                _sub(box, tag, repr(float(value)) if value != int(value) else int(value))
        out = target / rel.with_suffix(".xml")
        out.parent.mkdir(parents=True, exist_ok=True)
        ET.indent(root)
        ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)


FORMATS = [Format("voc", "Pascal VOC XML (one file per image)", read=read, write=write, detect=detect,
                  layout="folder", kinds=("boxes",))]
