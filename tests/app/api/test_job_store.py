"""The ingestion job table on both engines: progress updates, per-tenant listing, and jobs a dead process left."""

from __future__ import annotations

from pathlib import Path

from app.api.jobs import JobStore


def test_jobs_are_listed_per_tenant_and_unfinished_ones_become_interrupted(
    tmp_path: Path, database_url: str | None
) -> None:
    store = JobStore(tmp_path / "ragline.sqlite", database_url=database_url)
    store.create("mine", None, "docs", 2)
    store.create("theirs", "acme", "docs", 1)
    store.create("done", None, "docs", 1)
    store.update("done", status="succeeded", files_done=1, summary={"chunks": 3}, failures={"x.pdf": "encrypted"})
    store.update("mine", status="running", files_done=1)

    done = store.get("done")
    assert done is not None and (done.status, done.summary, done.failures) == (
        "succeeded",
        {"chunks": 3},
        {"x.pdf": "encrypted"},
    )
    assert {job.id for job in store.list(None, 10)} == {"mine", "done"}  # no tenant is its own scope
    assert [job.id for job in store.list("acme", 10)] == ["theirs"]
    assert len(store.list(None, 1)) == 1 and store.get("missing") is None
    store.close()

    restarted = JobStore(tmp_path / "ragline.sqlite", database_url=database_url)
    assert sorted(restarted.mark_interrupted()) == ["mine", "theirs"]
    mine = restarted.get("mine")
    assert mine is not None and mine.status == "interrupted" and mine.files_done == 1
    assert mine.error is not None and "upload the files again" in mine.error
    assert restarted.mark_interrupted() == []
