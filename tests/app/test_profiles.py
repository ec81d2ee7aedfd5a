"""Application profiles: named defaults that explicit settings override, one switch on every surface."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.api.errors import ApiError
from app.api.options import request_options
from app.cli.root import app
from app.profiles import DEMO_RERANKER_FOLDER, PROFILE_NAMES, PROFILES, get_profile, precision_stages
from app.qa_evaluation import _configs
from app.settings import Settings, get_settings


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def trained_demo_reranker(models_dir: Path) -> Path:
    """The two files by which a trained demo reranker is recognised (no model is loaded by these tests)."""
    folder = models_dir / DEMO_RERANKER_FOLDER
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "ragline-reranker.json").write_text("{}")
    return folder


def test_every_profile_is_valid_settings_and_documents_itself() -> None:
    assert PROFILE_NAMES == ("default", "enterprise", "research", "code")
    for profile in PROFILES.values():
        assert profile.purpose and profile.why
        assert set(profile.values) <= set(Settings.model_fields)
    assert not PROFILES["default"].values  # the measured defaults themselves
    with pytest.raises(ValueError, match="choose one of default, enterprise, research, code"):
        get_profile("fast")


def test_a_profile_fills_what_is_not_set_and_explicit_values_win(monkeypatch: pytest.MonkeyPatch) -> None:
    code = Settings(profile="code")
    assert (code.positioning, code.fusion_alpha, code.chunk_size, code.compression) == ("document", 0.3, 384, "off")
    assert Settings(profile="code", positioning="edge").positioning == "edge"
    monkeypatch.setenv("RAGLINE_PROFILE", "research")
    monkeypatch.setenv("RAGLINE_CONTEXT_TOP_K", "6")
    research = Settings()
    assert research.context_top_k == 6 and research.context_budget_tokens == 6144 and research.chunker == "raptor"
    origins = research.origins()
    assert origins["context_top_k"] == "env RAGLINE_CONTEXT_TOP_K"
    assert origins["context_budget_tokens"] == "profile research"
    assert origins["fusion"] == "default"


def test_enterprise_reranks_with_the_demo_reranker_or_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ragline models install --reranker"):
        Settings(profile="enterprise", models_dir=tmp_path)
    folder = trained_demo_reranker(tmp_path)
    enterprise = Settings(profile="enterprise", models_dir=tmp_path)
    assert enterprise.reranker == str(folder)
    assert (enterprise.dense_top_k, enterprise.bm25_top_k, enterprise.context_top_k) == (15, 5, 3)
    assert enterprise.compression == "llmlingua" and enterprise.context_budget_tokens == 2432
    assert Settings(profile="enterprise", models_dir=tmp_path, reranker="mine").reranker == "mine"


def test_a_request_switches_profile_over_the_servers_own(tmp_path: Path) -> None:
    trained_demo_reranker(tmp_path)
    server = Settings(profile="enterprise", models_dir=tmp_path, context_top_k=2)
    plain = server.with_options({"profile": "default"})
    assert plain.profile == "default" and plain.reranker is None and plain.compression == "off"
    assert plain.dense_top_k == Settings.model_fields["dense_top_k"].default
    assert plain.context_top_k == 2  # set by the server, not by its profile: it stays
    research = Settings(models_dir=tmp_path).with_options({"profile": "research", "context_top_k": 5})
    assert research.context_budget_tokens == 6144 and research.context_top_k == 5
    assert Settings(models_dir=tmp_path).with_options({"fusion": "rrf"}).profile == "default"


def test_the_api_option_is_checked_like_any_other(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, models_dir=tmp_path)
    assert request_options({"profile": "code"}, settings) == {"profile": "code"}
    with pytest.raises(ApiError) as unknown:
        request_options({"profile": "fast"}, settings)
    assert unknown.value.status == 422 and "'default', 'enterprise', 'research' or 'code'" in unknown.value.message
    with pytest.raises(ApiError) as no_reranker:
        request_options({"profile": "enterprise"}, settings)
    assert no_reranker.value.status == 422 and "ragline models install --reranker" in no_reranker.value.message


def test_eval_qa_compares_one_config_per_profile(tmp_path: Path) -> None:
    configs, skipped = _configs(Settings(data_dir=tmp_path), [], None, None, ["default", "code"])
    assert list(configs) == ["profile-default", "profile-code"] and not skipped
    assert configs["profile-code"]["options"] == {"profile": "code"}
    assert configs["profile-code"]["note"] == PROFILES["code"].purpose


def test_demo_says_which_precision_stages_run_and_why() -> None:
    states = {s.stage: s for s in precision_stages(Settings())}
    assert not states["rerank"].on and "ragline models install --reranker" in states["rerank"].why
    assert not states["compression"].on and "docs/results/compression.md" in states["compression"].why
    assert states["injection screen"].on
    code = {s.stage: s for s in precision_stages(Settings(profile="code"))}
    assert not code["edge positioning"].on and "document" in code["edge positioning"].why


def test_cli_profile_flags(tmp_path: Path) -> None:
    env = {"RAGLINE_DATA_DIR": str(tmp_path), "RAGLINE_CONFIG": str(tmp_path / "none.toml")}
    bad = CliRunner().invoke(app, ["ask", "anything", "--profile", "fast"], env=env)
    assert bad.exit_code == 2 and "--profile takes default, enterprise, research, code" in bad.output
    eval_qa = ["eval", "qa", "--profile", "code,fast", "--dataset", "x.jsonl", "--collection", "sample"]
    bad = CliRunner().invoke(app, eval_qa, env=env)
    assert bad.exit_code == 2 and "got fast" in bad.output
    shown = CliRunner().invoke(app, ["config", "show", "--json"], env={**env, "RAGLINE_PROFILE": "code"})
    assert shown.exit_code == 0, shown.output
    assert "profile code" in shown.output
    toml = tmp_path / "ragline.toml"
    toml.write_text('profile = "research"\n')
    from_file = CliRunner().invoke(app, ["config", "show"], env={**env, "RAGLINE_CONFIG": str(toml)})
    assert from_file.exit_code == 0 and "profile research" in from_file.output and "6144" in from_file.output
