"""The consumer's log as the DLQ view and the restore read it: on from where the last look
stopped, keeping only what is still failing."""

from __future__ import annotations

import json
from types import SimpleNamespace

from sandbox.standins.aws_lambda import logs


def line(message: str, order: str, **more: object) -> str:
    return json.dumps({"message": message, "order_id": order, **more}) + "\n"


def test_an_order_fails_until_it_commits_and_a_line_being_written_waits(tmp_path):
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "consumer.log"
    state = SimpleNamespace(path=lambda *parts: tmp_path.joinpath(*parts))
    assert logs.failures(state) == {}  # no log yet
    log.write_text(line("order failed", "a", receive_count=1) + line("order committed", "b"))
    assert {o: e["receive_count"] for o, e in logs.failures(state).items()} == {"a": 1}
    with log.open("a") as out:
        out.write(line("order failed", "a", receive_count=2) + line("order failed", "c")[:-9])
    assert logs.failures(state)["a"]["receive_count"] == 2 and "c" not in logs.failures(state)
    with log.open("a") as out:  # the rest of c's line, then a commits
        out.write(line("order failed", "c")[-9:] + line("duplicate ignored", "a") + "not json\n")
    assert set(logs.failures(state)) == {"c"}
    log.unlink()  # the stack started again: a new log
    log.write_text(line("order failed", "d"))
    assert set(logs.failures(state)) == {"d"}


def test_each_look_reads_only_what_was_written_since(tmp_path, monkeypatch):
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "consumer.log"
    state = SimpleNamespace(path=lambda *parts: tmp_path.joinpath(*parts))
    log.write_text("".join(line("order committed", f"o{i}") for i in range(1000)))
    logs.failures(state)
    taken: list[bytes] = []
    monkeypatch.setattr(logs._Reader, "_take", lambda self, raw: taken.append(raw))
    with log.open("a") as out:
        out.write(line("order failed", "x"))
    logs.failures(state)
    assert taken == [line("order failed", "x").encode()]
