"""GENERATE, templates: what a valid template spec is (checked before anything is written).

A template is identified by ``NAME@MAJOR.MINOR.PATCH`` (`parse_version`, `bump_version`,
`split_ref`). A spec is valid when:

- the input and output schemas are valid JSON Schemas (``check_schema``) describing objects;
- every ``{{placeholder}}`` of the prompts is a property of the input schema;
- the output schema fits the template's label type: the type's required fields are output
  properties, the output's required fields are label-type fields (so an answer taken from a
  canonical label always validates), and shared enums agree;
- every few-shot example's variables and output validate.

Answers are checked here too (`check_answer`: the output schema AND the label type). Pure
functions of the spec and the label types; `services.templates` stores the versions.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from vital_desktop.core.errors import ValidationError
from vital_desktop.inference import prompts
from vital_desktop.services.label_types import (
    LabelType,
    check_label_data,
    get_label_type,
    list_label_types,
    parse_ref,
)

if TYPE_CHECKING:
    from vital_desktop.services.templates import TemplateInfo
    from vital_desktop.store.models import Template

VERSION_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
BUMPS = ("major", "minor", "patch")
#: Fields a spec may set, in the order `diff` and `show` present them.
SPEC_FIELDS = (
    "label_type", "label_type_version", "description", "system_prompt", "user_prompt", "input_schema", "output_schema",
    "few_shot", "model_ref", "notes",
)
TEXT_FIELDS = ("description", "system_prompt", "user_prompt", "notes")
MODEL_REF_KEYS = ("gguf", "classifier", "max_tokens", "temperature",
                  "evidence_fields")  # metadata columns that carry the answer (services/llm_evidence)


# --- versions and references -------------------------------------------------------------------


def parse_version(version: str) -> tuple[int, int, int]:
    """``"1.2.3"`` → ``(1, 2, 3)``; anything else is a `ValidationError`."""
    match = VERSION_RE.match(str(version).strip())
    if not match:
        raise ValidationError(f"template version {version!r} is not a semantic version like 1.0.0")
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def bump_version(version: str, part: str = "minor") -> str:
    major, minor, patch = parse_version(version)
    if part == "major":
        return f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor + 1}.0"
    if part == "patch":
        return f"{major}.{minor}.{patch + 1}"
    raise ValidationError(f"unknown version bump {part!r}; use {', '.join(BUMPS)}")


def split_ref(ref: str) -> tuple[str, str | None]:
    """``"NAME@1.0.0"`` → ``("NAME", "1.0.0")``; ``"NAME"`` → ``("NAME", None)``."""
    ref = (ref or "").strip()
    if not ref:
        raise ValidationError("name a template (NAME or NAME@VERSION)")
    name, sep, version = ref.rpartition("@")
    if not sep:
        return ref, None
    if not name:
        raise ValidationError(f"template reference {ref!r} has no name before '@'")
    parse_version(version)
    return name.strip(), version.strip()


# --- validation ----------------------------------------------------------------------------------


def _check_schema(schema: Any, what: str) -> None:
    import jsonschema

    if not isinstance(schema, dict):
        raise ValidationError(f"the {what} must be a JSON object (a JSON Schema), not {type(schema).__name__}")
    try:
        jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        raise ValidationError(f"the {what} is not a valid JSON Schema at {where}: {exc.message}") from None
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        raise ValidationError(f"the {what} must describe an object: \"type\": \"object\" with \"properties\"")


@functools.lru_cache(maxsize=256)
def _validator_for_text(schema_text: str) -> Any:
    from vital_desktop.core.strict_json import strict_validator

    return strict_validator(json.loads(schema_text))  # patterns anchored as JSON Schema means them


def schema_validator(schema: dict) -> Any:
    """A cached jsonschema validator (validators are reused for every answer of a generation)."""
    return _validator_for_text(json.dumps(schema, sort_keys=True))


def first_error(schema: dict, value: Any) -> str | None:
    """The first problem of `value` against `schema` as one readable line, or None if it is valid."""
    errors = sorted(schema_validator(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    where = "/".join(str(p) for p in errors[0].absolute_path) or "(root)"
    return f"at {where}: {errors[0].message}"


def label_data_from_answer(label_type: LabelType, answer: dict) -> dict:
    """The part of an answer that is the canonical label: the label type's own fields.

    Answers may carry more (the model's confidence, an explanation the type does not keep).
    """
    properties = label_type.schema.get("properties", {})
    return {key: value for key, value in answer.items() if key in properties}


def template_label_type(source: Any, template: TemplateInfo | Template) -> LabelType:
    """The label-type version the template is bound to (the latest published one for templates
    made before templates were bound to a version)."""
    return get_label_type(source, template.label_type, template.label_type_version or None)


def check_answer(source: Any, template: TemplateInfo | Template, answer: Any) -> dict:
    """Validate an answer against the template's output schema AND its label type; return the label data."""
    if not isinstance(answer, dict):
        raise ValidationError("the answer must be a JSON object")
    problem = first_error(template.output_schema, answer)
    if problem:
        raise ValidationError(f"the answer does not match the output schema of {template.name}@{template.version} {problem}")
    label_type = template_label_type(source, template)
    data = label_data_from_answer(label_type, answer)
    check_label_data(label_type, data)
    return data


def check_fits_current_label_type(source: Any, template: TemplateInfo | Template) -> LabelType:
    """The label type's current version, if the template's output still fits it; otherwise a
    `ValidationError` naming the template's label-type version and the current one."""
    current = get_label_type(source, template.label_type)
    bound = template.label_type_version or current.version
    try:
        _check_output_fits_label_type(current, template.output_schema)
    except ValidationError as exc:
        raise ValidationError(
            f"template {template.name}@{template.version} was made for label type {template.label_type}@{bound}, "
            f"but the label type is now {current.ref} and the template no longer fits it ({exc.message}); "
            "edit the template for the new version") from None
    return current


def _check_output_fits_label_type(lt: LabelType, output_schema: dict) -> None:
    label_type = lt.ref
    type_schema = lt.schema
    type_props: dict = type_schema.get("properties", {})
    out_props: dict = output_schema.get("properties", {})
    missing = [f for f in type_schema.get("required", []) if f not in out_props]
    if missing:
        raise ValidationError(
            f"the output schema does not produce the {label_type} label: it lacks {', '.join(missing)} "
            f"(the {label_type} label type needs {', '.join(type_schema.get('required', []))})"
        )
    extra_required = [f for f in output_schema.get("required", []) if f not in type_props]
    if extra_required:
        raise ValidationError(
            f"the output schema requires {', '.join(extra_required)}, which a {label_type} label does not hold, "
            "so answers taken from canonical labels could not match it; make these fields optional"
        )
    for name, prop in out_props.items():
        if name in type_props and isinstance(prop, dict) and "enum" in prop and "enum" in type_props[name]:
            outside = [v for v in prop["enum"] if v not in type_props[name]["enum"]]
            if outside:
                raise ValidationError(
                    f"output field {name!r} allows {', '.join(map(str, outside))}, which the {label_type} label type "
                    f"does not (it allows {', '.join(map(str, type_props[name]['enum']))})"
                )


def validate_spec(spec: dict, source: Any) -> dict:
    """Check a whole template spec (see the module docstring) against the label types in
    `source` (the store or a session); return it normalised, bound to a label-type version.

    Raises `ValidationError` naming the first problem.
    """
    if not isinstance(spec, dict):
        raise ValidationError("a template spec must be a JSON object")
    unknown = [k for k in spec if k not in (*SPEC_FIELDS, "name", "version", "status")]
    if unknown:
        raise ValidationError(f"unknown template field(s) {', '.join(unknown)}; fields: name, {', '.join(SPEC_FIELDS)}")
    name = str(spec.get("name") or "").strip()
    if not name:
        raise ValidationError("a template needs a name")
    if "@" in name:
        raise ValidationError(f"template name {name!r} must not contain '@' (it separates the version)")
    out: dict[str, Any] = {"name": name}
    label_type = spec.get("label_type")
    if not label_type:
        raise ValidationError(f"template {name!r} needs a label_type; label types: "
                              f"{', '.join(list_label_types(source))}")
    type_name, type_version = parse_ref(str(label_type))
    lt = get_label_type(source, type_name, type_version or spec.get("label_type_version") or None)
    out["label_type"], out["label_type_version"] = lt.name, lt.version
    for key in TEXT_FIELDS:
        value = spec.get(key, "")
        if not isinstance(value, str):
            raise ValidationError(f"{key} must be text")
        out[key] = value
    if not out["system_prompt"].strip():
        raise ValidationError(f"template {name!r} needs a system prompt")
    if not out["user_prompt"].strip():
        raise ValidationError(f"template {name!r} needs a user prompt")
    if prompts.placeholders(out["system_prompt"]):
        raise ValidationError(
            "the system prompt must not contain placeholders (item data goes in the user prompt only): "
            + ", ".join(prompts.placeholders(out["system_prompt"]))
        )
    _check_schema(spec.get("input_schema"), "input schema")
    _check_schema(spec.get("output_schema"), "output schema")
    out["input_schema"] = spec["input_schema"]
    out["output_schema"] = spec["output_schema"]
    inputs = out["input_schema"]["properties"]
    unknown_placeholders = [p for p in prompts.placeholders(out["user_prompt"]) if p.split(".")[0] not in inputs]
    if unknown_placeholders:
        raise ValidationError(
            "the user prompt uses placeholders that are not properties of the input schema: "
            + ", ".join("{{" + p + "}}" for p in unknown_placeholders)
            + f" (input properties: {', '.join(inputs) or 'none'})"
        )
    _check_output_fits_label_type(lt, out["output_schema"])
    few_shot = spec.get("few_shot", []) or []
    if not isinstance(few_shot, list):
        raise ValidationError("few_shot must be a list of examples")
    for number, example in enumerate(few_shot, start=1):
        if not isinstance(example, dict) or not isinstance(example.get("variables"), dict) or "output" not in example:
            raise ValidationError(f"few-shot example {number} must be an object with \"variables\" and \"output\"")
        problem = first_error(out["input_schema"], example["variables"])
        if problem:
            raise ValidationError(f"few-shot example {number}: its variables do not match the input schema {problem}")
        missing = [p for p in prompts.placeholders(out["user_prompt"]) if p.split(".")[0] not in example["variables"]]
        if missing:
            raise ValidationError(f"few-shot example {number} lacks the placeholder value(s) {', '.join(missing)}")
        problem = first_error(out["output_schema"], example["output"])
        if problem:
            raise ValidationError(f"few-shot example {number}: its output does not match the output schema {problem}")
        try:
            check_label_data(lt, label_data_from_answer(lt, example["output"]))
        except ValidationError as exc:
            raise ValidationError(f"few-shot example {number}: {exc.message}") from None
    out["few_shot"] = few_shot
    model_ref = spec.get("model_ref", {}) or {}
    if not isinstance(model_ref, dict):
        raise ValidationError("model_ref must be an object such as {\"gguf\": \"default\", \"classifier\": \"NAME\"}")
    bad = [k for k in model_ref if k not in MODEL_REF_KEYS]
    if bad:
        raise ValidationError(f"unknown model_ref key(s) {', '.join(bad)}; use {', '.join(MODEL_REF_KEYS)}")
    evidence = model_ref.get("evidence_fields")
    if evidence is not None and (not isinstance(evidence, list) or not all(isinstance(f, str) and f for f in evidence)):
        raise ValidationError("model_ref.evidence_fields must be a list of metadata column names")
    out["model_ref"] = model_ref
    return out


def check_against_columns(template: TemplateInfo | Template, columns: Iterable[str]) -> None:
    """Refuse a template whose placeholders or required inputs are not columns of the sheet."""
    available = set(columns) | set(prompts.BUILTIN_VARIABLES)
    missing = [p for p in prompts.placeholders(template.user_prompt) if p.split(".")[0] not in available]
    required = [r for r in template.input_schema.get("required", []) if r not in available]
    problems = sorted(set(missing) | set(required))
    if problems:
        raise ValidationError(
            f"template {template.name}@{template.version} needs the field(s) {', '.join(problems)}, which the sheet "
            f"does not have (its columns: {', '.join(columns)})",
            details={"missing": problems},
        )
