"""Guard: only the write path (`services/label_write.py` and its `label_write_maintenance.py`)
writes canonical_labels, canonical_label_history and label_conflicts — by SQL text, Arrow bulk
inserts, ORM constructors or ORM update/delete."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "vital_desktop"
WRITER = PACKAGE / "services" / "label_write.py"
#: the write path's modules: the one write (`apply_table`) and its maintenance writes
WRITERS = (WRITER, PACKAGE / "services" / "label_write_maintenance.py")
TABLES = ("canonical_labels", "canonical_label_history", "label_conflicts")
MODELS = ("CanonicalLabel", "CanonicalLabelHistory", "LabelConflict")
SQL_WRITE = re.compile(r"\b(INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM|MERGE\s+INTO|TRUNCATE(\s+TABLE)?|"
                       r"COPY|DROP\s+TABLE|ALTER\s+TABLE)\s+(" + "|".join(TABLES) + r")\b", re.IGNORECASE)


def _violations(path: Path, source: str) -> list[str]:
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL_WRITE.search(node.value):
            found.append(f"{where}: SQL writes a label table")
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in MODELS:
                found.append(f"{where}: constructs a {name} row")
            if name in ("update", "delete", "insert") and node.args:
                first = node.args[0]
                target = first.attr if isinstance(first, ast.Attribute) else getattr(first, "id", "")
                if target in MODELS:
                    found.append(f"{where}: {name}({target}) writes a label table")
            if name in ("insert_arrow",) and len(node.args) >= 2:
                table = node.args[1]
                if isinstance(table, ast.Constant) and table.value in TABLES:
                    found.append(f"{where}: bulk insert into {table.value}")
    return found


def test_no_module_but_the_write_path_writes_the_label_tables() -> None:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in WRITERS or path.name == "models.py" or "migrations" in path.parts:
            continue
        problems += _violations(path, path.read_text("utf-8"))
    assert not problems, "label tables written outside the write path's modules:\n" + "\n".join(problems)


def test_the_guard_catches_each_kind_of_write() -> None:
    planted = '''
raw.execute("UPDATE canonical_labels SET version = 2")
raw.execute("insert into label_conflicts (id) values (1)")
s.add(CanonicalLabelHistory(id="x"))
s.execute(sa.update(CanonicalLabel).values(version=3))
s.execute(sa.delete(models.LabelConflict))
insert_arrow(s, "canonical_label_history", table)
'''
    assert len(_violations(Path("planted.py"), planted)) == 6
    assert _violations(Path("reader.py"), 'raw.execute("SELECT * FROM canonical_labels")') == []
    # The write path itself does write them (the guard is not vacuous), in each of its modules.
    for writer in WRITERS:
        assert _violations(writer, writer.read_text("utf-8")), writer.name
