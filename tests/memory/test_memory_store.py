"""SQLite memory state: durable across reopening, scoped by tenant, one lease per session across connections."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from memory.errors import InvalidNameError, SessionNotFoundError
from memory.store import MemoryStore


def test_everything_survives_a_restart(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "memory.sqlite3")
    store.create_session("s1", tenant="", user="ana", collection="sample")
    store.add_turn("s1", question="q0", search_query=None, answer="a0", prompt_tokens=100, memory_tokens=0)
    store.add_turn("s1", question="q1", search_query="q1 standalone", answer="a1", prompt_tokens=120, memory_tokens=40)
    store.set_tier("s1", [0], "evicted")
    store.set_summary("s1", "- user asked q0", "fold", [0])
    store.add_item("s1", tenant="", user="ana", kind="fact", text="q0")
    store.close()

    reopened = MemoryStore(tmp_path / "memory.sqlite3")
    session = reopened.session("s1", tenant="")
    assert (session.summary, session.turns, session.user) == ("- user asked q0", 2, "ana")
    assert [(t.position, t.tier) for t in reopened.turns("s1")] == [(0, "summarized"), (1, "active")]
    assert reopened.turns("s1")[1].search_query == "q1 standalone"
    assert [s["text"] for s in reopened.summaries("s1")] == ["- user asked q0"]
    assert [i.text for i in reopened.items(session_id="s1")] == ["q0"]


def test_sessions_are_scoped_by_tenant_and_deleted_completely(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "memory.sqlite3")
    mine = store.create_session("mine", tenant="acme", user="ana", collection="sample")
    store.add_turn(mine.key, question="q", search_query=None, answer="a", prompt_tokens=None, memory_tokens=0)
    store.add_item(mine.key, tenant="acme", user="ana", kind="fact", text="q")
    with pytest.raises(SessionNotFoundError):
        store.session("mine", tenant="globex")
    assert store.sessions(tenant="globex") == []
    assert [s.id for s in store.sessions(tenant="acme")] == ["mine"]
    assert mine.as_dict()["id"] == "mine" and "key" not in mine.as_dict()
    with pytest.raises(SessionNotFoundError):
        store.delete_session("mine", tenant="globex")
    store.delete_session("mine", tenant="acme")
    assert store.turns(mine.key) == [] and store.items(session_id=mine.key) == []
    with pytest.raises(SessionNotFoundError):
        store.session("mine", tenant="acme")


def test_session_ids_are_per_tenant_so_an_id_reveals_nothing(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "memory.sqlite3")
    acme = store.create_session("demo", tenant="acme", user="ana", collection="acme__docs")
    globex = store.create_session("demo", tenant="globex", user="bob", collection="globex__docs")
    local = store.create_session("demo", tenant="", user="me", collection="docs")
    assert len({acme.key, globex.key, local.key}) == 3 and acme.id == globex.id == local.id == "demo"
    store.add_turn(acme.key, question="acme q", search_query=None, answer="a", prompt_tokens=None, memory_tokens=0)
    assert store.turns(globex.key) == [] and store.session("demo", tenant="globex").turns == 0
    with pytest.raises(InvalidNameError, match="already exists"):
        store.create_session("demo", tenant="acme", user="ana", collection="acme__docs")
    store.delete_session("demo", tenant="acme")
    assert store.exists("demo", tenant="globex") and store.exists("demo", tenant="")


def test_rows_stored_under_bare_ids_are_moved_to_their_tenant_key_on_open(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    store = MemoryStore(path)
    with store._transaction() as db:  # the layout data written before ids were per tenant had
        db.execute(
            "INSERT INTO sessions (id, tenant, user, collection, created_at, updated_at) "
            "VALUES ('old', 'acme', 'ana', 'acme__docs', 0, 0)"
        )
        db.execute(
            "INSERT INTO turns (session_id, position, question, answer, tier, created_at) "
            "VALUES ('old', 0, 'q', 'a', 'active', 0)"
        )
    store.close()
    reopened = MemoryStore(path)
    session = reopened.session("old", tenant="acme")
    assert session.key == "acme/old" and session.turns == 1
    assert [t.question for t in reopened.turns(session.key)] == ["q"]
    assert MemoryStore(path).session("old", tenant="acme").key == "acme/old"  # a second open changes nothing


@pytest.mark.parametrize("bad", ["", "-leading", "has space", "a/b", "x" * 129])
def test_unsafe_names_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidNameError):
        MemoryStore(tmp_path / "m.sqlite3").create_session(bad, tenant="", user="ana", collection="sample")


def test_the_lease_is_exclusive_across_processes_and_expires(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    store = MemoryStore(path)
    store.create_session("s", tenant="", user="ana", collection="sample")
    assert store.try_lock("s", "here", lease_s=60)
    other_process = (
        "import sys; from pathlib import Path; from memory.store import MemoryStore; "
        "s = MemoryStore(Path(sys.argv[1])); print(s.try_lock('s', 'there', 60))"
    )
    run = [sys.executable, "-c", other_process, str(path)]
    cwd = Path(__file__).resolve().parents[2]
    assert subprocess.run(run, capture_output=True, text=True, cwd=cwd, check=True).stdout.strip() == "False"
    store.unlock("s", "here")
    assert subprocess.run(run, capture_output=True, text=True, cwd=cwd, check=True).stdout.strip() == "True"
    assert not store.try_lock("s", "here", lease_s=60)
    # A lease left by a crashed holder expires: the other process's 60 s lease is moved into the past.
    store._execute("UPDATE sessions SET lock_expires = 0 WHERE id = 's'")
    assert store.try_lock("s", "here", lease_s=60)
