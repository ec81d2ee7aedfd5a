"""``docs/configuration.md``, rendered from ``app.settings.Settings`` so that the reference never drifts.

Every setting is a pydantic field with a description; this module turns the fields into one Markdown table (env
var, type with its bounds, default, description) under a short explanation of where values come from. A test
compares the committed file with the rendered text, and ``ragline config docs --write`` regenerates it, so a new
or changed setting cannot reach the main branch without its documentation.
"""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic.fields import FieldInfo

from app.settings import ENV_PREFIX, Settings

CONFIGURATION_DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"

_INTRODUCTION = f"""\
# Configuration

<!-- Generated from app/settings.py by `ragline config docs --write`: edit the Field descriptions there. -->

One `Settings` object (`app/settings.py`) configures every ragline process: the CLI, the REST API, the UI and the
evaluation commands.

## Where a value comes from

Highest precedence first:

1. keyword arguments to `Settings(...)`; per-request `options` (the API's `options` field, the UI's pipeline
   switches, `ragline eval qa --config` files) are applied the same way for one request, and the API refuses
   the settings that configure the server itself (storage, models, services, limits);
2. environment variables `{ENV_PREFIX}<NAME>` (the setting's name in upper case);
3. the TOML file named by `RAGLINE_CONFIG`, default `./ragline.toml` (it need not exist); its keys are the setting
   names in lower case;
4. the defaults in the table below.

`ragline config show` prints every effective value and where it came from (`env RAGLINE_X`, the TOML path,
`argument` or `default`); `ragline config show --json` gives the same as JSON. An unknown key in the TOML file, or
a value outside its range, fails at start-up with the name of the setting. Three checks span settings:
`chunk_overlap` must be smaller than `chunk_size`, `context_budget_tokens` must exceed `max_answer_tokens` by at
least 128, and every cut in `abstain_thresholds` must lie in [-1, 1].

```toml
# ragline.toml
generator = "qwen2.5-coder-1.5b"
fusion = "rrf"
abstain_thresholds = {{ "nq-open-oracle" = 0.5 }}
```

```bash
RAGLINE_GENERATOR=qwen2.5-coder-1.5b RAGLINE_FUSION=rrf ragline ask "What does ERR-4012 mean?"
RAGLINE_ABSTAIN_THRESHOLDS='{{"nq-open-oracle": 0.5}}' ragline serve   # dict settings take JSON in the environment
```

## Settings

"""

_BOUND_SYMBOLS: dict[type[Any], tuple[str, str]] = {
    annotated_types.Ge: ("ge", "≥"),
    annotated_types.Gt: ("gt", ">"),
    annotated_types.Le: ("le", "≤"),
    annotated_types.Lt: ("lt", "<"),
}


def render_settings_markdown() -> str:
    """The whole of ``docs/configuration.md``: how values are layered, then one row per setting in declaration order.

    Raises ``ValueError`` naming the field when a setting has no description: an undocumented setting is a bug in
    ``app/settings.py``, and the generated reference is where it shows.
    """
    rows = ["| env var | type | default | description |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if not field.description:
            raise ValueError(f"Settings.{name} has no description: add description=... to its Field in app/settings.py")
        cells = [
            f"`{ENV_PREFIX}{name.upper()}`",
            _type_text(field),
            _default_text(field),
            field.description,
        ]
        rows.append("| " + " | ".join(_escape_cell(cell) for cell in cells) + " |")
    return _INTRODUCTION + "\n".join(rows) + "\n"


def write_settings_markdown(path: Path = CONFIGURATION_DOC) -> Path:
    """Write the rendered reference to ``path`` (by default the committed ``docs/configuration.md``) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_settings_markdown(), encoding="utf-8")
    return path


def _type_text(field: FieldInfo) -> str:
    """The annotation as a reader writes a value: ``int``, ``float ≥ 0, ≤ 1``, ``rrf | convex``, ``path or unset``."""
    text = _annotation_text(field.annotation)
    bounds = [
        f"{symbol} {getattr(constraint, attribute)}"
        for constraint in field.metadata
        for kind, (attribute, symbol) in _BOUND_SYMBOLS.items()
        if isinstance(constraint, kind)
    ]
    return f"{text} {', '.join(bounds)}" if bounds else text


def _annotation_text(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " | ".join(f"`{choice}`" for choice in get_args(annotation))
    if origin in (Union, types.UnionType):
        members = [member for member in get_args(annotation) if member is not type(None)]
        optional = len(members) < len(get_args(annotation))
        text = " or ".join(_annotation_text(member) for member in members)
        return f"{text} or unset" if optional else text
    if origin is dict:
        key, value = (_annotation_text(arg) for arg in get_args(annotation))
        return f"JSON object ({key} → {value})"
    if origin is list:
        (item,) = (_annotation_text(arg) for arg in get_args(annotation))
        return f"JSON array of {item}"
    if annotation is Path:
        return "path"
    if annotation is str:
        return "string"
    if annotation in (int, float, bool):
        return annotation.__name__
    raise ValueError(f"no Markdown form for the settings type {annotation!r}: extend app/settings_docs.py")


def _default_text(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True, validated_data={})
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, dict | list):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def _escape_cell(text: str) -> str:
    """Cell text that renders as written on a code host.

    A ``|`` ends a cell even inside backticks and a newline ends the row; outside code spans ``<data_dir>`` would be
    read as an HTML tag and vanish, so angle brackets there become entities (inside backticks they show as typed).
    """
    spans = text.replace("\n", " ").split("`")
    for index in range(0, len(spans), 2):
        spans[index] = spans[index].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(spans).replace("|", "\\|")
