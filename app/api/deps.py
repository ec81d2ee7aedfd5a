"""Dependencies as typed aliases: routes ask for what they need, tests can swap it."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from fastapi import Depends

from app.pipeline import Pipeline
from app.resources import Resources
from app.settings import Settings, get_settings


@lru_cache(maxsize=1)
def get_resources() -> Resources:
    return Resources(get_settings())


@lru_cache(maxsize=1)
def get_pipeline() -> Pipeline:
    return Pipeline(get_resources())


SettingsDep = Annotated[Settings, Depends(get_settings)]
ResourcesDep = Annotated[Resources, Depends(get_resources)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
