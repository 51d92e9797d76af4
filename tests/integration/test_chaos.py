"""`sandbox chaos` on the session's stack: minutes of traffic, every kind of unannounced fault the
native profile can take once (LocalStack killed and the double failures among them), and every
acknowledged order accounted for. The stack repairs each fault by itself; nothing here helps it."""

from __future__ import annotations

from sandbox.drills import chaos
from sandbox.ops import dlq
from tests.conftest import wait_drained, wait_for

SEED = 30
INTERVAL = 15.0


def test_chaos_with_a_fixed_seed_loses_nothing_doubles_nothing_and_ends_whole(live):
    wait_for(lambda: not chaos.whole(live), lambda: f"a whole stack ({chaos.whole(live)})")
    kinds = chaos.kinds_on(live.runtime)
    assert {"localstack-killed", "localstack-and-writer-killed"} <= set(kinds), kinds
    assert "writer-killed-while-rejoining" in kinds
    minutes = (len(kinds) + 1) * INTERVAL / 60  # a fault of each kind, then traffic a while
    seen: list[str] = []

    report = chaos.run(
        live,
        SEED,
        minutes,
        rate=20,
        interval=INTERVAL,
        kinds=kinds,
        progress=lambda step, info: seen.append(step),
    )

    done = [row.fault for row in report.faults]
    assert sorted(done) == sorted(kinds), report.faults  # every kind once: a shuffled deck
    assert done == [p.fault for p in chaos.schedule(SEED, minutes, INTERVAL, kinds)]
    assert all(row.whole_after_s is not None for row in report.faults), report.faults
    account = report.account
    assert account is not None
    assert (account.lost, account.duplicates, account.unexpected) == (0, 0, 0), account
    assert account.acknowledged == account.committed_once + account.in_dlq, account
    assert account.acknowledged > 0 and report.drained
    assert report.whole_at_end, report.not_whole
    assert report.ok, report.problems
    assert {"live", "fault", "whole", "draining"} <= set(seen)
    rejoining = next(r for r in report.faults if r.fault == "writer-killed-while-rejoining")
    assert len(rejoining.hit) == 2 and rejoining.hit[0] != rejoining.hit[1], rejoining
    assert chaos.last(live)["status"] == "done"

    # Leave the stack as the next test wants it: the DLQ empty (a short test queue may park an
    # order during a failover; nothing of the run is lost, and a redrive commits it), whole.
    if account.in_dlq:
        dlq.redrive(live)
        wait_drained(live, f"{report.prefix}-", account.acknowledged)
    wait_for(lambda: not chaos.whole(live), lambda: f"a whole stack ({chaos.whole(live)})")
