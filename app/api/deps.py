"""Dependencies as typed aliases: routes ask for what they need, tests can swap it (``dependency_overrides``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api.errors import ApiError
from app.api.jobs import JobRunner
from app.api.metrics import Metrics
from app.api.state import ServiceState
from app.api.tenancy import Tenant
from app.query.pipeline import Pipeline
from app.resources import Resources
from app.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="An API key from RAGLINE_API_KEYS_FILE (none in open mode).")


def get_state(request: Request) -> ServiceState:
    return request.app.state.ragline


StateDep = Annotated[ServiceState, Depends(get_state)]


def get_resources(state: StateDep) -> Resources:
    return state.resources()


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def get_settings(resources: ResourcesDep) -> Settings:
    return resources.settings


def get_pipeline(state: StateDep, resources: ResourcesDep) -> Pipeline:
    return state.pipeline(resources)


def get_jobs(state: StateDep, resources: ResourcesDep) -> JobRunner:
    return state.jobs(resources)


def get_metrics(state: StateDep) -> Metrics:
    return state.metrics


def get_tenant(
    state: StateDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Tenant:
    """The caller's tenant from the bearer key; 401 with what to send when the key is missing or unknown."""
    if state.keys.open:
        return Tenant(None)
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise ApiError(401, "missing API key: send the header 'Authorization: Bearer <key>'", headers=challenge)
    tenant = state.keys.tenant_for(credentials.credentials)
    if tenant is None:
        raise ApiError(401, "invalid API key: it is not in the server's API keys file", headers=challenge)
    return tenant


SettingsDep = Annotated[Settings, Depends(get_settings)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
JobsDep = Annotated[JobRunner, Depends(get_jobs)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
TenantDep = Annotated[Tenant, Depends(get_tenant)]
