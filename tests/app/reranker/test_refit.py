"""A refit reads its fit-only twin's recipe and chosen settings from the twin's record, and refuses what it cannot
refit honestly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.reranker.card import LOSS_NAMES, RECORD
from app.reranker.refit import FixedSettings, fixed_settings, measured_settings, refit_recipe
from app.settings import Settings


def _evaluation(chosen: str, top_n: int | list[int] = 30) -> dict[str, object]:
    return {"overall": {"chosen": chosen}, "top_n": top_n}


def test_the_chosen_candidate_becomes_settings() -> None:
    assert fixed_settings(_evaluation("len=192 n=30 w=0.3", [20, 30])) == FixedSettings("isolated", 192, 30, 0.3)
    assert fixed_settings(_evaluation("len=128 w=0.4", 20)) == FixedSettings("isolated", 128, 20, 0.4)
    joint = fixed_settings(_evaluation("long=512 n=20 w=0.4", [20, 30]))
    assert joint == FixedSettings("long-context", 512, 20, 0.4) and joint.label == "long=512 w=0.4"
    assert FixedSettings.from_record(joint.as_record()) == joint


def test_hybrid_or_a_calibrated_blend_cannot_be_refit() -> None:
    with pytest.raises(ValueError, match="no reranker setting"):
        fixed_settings(_evaluation("hybrid"))
    with pytest.raises(ValueError, match="calibrated blend"):
        fixed_settings(_evaluation("len=192 n=30 calibrated"))


TRAINED = {"epochs": 2.0, "batch_size": 16, "learning_rate": 5e-05, "max_length": 128, "max_steps": -1,
           "save_steps": 50, "warmup": 0.1, "seed": 13, "device": "cuda", "layers": 3,
           "loss": LOSS_NAMES["lambda"], "steps": 918, "seconds": 1178.1}  # fmt: skip
"""A twin's recorded training section: the recipe (trained on a GPU) and what the run did."""


def _twin(folder: Path, **changes: object) -> Path:
    record = {
        "mode": "supervised",
        "data": {"split": {"seed": 13, "sizes": {"fit": 3, "choose": 1, "report": 1}}},
        "training": TRAINED,
        "evaluation": _evaluation("len=192 n=30 w=0.3", [20, 30]),
        **changes,
    }
    folder.mkdir()
    (folder / RECORD).write_text(json.dumps(record))
    return folder


def test_the_recipe_is_the_twins_on_this_device(tmp_path: Path) -> None:
    record, config, fixed = refit_recipe(_twin(tmp_path / "twin"), "cpu")
    assert config.loss == "lambda" and config.layers == 3 and config.max_length == 128 and config.epochs == 2.0
    assert config.device == "cpu" and fixed == FixedSettings("isolated", 192, 30, 0.3)
    assert record["data"]["split"]["sizes"]["choose"] == 1


def test_a_refit_of_a_refit_or_of_an_unevaluated_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="itself a refit"):
        refit_recipe(_twin(tmp_path / "refit", refit_of={"model": "twin"}), "cpu")
    with pytest.raises(ValueError, match="no choose/report evaluation"):
        refit_recipe(_twin(tmp_path / "fresh", evaluation=None), "cpu")
    with pytest.raises(ValueError, match="not trained on a fit/choose/report split"):
        refit_recipe(_twin(tmp_path / "synthetic", mode="synthetic"), "cpu")
    with pytest.raises(FileNotFoundError):
        refit_recipe(tmp_path / "missing", "cpu")


def test_a_model_carries_the_settings_its_report_number_was_measured_with() -> None:
    refit = {"refit_of": {"model": "twin", "chosen": "len=128 n=30 w=0.4", "mode": "isolated", "length": 128,
                          "top_n": 30, "weight": 0.4}}  # fmt: skip
    assert measured_settings(refit) == FixedSettings("isolated", 128, 30, 0.4)
    assert measured_settings({"evaluation": _evaluation("long=512 n=20 w=0.3", [20, 30])}) == FixedSettings(
        "long-context", 512, 20, 0.3
    )
    assert measured_settings({"evaluation": _evaluation("len=192 calibrated")}) is None
    assert measured_settings({"evaluation": None}) is None

    values = FixedSettings("isolated", 128, 30, 0.4).as_settings()
    assert values == {"rerank_mode": "isolated", "rerank_max_length": 128, "rerank_top_n": 30, "rerank_weight": 0.4}
    assert Settings(**values).rerank_max_length == 128  # real setting names, valid values
    joint = FixedSettings("long-context", 512, 20, 0.3).as_settings()
    assert joint["rerank_context_tokens"] == 512 and Settings(**joint).rerank_mode == "long-context"
