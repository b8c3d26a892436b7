"""The experiment tools' output: a markdown table printed, and written to
``--out`` when given."""
from pathlib import Path
from typing import List, Optional


def print_table(lines: List[str], out: Optional[str] = None) -> str:
    """Print the table's ``lines`` after a blank line; also write them to
    ``out`` (creating its folder). Returns the table."""
    table = '\n'.join(lines)
    print('\n' + table)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(table + '\n')
    return table
