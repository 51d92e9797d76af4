"""Every action of the page, clicked in `AppTest`, against the real stack: the effect is checked
where it happens (the traffic process, the queues, the database), not only on the page."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from sandbox import stack
from sandbox.drills import drill
from sandbox.ops import dlq, failover, traffic
from sandbox.ops.load import POISON_CUSTOMERS
from sandbox.platform.state import StackState, load
from tests.conftest import PATIENCE, committed, wait_for
from tests.dashboard.conftest import click, notices, wait_page


def test_traffic_starts_at_the_chosen_rate_and_stops(live: StackState, page: AppTest):
    page.number_input(key="traffic_rate").set_value(40.0).run()
    click(page, "traffic_start")
    assert [s.value for s in page.success] == ["traffic at 40/s for at most 600 s"]
    report = traffic.stats(live)
    assert report is not None and report["running"] and report["rate"] == 40.0
    wait_page(page, lambda at: traffic.stats(live)["accepted"] >= 40, "40 accepted orders")
    click(page, "traffic_start")
    assert [e.value for e in page.error] == [
        "start traffic failed: traffic is already running: stop it first"
    ]
    click(page, "traffic_stop")
    (stopped,) = page.success
    assert stopped.value.startswith("traffic stopped: sent ")
    assert not traffic.running(live)
    click(page, "traffic_stop")
    assert [s.value for s in page.success] == ["no traffic was running"]


def in_dlq(order_id: str):
    """The page lists ``order_id`` in its DLQ table (not the table of orders failing in the
    queue, which comes after it)."""

    def listed(at: AppTest) -> bool:
        tables = [f.value for f in at.dataframe if "receives before parked" in f.value.columns]
        return bool(tables) and order_id in set(tables[0]["order id"])

    return listed


def send_poison(page: AppTest) -> tuple[str, int]:
    """Click the button; returns the order id and the new customer it waits for, as said."""
    click(page, "poison")
    (sent,) = page.success
    said = re.fullmatch(
        r"poison order (\S+) accepted \(202\): customer (\d+) does not exist, so it ends in "
        r"the DLQ after \d+ receives\. The fix: (.+), or the button that adds the parked "
        r"orders' customers",
        sent.value,
    )
    assert said, sent.value
    customer = int(said.group(2))
    assert said.group(3) == dlq.fix_command(customer)  # `sandbox customer add CUSTOMER`
    return said.group(1), customer


def test_a_poison_order_is_parked_shown_fixed_and_redriven(live: StackState, page: AppTest):
    order_id, customer = send_poison(page)
    assert customer in POISON_CUSTOMERS
    wait_page(page, in_dlq(order_id), f"{order_id} in the DLQ table")
    page.selectbox(key="dlq_choice").set_value(order_id).run()
    body, attributes = (json.loads(j.value) for j in page.json)
    assert body["order_id"] == order_id and body["customer_id"] == customer
    assert "SentTimestamp" in attributes
    table = next(f.value for f in page.dataframe if "receives before parked" in f.value.columns)
    row = table.iloc[0]
    assert row["receives before parked"] == live.queue.max_receive_count
    assert "foreign key" in row["last error"] and row["fix"] == dlq.fix_command(customer)
    click(page, "add_customer")
    assert [s.value for s in page.success] == [
        f"customer(s) {customer} added: redrive the DLQ to commit their parked orders"
    ]
    click(page, "add_customer")  # again, before the redrive: nothing added twice
    assert [s.value for s in page.success] == [
        f"customer(s) {customer} existed already: redrive the DLQ to commit their parked orders"
    ]
    click(page, "redrive")
    assert [s.value for s in page.success] == ["redrove 1 message(s) (manual)"]
    wait_page(page, lambda at: committed(live, order_id), f"{order_id} committed")
    assert committed(live, order_id) == {order_id: 1}
    wait_page(page, lambda at: stack.queued(live) == (0, 0), "empty queues")
    assert any(c.value == "The DLQ is empty." for c in page.caption)
    # The consumer logs "order committed" just after its commit: the row can be seen first.
    wait_for(lambda: not dlq.failing(live, []), lambda: f"the log settling {dlq.failing(live, [])}")
    click(page, "add_customer")
    assert [s.value for s in page.success] == [
        "nothing to fix: no order in the DLQ or failing in the queue waits for a customer"
    ]


def test_purge_asks_for_a_confirmation_first(live: StackState, page: AppTest):
    order_id, _ = send_poison(page)
    wait_page(page, in_dlq(order_id), f"{order_id} in the DLQ table")
    assert page.button(key="purge").disabled
    page.checkbox(key="purge_confirm").check().run()
    assert not page.button(key="purge").disabled
    click(page, "purge")
    assert [s.value for s in page.success] == ["purged 1 message(s)"]
    assert not page.checkbox(key="purge_confirm").value, "one confirmation, one purge"
    assert page.button(key="purge").disabled
    wait_for(lambda: stack.queued(live) == (0, 0), "empty queues after the purge", interval=0.2)


def job_done(name: str):
    """The job panel says the job ``name`` finished (successfully or not)."""
    return lambda at: any(text.startswith(f"{name}") and "took" in text for text in notices(at))


class Held:
    """A function the page's jobs call, made to wait until the test releases it: the test then
    clicks while the job is certainly running, on a machine of any speed, instead of racing a
    job that a fixed outage keeps busy for a few seconds."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.released = threading.Event()
        real: Callable[..., Any] = getattr(owner, name)

        def when_released(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(args)
            self.released.wait(PATIENCE)
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, when_released)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[object, str], Held]]:
    """Hold ``owner.name`` (after ``page``: released before the page's jobs are waited for)."""
    made: list[Held] = []

    def hold(owner: object, name: str) -> Held:
        made.append(Held(monkeypatch, owner, name))
        return made[-1]

    yield hold
    for one in made:
        one.released.set()


def test_failover_then_failback_and_one_at_a_time(page: AppTest, held):
    started = held(failover, "failover")
    page.selectbox(key="failover_mode").set_value("switchover").run()
    page.number_input(key="failover_outage").set_value(3.0).run()
    click(page, "failover")
    assert any(text.startswith("Running: failover (switchover)") for text in notices(page))
    click(page, "failback")  # while the failover runs: refused, in words
    assert [e.value for e in page.error] == [
        "fail back failed: failover (switchover) is still running: wait for it to finish"
    ]
    started.released.set()
    # The job's end and the roles it made, both on one run of the page: a run that began
    # before the promotion may end after the job did.
    swapped = {"n1": "reader", "n2": "writer"}
    wait_page(
        page,
        lambda at: job_done("failover (switchover)")(at) and roles(at) == swapped,
        "the failover's end, n2 the writer",
    )
    assert [call[1:] for call in started.calls[:1]] == [("switchover", 3.0)]  # the page's inputs
    (done,) = page.success
    assert "n1 -> n2: writes back after" in done.value
    assert load().writer.name == "n2"
    marked = [chart.proto.spec for chart in page.get("vega_lite_chart")]
    assert all("failover-started" in spec and "failover-completed" in spec for spec in marked)
    click(page, "failback")
    wait_page(page, job_done("failback"), "the failback's end")
    assert next(s.value for s in page.success).startswith("failback: n2 -> n1")
    assert load().writer.name == "n1"


def roles(at: AppTest) -> dict[str, str]:
    """The replication table's roles, node -> role."""
    table = next(f.value for f in at.table if "role" in f.value.columns)
    return table.set_index("node")["role"].to_dict()


def test_a_drill_runs_in_the_background_and_fills_the_scoreboard(
    live: StackState, page: AppTest, held
):
    started = held(drill, "run")
    page.selectbox(key="drill_fault").set_value("crash").run()
    page.selectbox(key="drill_path").set_value("queue").run()
    page.number_input(key="drill_count").set_value(100).run()
    page.number_input(key="drill_rate").set_value(50.0).run()
    click(page, "drill")
    assert any(text.startswith("Running: drill (crash, queue") for text in notices(page))
    started.released.set()
    wait_page(page, job_done("drill (crash, queue"), "the drill's end")
    report = drill.last(live)
    assert report is not None and report["status"] == "done"
    (path,) = report["paths"]
    assert path["sent"] == 100 and path["lost"] == 0
    # Seen once in five runs: the rerun that said "took" had no scoreboard yet; the next drew it.
    wait_page(page, lambda at: any(m.label == "queue: sent" for m in at.metric), "the scoreboard")
    scores = {m.label: m.value for m in page.metric}
    assert scores["queue: sent"] == "100"
    assert scores["lost"] == "0"
    assert scores["committed"] == str(path["committed_once"])
    assert any("the accounting adds up" in c.value for c in page.caption)


def test_a_crash_with_a_lagging_reader_is_marked_and_refused_for_a_switchover(page: AppTest):
    page.selectbox(key="failover_mode").set_value("switchover").run()
    page.number_input(key="failover_lag").set_value(1.0).run()
    click(page, "failover")
    assert [e.value for e in page.error] == [
        "fail over failed: a lagging reader is for a crash: set the lag to 0 or the mode to crash"
    ]
    page.selectbox(key="failover_mode").set_value("crash").run()
    click(page, "failover")
    wait_page(page, job_done("failover (crash)"), "the failover's end")
    (done,) = page.success
    assert "n1 -> n2: writes back after" in done.value
    marked = [chart.proto.spec for chart in page.get("vega_lite_chart")]
    assert all("reader-lagging" in spec for spec in marked), "the lag is marked on the charts"
    click(page, "failback")
    wait_page(page, job_done("failback"), "the failback's end")
    assert load().writer.name == "n1"


def test_kill_the_writer_only_signals_and_the_room_watches_the_cluster_heal(page: AppTest):
    """The button sends SIGKILL and nothing else; what follows is the control plane's doing,
    shown on the page: the new writer, the control plane back to watching, its events marked."""
    old = load().writer.name
    click(page, "kill_writer")
    said = [message.value for message in page.success]
    assert any(text.startswith(f"SIGKILL sent to the writer {old} (pid ") for text in said), said

    def healed(at: AppTest) -> bool:
        table = next(f.value for f in at.table if "role" in f.value.columns)
        writer = table.set_index("role")["node"].get("writer")
        streaming = "streaming / sync" in set(table["replication"])
        watching = any(c.value.startswith("control plane: watching") for c in at.caption)
        return writer not in (None, old) and streaming and watching

    wait_page(page, healed, "the control plane's failover and rejoin")
    spec = next(chart for chart in page.get("graphviz_chart")).proto.spec
    assert 'plane [label="control plane\\nwatching"' in spec
    marked = [chart.proto.spec for chart in page.get("vega_lite_chart")]
    assert all("writer-lost" in spec and "failover-completed" in spec for spec in marked)
