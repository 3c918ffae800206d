"""Print (or check) the configuration table of the README from the Settings model.

Usage: ``python scripts/settings_table.py`` prints the table; ``--check README.md`` exits 1
when the table between the markers in README.md is out of date; ``--write README.md``
rewrites it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from flowplane.settings import Settings

BEGIN = "<!-- settings-table:begin -->"
END = "<!-- settings-table:end -->"


def table() -> str:
    """Return the Markdown table of every setting."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if field.default_factory is not None:
            default = field.default_factory()  # type: ignore[call-arg]
        shown = json.dumps(default if not isinstance(default, Path) else str(default))
        description = (field.description or "").replace("|", "\\|")
        lines.append(f"| `FLOWPLANE_{name.upper()}` | `{shown}` | {description} |")
    return "\n".join(lines)


def splice(text: str) -> str:
    """Return ``text`` with the table between the markers replaced."""
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    """Entry point."""
    if len(argv) == 3 and argv[1] in ("--check", "--write"):
        path = Path(argv[2])
        text = path.read_text()
        updated = splice(text)
        if argv[1] == "--write":
            path.write_text(updated)
            return 0
        if updated != text:
            print(f"{path}: the settings table is out of date; run make docs", file=sys.stderr)
            return 1
        return 0
    print(table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
