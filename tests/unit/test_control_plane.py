"""The control plane's decisions, on made-up looks: `decide` does no I/O."""

from __future__ import annotations

import json

import pytest

from sandbox.ops import failover
from sandbox.platform.state import ControlPlaneSettings, Node, StackState
from sandbox.standins.control_plane import (
    SERVICE_DEAD_SECONDS,
    SERVICE_SILENT_SECONDS,
    Memory,
    Seen,
    decide,
    status_path,
)

WINDOW = 5.0
WRITER_OK = Seen(True, True, False, {"n2": "sync"})
READER_OK = Seen(True, True, True)
DEAD = Seen(alive=False)
FROZEN = Seen(alive=True)


@pytest.fixture
def state(tmp_path) -> StackState:
    return StackState(
        run_dir=str(tmp_path),  # no state.json: nothing to refresh from
        service_user="",
        data_root=str(tmp_path),
        ports={},
        nodes={"n1": Node("n1", 1, "writer", "d1"), "n2": Node("n2", 2, "reader", "d2")},
        control_plane=ControlPlaneSettings(detection_seconds=WINDOW),
    )


def looks(memory: Memory, state: StackState, *seen: tuple[float, Seen, Seen], **kw):
    """Feed (time, n1, n2) looks in order; the last decision."""
    action = None
    for now, n1, n2 in seen:
        action = decide(state, {"n1": n1, "n2": n2}, memory, now, **kw)
    return action


def test_a_healthy_cluster_needs_nothing(state):
    assert looks(Memory(), state, (0, WRITER_OK, READER_OK), (100, WRITER_OK, READER_OK)) is None


@pytest.mark.parametrize("trouble", [DEAD, FROZEN], ids=["dead", "frozen"])
def test_a_writer_lost_for_the_whole_window_is_failed_over_to_the_sync_reader(state, trouble):
    memory = Memory()
    within = looks(memory, state, (0, WRITER_OK, READER_OK), (1, trouble, READER_OK))
    assert within is None  # not yet: the window has not passed
    assert looks(memory, state, (1 + WINDOW - 0.1, trouble, READER_OK)) is None
    action = looks(memory, state, (1 + WINDOW, trouble, READER_OK))
    assert action is not None and (action.kind, action.node, action.since) == ("fail over", "n2", 1)


def test_a_writer_that_answers_again_within_the_window_starts_the_window_over(state):
    memory = Memory()
    looks(
        memory, state, (0, WRITER_OK, READER_OK), (1, FROZEN, READER_OK), (3, WRITER_OK, READER_OK)
    )
    assert looks(memory, state, (4, FROZEN, READER_OK), (1 + WINDOW, FROZEN, READER_OK)) is None


def test_a_reader_that_was_not_synchronous_never_takes_over_a_sync_cluster(state):
    """After a failover the new writer runs alone until the rejoin: its commits are nowhere else."""
    alone = Seen(True, True, False, {"n2": "async"})
    action = looks(
        Memory(), state, (0, alone, READER_OK), (1, DEAD, READER_OK), (9, DEAD, READER_OK)
    )
    assert action is not None and (action.kind, action.node) == ("restart writer", "n1")
    assert "no reader has every acknowledged commit" in action.why


def test_under_async_replication_a_streaming_reader_may_take_over(state):
    state.replication = "async"
    streaming = Seen(True, True, False, {"n2": "async"})
    action = looks(
        Memory(), state, (0, streaming, READER_OK), (1, DEAD, READER_OK), (9, DEAD, READER_OK)
    )
    assert action is not None and (action.kind, action.node) == ("fail over", "n2")


def test_a_synchronous_reader_that_is_down_itself_cannot_take_over(state):
    action = looks(Memory(), state, (0, WRITER_OK, READER_OK), (1, DEAD, DEAD), (9, DEAD, DEAD))
    assert action is not None and action.kind == "restart writer"


@pytest.mark.parametrize(
    ("writer", "reader"),
    [
        (Seen(True, True, False, {}), DEAD),
        (Seen(True, True, False, {}), FROZEN),
        (Seen(True, True, False, {}), READER_OK),  # answers, but the writer does not list it
    ],
    ids=["dead", "frozen", "not replicating"],
)
def test_a_reader_in_trouble_for_the_window_is_rejoined(state, writer, reader):
    memory = Memory()
    assert looks(memory, state, (0, writer, reader)) is None
    action = looks(memory, state, (WINDOW, writer, reader))
    assert action is not None and (action.kind, action.node) == ("rejoin reader", "n2")


def test_a_new_writer_is_watched_afresh(state):
    """The roles changed (someone failed over): what was seen of the old writer is forgotten."""
    memory = Memory()
    looks(memory, state, (0, WRITER_OK, READER_OK), (1, DEAD, READER_OK))
    state.nodes["n1"].role, state.nodes["n2"].role = "reader", "writer"
    replicas = Seen(True, True, False, {"n1": "sync"})
    assert decide(state, {"n1": READER_OK, "n2": replicas}, memory, 9) is None
    assert memory.writer == "n2" and memory.writer_lost_since is None


def test_a_dead_managed_service_is_restarted_after_a_second(state):
    memory = Memory()
    healthy = {"n1": WRITER_OK, "n2": READER_OK}
    services = {"proxy": "dead", "consumer": "ok"}
    assert decide(state, healthy, memory, 0, services) is None
    assert decide(state, healthy, memory, SERVICE_DEAD_SECONDS / 2, services) is None
    action = decide(state, healthy, memory, SERVICE_DEAD_SECONDS, services)
    assert action is not None and (action.kind, action.node) == ("restart service", "proxy")


def test_a_silent_managed_service_gets_longer_before_it_is_restarted(state):
    """Running but not answering may be busy, not stuck: a slow answer under load must not
    turn into a restart (of LocalStack, a restore)."""
    memory = Memory()
    healthy = {"n1": WRITER_OK, "n2": READER_OK}
    assert decide(state, healthy, memory, 0, {"aws": "silent"}) is None
    assert decide(state, healthy, memory, SERVICE_SILENT_SECONDS - 1, {"aws": "silent"}) is None
    assert decide(state, healthy, memory, SERVICE_SILENT_SECONDS - 0.5, {"aws": "ok"}) is None
    assert decide(state, healthy, memory, SERVICE_SILENT_SECONDS, {"aws": "silent"}) is None
    action = decide(state, healthy, memory, 2 * SERVICE_SILENT_SECONDS, {"aws": "silent"})
    assert action is not None and (action.kind, action.node) == ("restart service", "aws")


def test_localstack_back_without_its_queue_is_restored_at_once(state):
    memory = Memory()
    healthy = {"n1": WRITER_OK, "n2": READER_OK}
    action = decide(state, healthy, memory, 0, {"aws": "ok"}, unrestored=True)
    assert action is not None and (action.kind, action.node) == ("restore", "aws")
    assert decide(state, healthy, memory, 0, {"aws": "dead"}, unrestored=True) is None


def test_the_database_comes_before_the_services(state):
    """With the writer lost, nothing else is done until it is dealt with."""
    memory = Memory()
    looks(memory, state, (0, WRITER_OK, READER_OK))
    action = looks(
        memory, state, (1, DEAD, READER_OK), (9, DEAD, READER_OK), services={"proxy": "dead"}
    )
    assert action is not None and action.kind == "fail over"


def test_while_the_writer_is_lost_what_needs_no_database_is_still_repaired(state):
    """A dead API or LocalStack is restarted within the writer's window (the queue must take
    the orders the failover will let through); the proxy waits for the writer it would find."""
    memory = Memory()
    looks(memory, state, (0, WRITER_OK, READER_OK))
    services = {"proxy": "dead", "api": "dead"}
    assert looks(memory, state, (1, DEAD, READER_OK), services=services) is None
    action = looks(memory, state, (1 + SERVICE_DEAD_SECONDS, DEAD, READER_OK), services=services)
    assert action is not None and (action.kind, action.node) == ("restart service", "api")
    assert memory.writer_lost_since == 1  # its window runs on


@pytest.mark.parametrize(
    ("said", "refused"),
    [
        ({"writer": "n1", "eligible": ["n2"]}, False),
        ({"writer": "n1", "eligible": []}, True),  # n1 ran alone: its commits are nowhere else
        ({"writer": "n2", "eligible": ["n1"]}, True),  # about another writer: says nothing of n1
        (None, True),  # the control plane never said
    ],
)
def test_a_manual_failover_of_a_dead_writer_needs_the_control_planes_word(state, said, refused):
    """`sandbox failover` cannot ask a dead writer what it acknowledged: it asks what the
    control plane last saw, and refuses a reader that may lack commits."""
    if said is not None:
        status_path(state).write_text(json.dumps(said))
    why = failover._may_lack_commits(state, "n1", "n2")
    assert (why is not None) == refused
    if refused:
        assert "`make up` restarts n1 in place" in why


def test_a_service_that_answered_is_asked_again_only_after_a_while_but_seen_dead_at_once(
    state, monkeypatch
):
    """A health check is an HTTP round trip: not needed twice a second from a service that just
    answered. Whether its process lives is looked at every tick: a crash is seen at once."""
    from sandbox.standins import control_plane

    asked: list[float] = []

    class Counted:
        name = "api"
        start_timeout = 30.0

        def healthy(self, state: StackState) -> bool:
            asked.append(now[0])
            return True

    now = [1000.0]
    alive = {"api": True}
    monkeypatch.setattr(control_plane.time, "time", lambda: now[0])
    monkeypatch.setattr(control_plane.runtime, "alive", lambda state, name: alive[name])
    monkeypatch.setattr(control_plane, "SERVICES", {"api": Counted()})
    state.pids = {"api": 7}
    plane = control_plane.ControlPlane(state)
    for step in range(8):  # four seconds of ticks
        now[0] = 1000.0 + step * 0.5
        assert plane.services() == {"api": "ok"}
    assert asked == [1000.0, 1002.0]  # every ASK_EVERY_SECONDS
    alive["api"] = False
    now[0] += 0.5
    assert plane.services() == {"api": "dead"}  # at the next tick
    alive["api"] = True  # restarted: asked again at once, not taken as answering
    now[0] += 0.5
    assert plane.services() == {"api": "ok"} and asked[-1] == now[0]
