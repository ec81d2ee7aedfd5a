"""Memory state on both engines (SQLite file, real PostgreSQL): durable across reopening, scoped by tenant, one
lease per session across processes, gap-free turn numbering under concurrent writers."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import insert, update

from memory.errors import InvalidNameError, SessionNotFoundError
from memory.store import MemoryStore
from retrieval.store.tables import sessions, turns


def test_everything_survives_a_restart(tmp_path: Path, database_url: str | None) -> None:
    store = MemoryStore(tmp_path / "memory.sqlite3", database_url=database_url)
    store.create_session("s1", tenant="", user="ana", collection="sample")
    store.add_turn("s1", question="q0", search_query=None, answer="a0", prompt_tokens=100, memory_tokens=0)
    store.add_turn("s1", question="q1", search_query="q1 standalone", answer="a1", prompt_tokens=120, memory_tokens=40)
    store.set_tier("s1", [0], "evicted")
    store.set_summary("s1", "- user asked q0", "fold", [0])
    store.add_item("s1", tenant="", user="ana", kind="fact", text="q0")
    store.close()

    reopened = MemoryStore(tmp_path / "memory.sqlite3", database_url=database_url)
    session = reopened.session("s1", tenant="")
    assert (session.summary, session.turns, session.user) == ("- user asked q0", 2, "ana")
    assert [(t.position, t.tier) for t in reopened.turns("s1")] == [(0, "summarized"), (1, "active")]
    assert reopened.turns("s1")[1].search_query == "q1 standalone"
    assert [s["text"] for s in reopened.summaries("s1")] == ["- user asked q0"]
    assert [i.text for i in reopened.items(session_id="s1")] == ["q0"]


def test_sessions_are_scoped_by_tenant_and_deleted_completely(tmp_path: Path, database_url: str | None) -> None:
    store = MemoryStore(tmp_path / "memory.sqlite3", database_url=database_url)
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


def test_session_ids_are_per_tenant_so_an_id_reveals_nothing(tmp_path: Path, database_url: str | None) -> None:
    store = MemoryStore(tmp_path / "memory.sqlite3", database_url=database_url)
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


def test_rows_stored_under_bare_ids_are_moved_to_their_tenant_key_on_open(
    tmp_path: Path, database_url: str | None
) -> None:
    path = tmp_path / "memory.sqlite3"
    store = MemoryStore(path, database_url=database_url)
    with store._db.write() as db:  # the layout data written before ids were per tenant had
        db.execute(
            insert(sessions).values(
                id="old", tenant="acme", user="ana", collection="acme__docs", created_at=0, updated_at=0
            )
        )
        db.execute(
            insert(turns).values(session_id="old", position=0, question="q", answer="a", tier="active", created_at=0)
        )
    store.close()
    reopened = MemoryStore(path, database_url=database_url)
    session = reopened.session("old", tenant="acme")
    assert session.key == "acme/old" and session.turns == 1
    assert [t.question for t in reopened.turns(session.key)] == ["q"]
    assert (
        MemoryStore(path, database_url=database_url).session("old", tenant="acme").key == "acme/old"
    )  # a second open changes nothing


@pytest.mark.parametrize("bad", ["", "-leading", "has space", "a/b", "x" * 129])
def test_unsafe_names_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidNameError):
        MemoryStore(tmp_path / "m.sqlite3").create_session(bad, tenant="", user="ana", collection="sample")


def test_the_lease_is_exclusive_across_processes_and_expires(tmp_path: Path, database_url: str | None) -> None:
    path = tmp_path / "memory.sqlite3"
    store = MemoryStore(path, database_url=database_url)
    store.create_session("s", tenant="", user="ana", collection="sample")
    assert store.try_lock("s", "here", lease_s=60)
    other_process = (
        "import sys; from pathlib import Path; from memory.store import MemoryStore; "
        "s = MemoryStore(Path(sys.argv[1]), database_url=sys.argv[2] or None); print(s.try_lock('s', 'there', 60))"
    )
    run = [sys.executable, "-c", other_process, str(path), database_url or ""]
    cwd = Path(__file__).resolve().parents[2]
    assert subprocess.run(run, capture_output=True, text=True, cwd=cwd, check=True).stdout.strip() == "False"
    store.unlock("s", "here")
    assert subprocess.run(run, capture_output=True, text=True, cwd=cwd, check=True).stdout.strip() == "True"
    assert not store.try_lock("s", "here", lease_s=60)
    # A lease left by a crashed holder expires: the other process's 60 s lease is moved into the past.
    with store._db.write() as db:
        db.execute(update(sessions).where(sessions.c.id == "s").values(lock_expires=0))
    assert store.try_lock("s", "here", lease_s=60)


def test_concurrent_turns_of_one_session_get_every_position_once(tmp_path: Path, database_url: str | None) -> None:
    """Writers with their own connections race on one session: the row lock (PostgreSQL) or the write lock (SQLite)
    must hand out 0..N-1 with no gap and no duplicate, while another session's turns go on beside them."""
    path = tmp_path / "memory.sqlite3"
    MemoryStore(path, database_url=database_url).create_session("race", tenant="", user="ana", collection="c")
    MemoryStore(path, database_url=database_url).create_session("other", tenant="", user="bob", collection="c")
    writers, turns_each = 6, 15
    start, errors = threading.Barrier(writers), []

    def write(worker: int) -> None:
        store = MemoryStore(path, database_url=database_url)  # its own engine, so its own connections
        try:
            start.wait()
            for i in range(turns_each):
                session = "other" if worker == 0 else "race"
                store.add_turn(
                    session,
                    question=f"{worker}-{i}",
                    search_query=None,
                    answer="a",
                    prompt_tokens=None,
                    memory_tokens=0,
                )
        except Exception as exc:  # surfaced below: an exception in a thread would otherwise vanish
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = MemoryStore(path, database_url=database_url)
    race = store.turns("race")
    assert [t.position for t in race] == list(range((writers - 1) * turns_each))
    assert sorted(t.question for t in race) == sorted(f"{w}-{i}" for w in range(1, writers) for i in range(turns_each))
    assert [t.position for t in store.turns("other")] == list(range(turns_each))
    assert store.session("race", tenant="").turns == (writers - 1) * turns_each
