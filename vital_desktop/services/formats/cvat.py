"""CVAT for images 1.1 XML (docs.cvat.ai, "CVAT for images"): one ``<annotations>`` file.

Each ``<image name width height>`` holds ``<box label xtl ytl xbr ybr>``, ``<polygon label
points="x1,y1;x2,y2;…">``, ``<points label points="x,y">`` and ``<tag label>`` (an image-level
class). Parsed with defusedxml: DTDs and entities are refused.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from vital_desktop.core.errors import ValidationError
from vital_desktop.services.formats.base import (
    ExportSet,
    Format,
    ImageLabels,
    Shape,
    classes_from_data,
    number,
    shapes_from_data,
)
from vital_desktop.services.formats.jsonio import load_xml
from vital_desktop.services.formats.voc import _root_tag


def detect(path: Path) -> bool:
    return path.is_file() and _root_tag(path) == "annotations"


def _attr(node: ET.Element, name: str, where: str) -> str:
    value = node.get(name)
    if value is None or value.strip() == "":
        raise ValidationError(f"{where}: attribute {name!r} is missing")
    return value


def _points(text: str, where: str) -> list[tuple[float, float]]:
    out = []
    for k, pair in enumerate(p for p in text.split(";") if p.strip()):
        xy = pair.split(",")
        if len(xy) != 2:
            raise ValidationError(f"{where}: point {k} {pair!r} is not 'x,y'")
        out.append((number(xy[0], f"point {k} x", where), number(xy[1], f"point {k} y", where)))
    return out


def read(path: Path) -> list[ImageLabels]:
    root = load_xml(path)
    if root.tag != "annotations":
        raise ValidationError(f"{path.name}: the root element is <{root.tag}>, not <annotations>")
    images = []
    for i, node in enumerate(root.findall("image")):
        where = f"{path.name} image {node.get('id', i)}"
        image = ImageLabels(_attr(node, "name", where), f"{where} ({node.get('name')})")
        for key in ("width", "height"):
            if node.get(key):
                setattr(image, key, int(number(node.get(key), key, where)))
        for k, child in enumerate(node):
            child_where = f"{image.where} <{child.tag}> {k}"
            if child.tag == "tag":
                image.classes.append(_attr(child, "label", child_where))
                continue
            if child.tag not in ("box", "polygon", "points"):
                raise ValidationError(f"{child_where}: <{child.tag}> is not supported (box, polygon, points, tag are)")
            label = _attr(child, "label", child_where)
            if child.tag == "box":
                if child.get("rotation") not in (None, "0", "0.0", "0.00"):
                    raise ValidationError(f"{child_where}: rotated boxes are not supported")
                xtl, ytl, xbr, ybr = (number(_attr(child, a, child_where), a, child_where)
                                      for a in ("xtl", "ytl", "xbr", "ybr"))
                image.shapes.append(Shape("box", label, box=(xtl, ytl, xbr - xtl, ybr - ytl), where=child_where))
            elif child.tag == "polygon":
                image.shapes.append(Shape("polygon", label, points=_points(_attr(child, "points", child_where),
                                                                           child_where), where=child_where))
            else:
                for point in _points(_attr(child, "points", child_where), child_where):
                    image.shapes.append(Shape("point", label, points=[point], where=child_where))
        images.append(image)
    return images


def _num(v: float) -> str:
    return repr(float(v)) if v != int(v) else str(int(v))


def write(target: Path, export: ExportSet) -> None:
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    meta = ET.SubElement(root, "meta")
    task = ET.SubElement(meta, "task")
    ET.SubElement(task, "name").text = export.spec.name
    labels = ET.SubElement(task, "labels")
    names = list(export.spec.classes)
    for item in export.items:
        for name in [s.label for s in shapes_from_data(export.spec, item.label_data)] + classes_from_data(
                export.spec, item.label_data):
            if name not in names:
                names.append(name)
    for name in names:
        ET.SubElement(ET.SubElement(labels, "label"), "name").text = name
    for n, item in enumerate(export.items):
        node = ET.SubElement(root, "image", {"id": str(n), "name": item.image_path or item.item_ref,
                                             "width": str(item.width or 0), "height": str(item.height or 0)})
        for shape in shapes_from_data(export.spec, item.label_data):
            if shape.kind == "box":
                assert shape.box is not None
                x, y, w, h = shape.box
                ET.SubElement(node, "box", {"label": shape.label, "occluded": "0", "source": "manual",
                                            "xtl": _num(x), "ytl": _num(y), "xbr": _num(x + w), "ybr": _num(y + h),
                                            "z_order": "0"})
            else:
                ET.SubElement(node, "polygon" if shape.kind == "polygon" else "points", {
                    "label": shape.label, "occluded": "0", "source": "manual", "z_order": "0",
                    "points": ";".join(f"{_num(px)},{_num(py)}" for px, py in shape.points)})
        for cls in classes_from_data(export.spec, item.label_data):
            ET.SubElement(node, "tag", {"label": cls, "source": "manual"})
    ET.indent(root)
    ET.ElementTree(root).write(target, encoding="utf-8", xml_declaration=True)


FORMATS = [Format("cvat", "CVAT for images 1.1 XML", read=read, write=write, detect=detect,
                  kinds=("boxes", "polygons", "points", "classification", "multilabel"))]
