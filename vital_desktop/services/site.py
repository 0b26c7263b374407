"""The site: creating the store, settings, the export policy and the audit log views.

`init_site(home, demo=True)` is what the README's first command runs: it is idempotent (an
existing store is opened and left as it is) and deterministic for a seed. The demo site it
builds (its sheets, users, labels and classifier) is `services.demo_site`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from vital_desktop.core import governance
from vital_desktop.core.errors import PermissionDenied, ValidationError
from vital_desktop.core.ids import new_id, utcnow
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import SYSTEM_USER, User
from vital_desktop.services import accounts
from vital_desktop.store import audit, open_store
from vital_desktop.store.db import Store, default_home
from vital_desktop.store.models import Setting, UserRow

@dataclass
class InitReport:
    home: str
    created: bool
    demo: bool
    site_id: str
    steps: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def summary(self) -> str:
        lines = [f"site {self.site_id} at {self.home}" + (" (created)" if self.created else " (already there)")]
        lines += [f"  - {s}" for s in self.steps]
        if self.demo:
            from vital_desktop.services.demo_site import DEMO_USERS

            lines.append("  demo accounts: " + ", ".join(f"{u} / {p}" for u, _, _, p in DEMO_USERS) + " (demo only)")
        return "\n".join(lines)


def get_setting(store: Store, key: str, default: Any = None) -> Any:
    with store.read() as s:
        row = s.get(Setting, key)
        return row.value if row is not None else default


def set_setting(session: sa.orm.Session, key: str, value: Any) -> None:
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value
        row.updated_at = utcnow()


#: Set in the same transaction that creates a store with ``init --demo``; only such a store
#: ever receives the DEMO root of trust and the demo accounts.
DEMO_STORE_SETTING = "site.created_as_demo"

SignIn = Callable[[Store], User]


def init_site(
    home: Path | str | None, *, demo: bool = False, site_id: str | None = None, seed: int = 7,
    admin: tuple[str, str] | None = None, progress: Progress | None = None,
    sign_in: SignIn | None = None,
) -> InitReport:
    """Create (or open) the site store; with `demo`, build the embedded demo site once.

    Who may do what:
    - a NEW store: anyone (there is nothing to protect yet); ``admin`` creates its first
      administrator, ``demo`` makes it a demo site (demo root of trust and demo accounts);
    - an EXISTING store: a re-run that changes nothing needs no sign-in; anything that would
      change the site (adding an admin, a missing site key) needs an administrator, obtained
      by calling ``sign_in(store)`` (the CLI signs in from ``--user``/``VITAL_PASSWORD``).
      The only exception is the very first administrator of a store that has no accounts at all;
    - ``demo`` on an existing store is refused unless that store was itself created by
      ``init --demo`` (then an interrupted demo build is finished): the demo's keys and
      passwords are public, so they never enter a real site.
    """
    from vital_desktop.services.demo_site import DEMO_SITE_ID, build_demo, install_demo_root

    progress = progress or Progress()
    home = Path(home).expanduser() if home is not None else default_home()
    existed = (home / "site.duckdb").exists()
    store = open_store(home)
    try:
        current_site = get_setting(store, "site_id")
        created_as_demo = bool(get_setting(store, DEMO_STORE_SETTING, False))
        report = InitReport(str(home), not existed, demo, current_site or site_id or (DEMO_SITE_ID if demo else ""))
        if site_id and current_site is not None and site_id != current_site:
            raise ValidationError(f"this store already belongs to site {current_site!r}, not {site_id!r}")
        fresh = current_site is None and not existed
        if demo and not fresh and not created_as_demo:
            raise PermissionDenied(
                f"{home} holds a real site: the demo (its public root of trust and accounts) is installed only "
                "into a new store; choose another --home for the demo")
        actor: User = SYSTEM_USER
        changes = (admin is not None and not user_exists(store, admin[0])) or current_site is None \
            or (not created_as_demo and _site_key_missing(store))
        if not fresh and changes and accounts.count_users(store) > 0:
            actor = _admin_sign_in(store, sign_in)
        if current_site is None:
            report.site_id = site_id or (DEMO_SITE_ID if demo else f"site-{new_id()[:8]}")
            with store.session() as s:
                set_setting(s, "site_id", report.site_id)
                if demo and fresh:
                    set_setting(s, DEMO_STORE_SETTING, True)
                    created_as_demo = True
                audit.record(s, actor, "site.init", report.site_id, {"demo": demo})
            report.steps.append(f"site id {report.site_id}")
        if admin:
            username, password = admin
            if user_exists(store, username):
                report.steps.append(f"user {username} already exists")
            else:
                accounts.add_user(store, actor=actor, username=username, password=password, role="admin")
                report.steps.append(f"admin user {username}")
        _ensure_site_identity(store, report)
        _ensure_label_types(store, report, demo)
        if demo and created_as_demo:
            install_demo_root(store, report)
            if get_setting(store, "demo_built_at") is None:
                build_demo(store, seed=seed, progress=progress, report=report)
            else:
                report.steps.append("demo site already built")
        return report
    finally:
        store.close()


def _site_key_missing(store: Store) -> bool:
    from vital_desktop.services import exchange

    return not (exchange.keys_dir(store) / exchange.SITE_KEY_FILE).exists()


def _admin_sign_in(store: Store, sign_in: SignIn | None) -> User:
    if sign_in is None:
        raise PermissionDenied(f"{store.home} is an existing site: sign in as an administrator "
                               "(--user NAME with VITAL_PASSWORD) to change it")
    actor = sign_in(store)
    accounts.require(actor, "manage_users")
    return actor


def _ensure_label_types(store: Store, report: InitReport, demo: bool) -> None:
    """A new site gets the starter set; a store from before label types were site data (labels or
    templates but no label types) gets the types it was built with, so its labels stay valid."""
    from vital_desktop.services import label_type_edits, label_types
    from vital_desktop.services.demo_site import seed_demo_label_types
    from vital_desktop.store.models import CanonicalLabel, Template

    if label_types.list_label_types(store, drafts=True):
        return
    with store.read() as s:
        legacy = s.scalar(sa.select(CanonicalLabel.id).limit(1)) or s.scalar(sa.select(Template.id).limit(1))
    if legacy:
        created = seed_demo_label_types(store)
        report.steps.append(f"label types of the earlier packaged set recorded as site data ({len(created)})")
    elif not demo:
        created = label_type_edits.seed_starter_types(store, SYSTEM_USER)
        report.steps.append(f"starter label types: {', '.join(created)}")


def user_exists(store: Store, username: str) -> bool:
    with store.read() as s:
        return s.scalar(sa.select(UserRow.id).where(UserRow.username == username)) is not None


def _ensure_site_identity(store: Store, report: InitReport) -> None:
    """The site's signing key pair (for exports to the hub); created once."""
    from vital_desktop.services import exchange

    created = exchange.ensure_site_identity(store, report.site_id)
    if created:
        report.steps.append("site signing key created")


# --- the export policy (governance on every way out) -------------------------------------------


def export_policy(source: Store | sa.orm.Session) -> governance.ExportPolicy:
    """The site's export policy (which restricted tags an admin allowed to which destinations)."""
    if isinstance(source, Store):
        with source.read() as s:
            row = s.get(Setting, governance.POLICY_SETTING)
            return governance.ExportPolicy.from_setting(row.value if row is not None else None)
    row = source.get(Setting, governance.POLICY_SETTING)
    return governance.ExportPolicy.from_setting(row.value if row is not None else None)


def export_gate(source: Store | sa.orm.Session, *, use: str | None, destination: str) -> governance.ExportGate:
    """THE call every way out makes (see `core.governance`): the gate for `use` to `destination`."""
    return governance.export_gate(export_policy(source), use=use, destination=destination)


def govern_arrow(table: Any, gate: governance.ExportGate) -> tuple[Any, dict[str, int]]:
    """An Arrow table with the rows `gate` refuses dropped, judged by each row's own
    ``data_classification`` and its sheet's tags (a ``_sheet_tags`` column, dropped too);
    returns the table and {reason: count} of the withheld rows."""
    import pyarrow as pa

    if "_sheet_tags" not in table.column_names:
        return table, {}
    sheet_tags = table.column("_sheet_tags").to_pylist()
    own = table.column("data_classification").to_pylist() if "data_classification" in table.column_names \
        else [None] * table.num_rows
    keep: list[bool] = []
    withheld: dict[str, int] = {}
    for sheet_value, own_value in zip(sheet_tags, own, strict=True):
        reason = gate.refusal(sorted(governance.normalise_tags(sheet_value) | governance.normalise_tags(own_value)))
        keep.append(reason is None)
        if reason is not None:
            withheld[reason] = withheld.get(reason, 0) + 1
    return table.filter(pa.array(keep, type=pa.bool_())).drop_columns(["_sheet_tags"]), withheld


def set_export_permission(store: Store, *, actor: User, tag: str, destination: str, allow: bool,
                          reason: str = "") -> governance.ExportPolicy:
    """Allow (or withdraw) content tagged `tag` to leave for `destination`. Admins only, audited;
    allowing needs a reason (it is shown in every audit of the policy)."""
    accounts.require(actor, "manage_policy")
    tag = tag.strip().upper()
    if tag not in governance.RESTRICTED_TAGS:
        raise ValidationError(f"{tag!r} is not a restricted tag; the policy covers {', '.join(governance.RESTRICTED_TAGS)}")
    governance.check_destination(destination)
    if allow and not reason.strip():
        raise ValidationError("say why this content may leave the site (--reason); it is kept in the audit log")
    with store.session() as s:
        row = s.get(Setting, governance.POLICY_SETTING)
        policy = governance.ExportPolicy.from_setting(row.value if row is not None else None)
        grants = [g for g in policy.grants if not (g.get("tag") == tag and g.get("destination") == destination)]
        if allow:
            grants.append({"tag": tag, "destination": destination, "by": actor.username, "at": utcnow().isoformat(),
                           "reason": reason.strip()})
        new = governance.ExportPolicy(tuple(grants))
        set_setting(s, governance.POLICY_SETTING, new.to_setting())
        audit.record(s, actor, "policy.allow" if allow else "policy.withdraw", f"{tag}->{destination}",
                     {"reason": reason.strip()})
    return new


def verify_audit(store: Store) -> audit.AuditVerification:
    with store.read() as s:
        return audit.verify(s)


def audit_log(store: Store, limit: int = 50) -> list[dict]:
    with store.read() as s:
        return audit.recent(s, limit)
