"""QA-run wiring: config files of settings overrides are checked before any question runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.qa_evaluation import load_config_file


def test_config_files_are_flat_tables_of_known_settings(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("fusion = 'rrf'\ncontext_top_k = 6\n")
    assert load_config_file(good) == {"fusion": "rrf", "context_top_k": 6}
    typo = tmp_path / "typo.toml"
    typo.write_text("context_topk = 6\n")
    with pytest.raises(ValueError, match=r"unknown setting.*context_topk"):
        load_config_file(typo)
    nested = tmp_path / "nested.toml"
    nested.write_text("[retrieval]\nfusion = 'rrf'\n")
    with pytest.raises(ValueError, match="tables are not settings"):
        load_config_file(nested)
    broken = tmp_path / "broken.toml"
    broken.write_text("fusion = \n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config_file(broken)
