"""Several LLM replicas: a conversation stays on one, a failed one is skipped, and a request fails over.

The healthy replica is the session's real vLLM server; the failing ones are a closed port (a real connection
refusal) and ``FakeFlakyLLM``, a named fake upstream that answers 5xx, a fault a real vLLM cannot be made to give."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from app.fake_llm import FakeFlakyLLM
from app.llm import LLMUnavailableError, OpenAICompatibleGenerator
from app.llm_replicas import ReplicaSet
from app.settings import Settings
from app.vllm_server import VLLMServer, free_port
from retrieval.llm_affinity import current_affinity, llm_affinity

QUESTION = {"role": "user", "content": "How long do refunds take? Answer in five words."}
URLS = [f"http://10.0.0.{i}:8000/v1" for i in range(1, 4)]  # never contacted: ordering only


def test_a_key_always_picks_the_same_replica_and_keys_spread_over_all() -> None:
    replicas = ReplicaSet(URLS)
    assert replicas.order("session-1") == replicas.order("session-1")
    firsts = Counter(replicas.order(f"session-{i}")[0] for i in range(300))
    assert set(firsts) == set(URLS) and min(firsts.values()) > 60  # rendezvous hashing spreads evenly
    assert [replicas.order()[0] for _ in range(3)] == URLS  # no key: round-robin


def test_a_failed_replica_goes_last_until_its_cooldown_ends() -> None:
    replicas = ReplicaSet(URLS, cooldown_s=0.3)
    first = replicas.order("s")[0]
    replicas.mark_down(first)
    assert replicas.order("s")[-1] == first and replicas.is_down(first)
    time.sleep(0.35)
    assert replicas.order("s")[0] == first and not replicas.is_down(first)
    with pytest.raises(ValueError, match="at least one base URL"):
        ReplicaSet([" "])


def test_affinity_is_scoped_to_its_block() -> None:
    assert current_affinity() is None
    with llm_affinity("a"):
        with llm_affinity("b"):
            assert current_affinity() == "b"
        assert current_affinity() == "a"
    assert current_affinity() is None


def test_replicas_come_from_the_settings_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGLINE_LLM_REPLICAS", '["http://127.0.0.1:8001/v1", "http://127.0.0.1:8002/v1"]')
    assert Settings().llm_replicas == ["http://127.0.0.1:8001/v1", "http://127.0.0.1:8002/v1"]


def test_a_5xx_replica_fails_over_at_once_to_the_next() -> None:
    with FakeFlakyLLM(failures=100, status=500) as broken, FakeFlakyLLM(failures=0) as healthy:
        client = OpenAICompatibleGenerator(broken.base_url, "m", timeout_s=30, retries=0, replicas=[healthy.base_url])
        for _ in range(3):
            assert client.chat([QUESTION], max_tokens=8).text == "Refunds take 5 days [1]."
        assert broken.requests == 1 and healthy.requests == 3  # skipped while cooling down
        assert client.replica_set.is_down(broken.base_url.rstrip("/"))


def test_every_replica_down_is_one_error_naming_the_last_tried() -> None:
    dead = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(2)]
    client = OpenAICompatibleGenerator(dead[0], "m", timeout_s=10, retries=0, replicas=dead[1:])
    with pytest.raises(LLMUnavailableError, match="is not reachable"):
        client.chat([QUESTION], max_tokens=8)
    assert all(client.replica_set.is_down(url) for url in dead)


@pytest.mark.vllm
def test_a_dead_replica_costs_no_failed_request_against_real_vllm(vllm_server: VLLMServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    # The cooldown outlasts the test: four answers from a CPU vLLM under load can take longer than the default 10 s,
    # after which the dead replica would rightly be tried again and no longer read as down.
    client = OpenAICompatibleGenerator(
        dead, vllm_server.served_name, timeout_s=300, retries=0, replicas=[vllm_server.base_url], cooldown_s=3600
    )
    answers = []
    for session in ("s-1", "s-2", "s-3", "s-4"):
        with llm_affinity(session):
            answers.append(client.chat([QUESTION], max_tokens=8))
    assert all(answer.completion_tokens > 0 for answer in answers)
    assert client.replica_set.is_down(dead) and not client.replica_set.is_down(vllm_server.base_url)
