"""Where a long run reports what it is doing while it runs.

An evaluation or a training run takes minutes to hours; saying which collection it ingested, which config it
skipped and which question it finished is part of its contract, but library code never prints. It is handed a
``RunLog`` instead: the CLI's writes to the terminal, a test's can collect the lines.
"""

from __future__ import annotations

from typing import Protocol


class RunLog(Protocol):
    """Progress of a run: ``info`` for the normal course, ``warn`` for what the user should look at."""

    def info(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...
