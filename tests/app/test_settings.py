import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import Settings


def test_defaults_come_from_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.data_dir == Path(".ragline")
    assert settings.resolved_models_dir == Path(".ragline/models")
    assert settings.origins()["generator"] == "default"


def test_env_beats_toml_and_origins_say_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ragline.toml").write_text('generator = "smollm2-135m"\nchunk_size = 128\n')
    monkeypatch.setenv("RAGLINE_CHUNK_SIZE", "64")
    settings = Settings()
    assert settings.generator == "smollm2-135m"
    assert settings.chunk_size == 64
    origins = settings.origins()
    assert origins["generator"] == "ragline.toml"
    assert origins["chunk_size"] == "env RAGLINE_CHUNK_SIZE"


def test_invalid_values_name_the_field(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError, match="chunk_overlap"):
        Settings(chunk_size=32, chunk_overlap=32)
    (tmp_path / "ragline.toml").write_text("no_such_setting = 1\n")
    with pytest.raises(ValidationError, match="no_such_setting"):
        Settings()


def test_per_collection_abstain_cuts_come_from_json_and_are_range_checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGLINE_ABSTAIN_THRESHOLDS", '{"nq-open-oracle": 0.5}')
    assert Settings().abstain_thresholds == {"nq-open-oracle": 0.5}
    monkeypatch.setenv("RAGLINE_ABSTAIN_THRESHOLDS", '{"nq-open-oracle": 5}')
    with pytest.raises(ValidationError, match="abstain_thresholds"):
        Settings()


def test_database_url_is_checked_at_start_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert Settings().database_url is None
    monkeypatch.setenv("RAGLINE_DATABASE_URL", "")  # as compose passes an unset variable
    assert Settings().database_url is None
    monkeypatch.setenv("RAGLINE_DATABASE_URL", "postgresql+psycopg://ragline:pw@db:5432/ragline")
    assert Settings().database_url == "postgresql+psycopg://ragline:pw@db:5432/ragline"
    monkeypatch.setenv("RAGLINE_DATABASE_URL", "mysql://ragline:pw@db/ragline")
    with pytest.raises(ValueError, match="PostgreSQL"):
        Settings()


def test_as_env_gives_a_child_process_the_same_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``ragline bench replicas`` hands its ``ragline serve`` processes: only what differs from the defaults,
    and read back through the environment it is equal."""
    settings = Settings(
        data_dir=tmp_path,
        database_url="postgresql://ragline@db:5432/ragline",
        llm_replicas=["http://llm2:8000/v1"],
        context_top_k=6,
        ingest_workers_in_process=False,
    )
    env = settings.as_env()
    assert env["RAGLINE_LLM_REPLICAS"] == '["http://llm2:8000/v1"]'
    assert env["RAGLINE_INGEST_WORKERS_IN_PROCESS"] == "false"
    assert "RAGLINE_FUSION" not in env  # a default is left to the child's own defaults
    for name in [n for n in os.environ if n.startswith("RAGLINE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no ragline.toml here
    assert Settings() == settings
