"""The training JSONL keeps exactly the messages the model saw, few-shot assistant turns included."""

from __future__ import annotations

import json
from pathlib import Path

from vital_desktop.services import generate, labels, review, sheets, templates, training

SPEC = {
    "name": "Crystal check", "label_type": "classification", "description": "few-shot export test",
    "system_prompt": "You classify scintillator crystal defects.",
    "user_prompt": "Classify {{image_path}} from batch {{crystal_batch_id}}.",
    "input_schema": {"type": "object", "required": ["image_path"],
                     "properties": {"image_path": {"type": "string"}, "crystal_batch_id": {"type": "string"}}},
    "output_schema": {"type": "object", "additionalProperties": False, "required": ["defect_type"],
                      "properties": {"defect_type": {"type": "string", "enum": ["inclusion", "crack", "delamination",
                                                                                "surface_contamination", "none"]}}},
    "few_shot": [{"variables": {"image_path": "a.png", "crystal_batch_id": "XL-1"}, "output": {"defect_type": "crack"}},
                 {"variables": {"image_path": "b.png", "crystal_batch_id": "XL-2"}, "output": {"defect_type": "none"}}],
}


def test_exported_messages_equal_the_rendered_prompt_plus_the_answer(small_site, tmp_path) -> None:
    store, engineer = small_site.store, small_site.user("engineer")
    templates.create_template(store, actor=engineer, spec=SPEC)
    templates.publish_template(store, actor=engineer, ref="Crystal check@1.0.0")
    for i in range(6):
        labels.set_label(store, actor=small_site.user("inspector"), sheet="Crystals", item_ref=f"INS-000{i}",
                         label_type="classification", label_data={"defect_type": "crack" if i % 2 else "none"})
    generate.generate_training_sheet(store, actor=engineer, sheet="Crystals", template="Crystal check", name="ts")
    summary, _ = training.export_training(store, actor=engineer, training_sheet="ts", use="testing",
                                          out_dir=tmp_path / "out")
    records = [json.loads(line) for f in summary.files
               for line in Path(f.path).read_text("utf-8").splitlines() if line.strip()]
    assert len(records) == 6
    tmpl = templates.get_template(store, "Crystal check")
    for record in records:
        user_text = json.dumps(record["messages"][-2]["content"])
        item_ref = next(f"INS-000{i}" for i in range(6) if f"IMG_000{i}.png" in user_text)
        item = sheets.get_item(store, "Crystals", item_ref)
        rendered = generate.render_item(tmpl, item_ref, item.metadata, item.absolute_image_path)
        assert [m["role"] for m in rendered] == ["system", "user", "assistant", "user", "assistant", "user"]
        assert record["messages"][:-1] == rendered  # the few-shot assistant turns are there, unchanged
        pair = review.find_pair(store, training_sheet="ts", item_ref=item_ref)
        assert record["messages"][-1] == {"role": "assistant", "content": json.dumps(pair.answer, sort_keys=True)}
