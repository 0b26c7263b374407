"""Rendering a template's messages for every item of a generation (shared with review's preview).

The system message and few-shot turns are the same for every item, so `MessageRenderer`
renders and encodes them once and per item only the user message (with its evidence).
"""

from __future__ import annotations

import json
from urllib.parse import quote

from vital_desktop.inference import prompts
from vital_desktop.services import templates
from vital_desktop.store.db import Store

def prompt_template(template: templates.TemplateInfo) -> prompts.PromptTemplate:
    return prompts.PromptTemplate(template.name, template.version, template.system_prompt, template.user_prompt,
                                  template.output_schema, tuple(template.few_shot))


def context_fields(template: templates.TemplateInfo) -> list[str]:
    """Sensor context shown beside the image: input-schema fields the user prompt does not already name."""
    named = {p.split(".")[0] for p in template.placeholders}
    return [f for f in template.input_schema.get("properties", {}) if f not in named and f != "image_path"]


class MessageRenderer:
    """Renders every item of one template, fast: the system message and few-shot turns are the same
    for every item (`prompts` builds them from the template alone), so they are rendered and encoded
    once; per item only the user message is rendered, by the same `prompts.render_messages`."""

    def __init__(self, template: templates.TemplateInfo) -> None:
        self.full = prompt_template(template)
        # Same user prompt, nothing else: its last message is exactly the full render's last message.
        self.user_only = prompts.PromptTemplate(template.name, template.version, "-", template.user_prompt, None, ())
        self.context_fields = context_fields(template)
        self._prefix_json: str | None = None

    def messages_json(self, item: prompts.PromptItem, classifier: prompts.ClassifierSummary | None = None) -> str:
        """The item's messages as JSON text. Give `item.image_path` as a ``file://`` URI (see `image_uri`):
        `prompts` keeps a URI as it is, while it would resolve a path on disk for every item."""
        if self._prefix_json is None:
            messages = prompts.render_messages(self.full, item, classifier=classifier,
                                               context_fields=self.context_fields).messages
            self._prefix_json = json.dumps(messages[:-1], ensure_ascii=False)
            return json.dumps(messages, ensure_ascii=False)
        user = prompts.render_messages(self.user_only, item, classifier=classifier,
                                       context_fields=self.context_fields).messages[-1]
        return f"{self._prefix_json[:-1]}, {json.dumps(user, ensure_ascii=False)}]"


def image_uri(root_uri: str, relative: str) -> str:
    """``file://`` URI of an image below the sheet's (already resolved) image folder, without a
    filesystem call per item: the same text `Path.as_uri` gives."""
    return f"{root_uri}/{quote(relative)}"


def render_item(template: templates.TemplateInfo, item_ref: str, data: dict, image_path: str | None,
                classifier: prompts.ClassifierSummary | None = None) -> list[dict]:
    """The stored chat messages of one item (what a reviewer sees, what the model saw)."""
    return prompts.render_messages(prompt_template(template), prompts.PromptItem(item_ref, data, image_path),
                                   classifier=classifier, context_fields=context_fields(template)).messages


def preview_pairs(store: Store, sheet: str, template: templates.TemplateInfo, count: int = 3) -> list[dict]:
    """The first `count` items of `sheet` as generation would render them, each with its current canonical
    label (the Generate dialog's preview; a read, run off the GUI thread by the caller)."""
    from vital_desktop.services import labels, sheets

    out = []
    for item in sheets.list_items(store, sheet, limit=count):
        messages = render_item(template, item.item_ref, item.metadata, item.absolute_image_path)
        label = labels.get_label(store, sheet=sheet, item_ref=item.item_ref, label_type=template.label_type)
        out.append({"item_ref": item.item_ref, "messages": messages, "label": label})
    return out
