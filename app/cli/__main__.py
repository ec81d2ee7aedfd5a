"""``python -m app.cli``: the same as the ``ragline`` command (used to start child processes)."""

from app.cli.root import main

main()
