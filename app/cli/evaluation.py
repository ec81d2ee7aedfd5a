"""``ragline eval ...``: retrieval and answer quality on your data or public benchmarks."""

from __future__ import annotations

from app.eval_commands import eval_app as app
from app.eval_qa_commands import register

register(app)
