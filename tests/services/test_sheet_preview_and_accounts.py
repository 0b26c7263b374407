"""What the Create Sheet wizard and the Users page rely on: a preview that flags what an import
would refuse, a clear message for mixed line endings, and audited account administration that
cannot lock a site out. Refusals leave the store unchanged."""

from __future__ import annotations

import pytest

from tests.conftest import snapshot_tables
from vital_desktop.core.errors import ConflictError, PermissionDenied, ValidationError
from vital_desktop.services import accounts, sheets


def test_mixed_crlf_and_lf_is_named_not_a_sniffer_error(tmp_path, small_site):
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"item_id,value\r\nA,1\r\nB,2\nC,3\r\n" + b"".join(b"D%d,%d\n" % (i, i) for i in range(50)))
    before = snapshot_tables(small_site.store)
    try:
        sheets.preview_import(path)
    except ValidationError as exc:
        assert "line endings" in exc.message and "line 3" in exc.message
    else:  # a reader that copes with mixed endings is fine too: then the file must read whole
        assert sheets.preview_import(path).total_rows == 53
    assert snapshot_tables(small_site.store) == before


def test_preview_flags_duplicate_keys_and_escaping_paths(tmp_path):
    path = tmp_path / "meta.csv"
    path.write_text("key,image\nA,a.png\nB,../outside.png\nA,c.png\nD,/etc/passwd\n")
    preview = sheets.preview_import(path, key_column="key", image_root=tmp_path, image_column="image")
    assert preview.duplicate_keys == ["A"]
    assert [p.split(":")[0] for p in preview.escaping_paths] == ["row 3 (B)", "row 5 (D)"]
    clean = sheets.preview_import(path, key_column="image", image_root=tmp_path)
    assert clean.duplicate_keys == [] and clean.escaping_paths == []


def test_role_changes_are_audited_and_never_remove_the_last_admin(small_site):
    store, admin = small_site.store, small_site.users["admin"]
    info, changes = accounts.set_user_role(store, actor=admin, username="inspector", role="engineer")
    assert info.role == "engineer" and changes.users
    from vital_desktop.store import audit

    with store.read() as s:
        entry = next(e for e in audit.recent(s, limit=20) if e["action"] == "user.role")
    assert entry["target"] == "inspector" and entry["details"] == {"from": "inspector", "to": "engineer"}

    before = snapshot_tables(store)
    with pytest.raises(ConflictError, match="last active administrator"):
        accounts.set_user_role(store, actor=admin, username="admin", role="inspector")
    with pytest.raises(ValidationError):
        accounts.set_user_role(store, actor=admin, username="engineer", role="superuser")
    with pytest.raises(PermissionDenied):
        accounts.set_user_role(store, actor=small_site.users["engineer"], username="inspector2", role="admin")
    assert snapshot_tables(store) == before
