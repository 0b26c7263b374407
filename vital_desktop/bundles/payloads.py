"""Content checks for each payload kind (a registry, not an if/elif chain).

Run on the extracted, hash-checked staging copy of each entry, before anything is written to
the store. A validator returns what the store side needs (parsed JSON, model classes, the
Arrow table) or raises `BundleRefused` with code ``content``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from vital_desktop.bundles import canonical
from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.limits import MAX_JSON_PAYLOAD_BYTES, MAX_TABLE_BYTES, MAX_TABLE_ROWS
from vital_desktop.bundles.manifest import Entry, validate_schema

#: metadata_props keys of the classifier contract (shared with `vital_desktop.inference`).
ONNX_REQUIRED_PROPS = ("vital.classes", "vital.input_size")

#: Parquet columns each table kind must have (more columns are allowed and kept for the hub).
TABLE_COLUMNS: dict[str, dict[str, pa.DataType]] = {
    "label_types": {  # a site export: the site's own label-type versions (its local taxonomy changes)
        "name": pa.string(), "version": pa.string(), "status": pa.string(), "kind": pa.string(),
        "document": pa.string(), "created_by": pa.string(), "created_at": pa.timestamp("us"),
    },
    "canonical_labels": {
        "sheet_name": pa.string(), "item_ref": pa.string(), "label_type": pa.string(), "label_data": pa.string(),
        "version": pa.int64(), "allowed_uses": pa.string(), "prohibited_uses": pa.string(),
        "usage_reason": pa.string(), "data_classification": pa.string(), "confidence": pa.string(),
        "notes": pa.string(), "updated_by": pa.string(), "updated_at": pa.timestamp("us"),
    },
    "feedback": {
        "id": pa.string(), "site_id": pa.string(), "prediction_id": pa.string(), "model_id": pa.string(),
        "item_ref": pa.string(), "predicted_class": pa.string(), "corrected_class": pa.string(),
        "corrected_label": pa.string(), "comment": pa.string(), "status": pa.string(), "created_by": pa.string(),
        "created_at": pa.timestamp("us"),
    },
    "predictions": {
        "id": pa.string(), "site_id": pa.string(), "model_id": pa.string(), "model_name": pa.string(),
        "model_version": pa.int64(), "kind": pa.string(), "item_ref": pa.string(), "output": pa.string(),
        "predicted_class": pa.string(), "confidence": pa.float64(), "latency_ms": pa.float64(),
        "created_by": pa.string(), "created_at": pa.timestamp("us"),
    },
    "mc_results": {
        "id": pa.string(), "site_id": pa.string(), "name": pa.string(), "config": pa.string(), "seed": pa.int64(),
        "histories": pa.int64(), "results": pa.string(), "spectrum": pa.string(), "engine_version": pa.string(),
        "created_by": pa.string(), "created_at": pa.timestamp("us"),
    },
}


@dataclass
class CheckedPayload:
    entry: Entry
    path: Path
    json: Any = None
    table: pa.Table | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _refuse(entry: Entry, message: str) -> BundleRefused:
    return BundleRefused("content", f"entry {entry.id!r} ({entry.name}): {message}")


def _read_json(entry: Entry, path: Path) -> Any:
    if entry.length > MAX_JSON_PAYLOAD_BYTES:
        raise _refuse(entry, f"JSON payload larger than {MAX_JSON_PAYLOAD_BYTES} bytes")
    try:
        return canonical.loads(path.read_bytes(), max_bytes=MAX_JSON_PAYLOAD_BYTES)
    except BundleRefused as exc:
        raise _refuse(entry, exc.message) from exc


def check_template(entry: Entry, path: Path) -> CheckedPayload:
    document = _read_json(entry, path)
    validate_schema(document, "template.schema.json", "content")
    import jsonschema

    for key in ("input_schema", "output_schema"):
        try:
            jsonschema.Draft202012Validator.check_schema(document[key])
        except jsonschema.SchemaError as exc:
            raise _refuse(entry, f"{key} is not a valid JSON Schema: {exc.message[:200]}") from exc
    return CheckedPayload(entry, path, json=document)


def check_label_type(entry: Entry, path: Path) -> CheckedPayload:
    """A published label-type version from the hub (its classes and fields; the site derives and
    checks the schema when it applies it)."""
    document = _read_json(entry, path)
    validate_schema(document, "label_type.schema.json", "content")
    return CheckedPayload(entry, path, json=document)


def check_model_card(entry: Entry, path: Path) -> CheckedPayload:
    document = _read_json(entry, path)
    validate_schema(document, "model_card.schema.json", "content")
    return CheckedPayload(entry, path, json=document)


def check_config(entry: Entry, path: Path) -> CheckedPayload:
    document = _read_json(entry, path)
    validate_schema(document, "config.schema.json", "content")
    return CheckedPayload(entry, path, json=document)


def check_root_metadata(entry: Entry, path: Path) -> CheckedPayload:
    # Verified step by step by trust.RootChain; here only the size.
    if entry.length > MAX_JSON_PAYLOAD_BYTES:
        raise _refuse(entry, "root document too large")
    return CheckedPayload(entry, path)


def _is_hex(value: Any, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and all(c in "0123456789abcdef" for c in value)


def check_audit_head(entry: Entry, path: Path) -> CheckedPayload:
    """The site's signed audit head in an export: {seq, hash, key_id, signature}; the signature
    itself is checked by `trust.check_audit_head` with the site's registered key."""
    document = _read_json(entry, path)
    if not isinstance(document, dict) or set(document) != {"seq", "hash", "key_id", "signature"}:
        raise _refuse(entry, "an audit head has exactly the fields seq, hash, key_id and signature")
    if not isinstance(document["seq"], int) or isinstance(document["seq"], bool) or document["seq"] < 1:
        raise _refuse(entry, "the audit head's seq must be a positive integer")
    if not (_is_hex(document["hash"], 64) and _is_hex(document["key_id"], 64) and _is_hex(document["signature"], 128)):
        raise _refuse(entry, "the audit head's hash, key_id and signature must be lowercase hex")
    return CheckedPayload(entry, path, json=document)


def _load_checked_onnx(entry: Entry, path: Path) -> Any:
    """The ONNX model in `path`, refused unless it loads, is self-contained and passes onnx.checker."""
    import onnx
    from onnx.external_data_helper import uses_external_data

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise _refuse(entry, f"not a readable ONNX model: {str(exc)[:200]}") from exc
    for tensor in _all_tensors(model):
        if uses_external_data(tensor):
            raise _refuse(entry, f"tensor {tensor.name!r} points at external data; models must be self-contained")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise _refuse(entry, f"onnx.checker refused the model: {str(exc)[:200]}") from exc
    return model


def check_onnx(entry: Entry, path: Path) -> CheckedPayload:
    """onnx.checker, no external data, and the classifier contract (NCHW float32 in, metadata props)."""
    import onnx

    model = _load_checked_onnx(entry, path)
    props = {p.key: p.value for p in model.metadata_props}
    missing = [k for k in ONNX_REQUIRED_PROPS if k not in props]
    if missing:
        raise _refuse(entry, f"model metadata lacks {', '.join(missing)}")
    try:
        classes = json.loads(props["vital.classes"])
    except ValueError as exc:
        raise _refuse(entry, "vital.classes is not a JSON list") from exc
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise _refuse(entry, "vital.classes must be a non-empty JSON list of class names")
    graph_inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    if len(graph_inputs) != 1:
        raise _refuse(entry, "a classifier has exactly one input")
    tensor_type = graph_inputs[0].type.tensor_type
    if tensor_type.elem_type != onnx.TensorProto.FLOAT or len(tensor_type.shape.dim) != 4:
        raise _refuse(entry, "the input must be a float32 NCHW tensor")
    return CheckedPayload(entry, path, info={"classes": classes, "metadata": props})


def check_onnx_backbone(entry: Entry, path: Path) -> CheckedPayload:
    """onnx.checker and no external data (what the backbone computes is judged after its trial run)."""
    model = _load_checked_onnx(entry, path)
    return CheckedPayload(entry, path, info={"metadata": {p.key: p.value for p in model.metadata_props}})


def _all_tensors(model: Any) -> list[Any]:
    import onnx

    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR:
                tensors.append(attribute.t)
            tensors.extend(attribute.tensors)
    return tensors


def check_gguf(entry: Entry, path: Path) -> CheckedPayload:
    with open(path, "rb") as handle:
        head = handle.read(8)
    if len(head) < 8 or head[:4] != b"GGUF":
        raise _refuse(entry, "not a GGUF file (wrong magic)")
    (version,) = struct.unpack("<I", head[4:8])
    if version not in (2, 3):
        raise _refuse(entry, f"GGUF version {version} is not supported")
    return CheckedPayload(entry, path, info={"gguf_version": version})


def _decoded_bytes(table: pa.Table) -> int:
    """Bytes the table will take with every dictionary column decoded (computed without decoding)."""
    import pyarrow.compute as pc

    total = 0
    for column in table.columns:
        for chunk in column.chunks:
            if pa.types.is_dictionary(chunk.type) and len(chunk):
                lengths = pc.binary_length(chunk.dictionary)
                taken = pc.sum(pc.take(lengths, chunk.indices)).as_py() or 0
                total += int(taken) + 8 * len(chunk)
            else:
                total += chunk.nbytes
    return total


def _read_capped(entry: Entry, path: Path) -> pa.Table:
    """Read a Parquet payload within `MAX_TABLE_BYTES`: the sizes its metadata declares first, then
    each row group read with strings kept as dictionaries and its decoded size counted before
    decoding -- a small file that would expand to gigabytes is refused, not read."""
    import pyarrow.parquet as pq

    try:
        probe = pq.ParquetFile(path)
        metadata = probe.metadata
        declared = sum(metadata.row_group(g).column(c).total_uncompressed_size
                       for g in range(metadata.num_row_groups) for c in range(metadata.num_columns))
        if declared > MAX_TABLE_BYTES:
            raise _refuse(entry, f"the table declares {declared} uncompressed bytes, more than the cap of "
                                 f"{MAX_TABLE_BYTES}")
        strings = [f.name for f in probe.schema_arrow if pa.types.is_string(f.type) or pa.types.is_binary(f.type)
                   or pa.types.is_large_string(f.type)]
        parquet = pq.ParquetFile(path, read_dictionary=strings)
        parts, budget = [], 0
        for group in range(metadata.num_row_groups):
            part = parquet.read_row_group(group)
            budget += _decoded_bytes(part)
            if budget > MAX_TABLE_BYTES:
                raise _refuse(entry, f"the table would take more than {MAX_TABLE_BYTES} bytes once decoded "
                                     "(a decompression bomb?)")
            parts.append(part)
        table = pa.concat_tables(parts) if parts else probe.schema_arrow.empty_table()
        fields = [pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type, f.nullable)
                  for f in table.schema]
        return table.cast(pa.schema(fields))
    except BundleRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - Arrow/Parquet errors on hostile input are refusals
        raise _refuse(entry, f"Parquet data is corrupt: {str(exc)[:200]}") from exc


def _table_checker(kind: str) -> Callable[[Entry, Path], CheckedPayload]:
    def check(entry: Entry, path: Path) -> CheckedPayload:
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(path)
            rows = parquet.metadata.num_rows
            if rows > MAX_TABLE_ROWS:
                raise _refuse(entry, f"{rows} rows is more than the cap of {MAX_TABLE_ROWS}")
            schema = parquet.schema_arrow
        except BundleRefused:
            raise
        except Exception as exc:
            raise _refuse(entry, f"not a readable Parquet file: {str(exc)[:200]}") from exc
        for column, data_type in TABLE_COLUMNS[kind].items():
            index = schema.get_field_index(column)
            if index < 0:
                raise _refuse(entry, f"column {column!r} is missing")
            if not schema.field(index).type.equals(data_type):
                raise _refuse(entry, f"column {column!r} is {schema.field(index).type}, expected {data_type}")
        return CheckedPayload(entry, path, table=_read_capped(entry, path), info={"rows": parquet.metadata.num_rows})

    return check


def check_app_release(entry: Entry, path: Path) -> CheckedPayload:
    """A release archive: its signed meta names version and platform; every member stays in its folder."""
    from vital_desktop.bundles.app_release import release_top, scan_release_archive

    version, platform = entry.meta.get("version"), entry.meta.get("platform")
    if not isinstance(version, str) or not isinstance(platform, str) or not version or not platform:
        raise _refuse(entry, "an app_release entry must name its version and platform in meta")
    scan = scan_release_archive(path, release_top(version, platform))
    return CheckedPayload(entry, path, info={"top": scan.top, "members": scan.members,
                                             "unpacked_bytes": scan.unpacked_bytes})


def check_app_sbom(entry: Entry, path: Path) -> CheckedPayload:
    """A CycloneDX SBOM (whether it describes the archive is `trust.check_app_sbom`'s decision)."""
    from vital_desktop.bundles.app_release import read_sbom

    return CheckedPayload(entry, path, json=read_sbom(path))


CHECKERS: dict[str, Callable[[Entry, Path], CheckedPayload]] = {
    "app_release": check_app_release,
    "app_sbom": check_app_sbom,
    "onnx_model": check_onnx,
    "onnx_backbone": check_onnx_backbone,
    "gguf_model": check_gguf,
    "model_card": check_model_card,
    "template": check_template,
    "label_type": check_label_type,
    "config": check_config,
    "root_metadata": check_root_metadata,
    "audit_head": check_audit_head,
    **{kind: _table_checker(kind) for kind in TABLE_COLUMNS},
}


def check_payload(entry: Entry, path: Path) -> CheckedPayload:
    """Validate one extracted entry by its kind."""
    return CHECKERS[entry.kind](entry, path)


#: Model entry kinds and the model-card kind each must name.
CARD_KIND = {"onnx_model": "onnx", "gguf_model": "gguf", "onnx_backbone": "onnx_backbone"}


def check_model_pairs(payloads: list[CheckedPayload]) -> None:
    """Every model entry names its card (meta ``card``), and the card agrees on name and version."""
    by_id = {p.entry.id: p for p in payloads}
    for payload in payloads:
        if payload.entry.kind not in CARD_KIND:
            continue
        card_id = payload.entry.meta.get("card")
        card = by_id.get(card_id) if isinstance(card_id, str) else None
        if card is None or card.entry.kind != "model_card":
            raise _refuse(payload.entry, "a model entry must name its model_card entry in meta.card")
        document = card.json
        if document["kind"] != CARD_KIND[payload.entry.kind]:
            raise _refuse(payload.entry, "the model card names another model kind")
        classes = payload.info.get("classes")
        if classes is not None and document.get("classes") not in (None, classes):
            raise _refuse(payload.entry, "the model card's classes differ from the model's metadata")
