from pathlib import Path

from typer.testing import CliRunner

from app.cli.root import app
from app.settings import Settings
from app.settings_docs import CONFIGURATION_DOC, render_settings_markdown, write_settings_markdown


def test_committed_configuration_doc_matches_settings() -> None:
    committed = CONFIGURATION_DOC.read_text(encoding="utf-8")
    assert committed == render_settings_markdown(), (
        "docs/configuration.md is out of date with app/settings.py: run `ragline config docs --write` and commit it"
    )


def test_every_setting_has_a_row_with_its_env_var_and_default() -> None:
    lines = render_settings_markdown().splitlines()
    rows = {line.split("`")[1]: line for line in lines if line.startswith("| `RAGLINE_")}
    assert set(rows) == {f"RAGLINE_{name.upper()}" for name in Settings.model_fields}
    assert "| int ≥ 1, ≤ 65535 | `8080` |" in rows["RAGLINE_API_PORT"]
    assert "| `rrf` \\| `convex` | `convex` |" in rows["RAGLINE_FUSION"]
    assert "| path or unset | unset |" in rows["RAGLINE_MODELS_DIR"]
    assert "| bool | `true` |" in rows["RAGLINE_MEMORY"]


def test_angle_brackets_outside_code_become_entities(tmp_path: Path) -> None:
    markdown = write_settings_markdown(tmp_path / "configuration.md").read_text(encoding="utf-8")
    assert "default &lt;data_dir&gt;/models." in markdown
    assert '(`{"nq-open-oracle": 0.5}`)' in markdown


def test_config_docs_command_prints_the_rendered_reference() -> None:
    result = CliRunner().invoke(app, ["config", "docs"])
    assert result.exit_code == 0, result.output
    assert result.output == render_settings_markdown()
