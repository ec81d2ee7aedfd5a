"""The ``ragline`` command line: one Typer sub-app per group, each command parsing flags, calling a library
function and printing. Nothing outside this package imports it. Heavy libraries are imported inside commands so
``--help`` answers at once."""
