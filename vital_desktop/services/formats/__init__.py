"""Label import and export formats: one registry of format name → entry points.

Like Label Studio's converter, each format is one module with a reader (file or folder →
neutral `ImageLabels`, see `base`) and/or a writer (an `ExportSet` → file or folder); this
package routes `vital label import|export` to them. Adding a format is adding a module and
one `FORMATS` entry; nothing else branches on the format name.
"""

from __future__ import annotations

from vital_desktop.services.formats.base import Format
from vital_desktop.services.formats.export import export_labels
from vital_desktop.services.formats.importer import ImportSummary, detect_format, import_labels

__all__ = [
    "FORMATS",
    "Format",
    "ImportSummary",
    "detect_format",
    "export_format_names",
    "export_labels",
    "import_labels",
]


def _registry() -> dict[str, Format]:
    from vital_desktop.services.formats import coco, cvat, folder, label_studio, labelme, tabular, voc, yolo

    found: dict[str, Format] = {}
    for module in (tabular, coco, yolo, voc, labelme, label_studio, cvat, folder):
        for fmt in module.FORMATS:
            found[fmt.name] = fmt
    return found


#: Every known format, by the name the command line and the GUI use.
FORMATS: dict[str, Format] = _registry()


def export_format_names() -> list[str]:
    """Names of the formats that can be written."""
    return [name for name, fmt in FORMATS.items() if fmt.write is not None]
