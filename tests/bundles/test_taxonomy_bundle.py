"""The taxonomy payload kind: the hub publishes label types to sites (decided by bundles/trust.py
like every channel); a hub version that disagrees with a local edit is held for review instead
of overwriting it; a site export carries the site's own label-type changes to the hub."""

from __future__ import annotations

from vital_desktop.bundles.simulator import NOW
from vital_desktop.services import exchange, label_type_edits, label_types, taxonomy


def _doc(version: str, classes: list[str], **more) -> dict:
    return {"name": "welds", "version": version, "title": "Welds", "kind": "classification",
            "class_field": "class", "classes": [{"name": c} for c in classes], **more}


def test_hub_label_types_are_imported_and_a_conflicting_one_goes_to_review(bundle_site, tmp_path) -> None:
    store, hub = bundle_site.store, bundle_site.hub
    result = bundle_site.import_(hub.build("taxonomy", hub.label_type_payload(_doc("1.0.0", ["pore", "crack"]))).path)
    assert result.summary["label_types_added"] == ["welds@1.0.0"]
    first = label_types.get_label_type(store, "welds")
    assert (first.version, first.origin, first.classes()) == ("1.0.0", "hub", ["pore", "crack"])

    newer = hub.build("taxonomy", hub.label_type_payload(_doc("1.1.0", ["pore", "crack", "spatter"])))
    assert bundle_site.import_(newer.path).summary["label_types_added"] == ["welds@1.1.0"]

    # The site changes the type locally; the hub's next version disagrees: held for review.
    engineer = bundle_site.small.user("engineer")
    taxonomy.apply(store, engineer, "welds", "rename_class", old="crack", new="fissure")
    local = label_types.get_label_type(store, "welds")
    assert (local.version, local.origin) == ("2.0.0", "site")
    conflicting = hub.build("taxonomy", hub.label_type_payload(_doc("3.0.0", ["pore", "crack", "undercut"])))
    summary = bundle_site.import_(conflicting.path).summary
    assert summary["label_types_review"] == ["welds@3.0.0"] and not summary["label_types_added"]
    assert label_types.get_label_type(store, "welds").version == "2.0.0"  # the local edit stays in force
    assert [v.version for v in label_type_edits.pending_hub_versions(store, "welds")] == ["3.0.0"]
    actions = [h["action"] for h in label_type_edits.history(store, "welds")]
    assert actions[-1] == "hub_review" and "hub_import" in actions

    # The export carries the site's own versions (welds@2.0.0 and the types it seeded) to the hub,
    # not the hub's (their origin is the hub).
    stick = tmp_path / "usb"
    stick.mkdir()
    exported = exchange.export_bundle(store, actor=bundle_site.admin, to_dir=stick, now=NOW + 600)
    own = [t for t in label_types.list_label_types(store).values() if t.origin == "site"]
    assert exported.rows["label_types"] == len(own) and "welds" in {t.name for t in own}


def test_a_hub_label_type_that_is_not_valid_is_refused_whole(bundle_site) -> None:
    bad = _doc("1.0.0", ["pore", "pore"])  # duplicate class names
    bundle_site.refused(bundle_site.hub.build("taxonomy", bundle_site.hub.label_type_payload(bad)).path, "content")
    assert "welds" not in label_types.list_label_types(bundle_site.store, drafts=True)
