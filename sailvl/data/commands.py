"""`sailvl data <command>`: the dataset tools, one module each, imported when run.

- `import` (`sailvl.data.importers.main`): the field's formats into the dataset format;
- `score` (`sailvl.data.score`): SFT scores from a judge endpoint as columns;
- `filter` (`sailvl.data.filter`): a scored dataset filtered / balanced by its scores;
- `job` (`sailvl.data.datajob`): a DataJob's job config (the cluster pods' entry).
"""

from __future__ import annotations

import importlib
from typing import Any

COMMANDS = {
    "import": ("sailvl.data.importers.main", "import LLaVA / InternVL / WebDataset / HF data"),
    "score": ("sailvl.data.score", "score SFT samples with a judge endpoint (Figure 10)"),
    "filter": ("sailvl.data.filter", "filter / balance a scored dataset by thresholds"),
    "job": ("sailvl.data.datajob", "run a DataJob's job config (what its pods run)"),
}


def add_parsers(sub: Any) -> None:
    """One sub-parser per command; each module's `add_arguments` fills it."""
    for name, (module, help_) in COMMANDS.items():
        importlib.import_module(module).add_arguments(sub.add_parser(name, help=help_))


def main(args: Any) -> int:
    return int(importlib.import_module(COMMANDS[args.data_command][0]).main(args) or 0)
