"""What the dashboard's buttons do: each is the CLI command of the same name, through the same
`sandbox` functions, returning the line the page shows (or the background job it started)."""

from __future__ import annotations

import uuid
from typing import Any

from dashboard import jobs
from sandbox.drills import chaos
from sandbox.drills import drill as drills
from sandbox.ops import dlq, failover, faults, traffic
from sandbox.ops.dlq import Parked
from sandbox.ops.load import Client, order, poison_customer
from sandbox.platform.state import StackState
from sandbox.spec.choices import FAILOVER_MODES, words


def start_traffic(state: StackState, rate: float, max_seconds: float) -> str:
    """`sandbox traffic start`."""
    traffic.start(state, rate, max_seconds)
    return f"traffic at {rate:g}/s for at most {max_seconds:g} s"


def stop_traffic(state: StackState) -> str:
    """`sandbox traffic stop`."""
    if not traffic.stop(state):
        return "no traffic was running"
    report = traffic.stats(state) or {}
    return f"traffic stopped: sent {report.get('sent', 0)}, accepted {report.get('accepted', 0)}"


def send_poison(state: StackState) -> str:
    """`sandbox send --poison`: an order for a new customer the database does not know."""
    customer = poison_customer()
    client = Client(state)
    try:
        sent = client.post(order(f"order-{uuid.uuid4().hex[:12]}", customer))
    finally:
        client.close()
    if sent.status == 0:
        raise RuntimeError(sent.unanswered(state.api_url))
    if not sent.accepted:
        raise RuntimeError(f"the API answered {sent.status} {sent.error}".strip())
    return (
        f"poison order {sent.order_id} accepted ({sent.status}): customer {customer} does not "
        f"exist, so it ends in the DLQ after {state.queue.max_receive_count} receives. The fix: "
        f"{dlq.fix_command(customer)}, or the button that adds the parked orders' customers"
    )


def fail_over(state: StackState, mode: str, outage: float, lag: float = 0.0) -> jobs.Job:
    """`sandbox failover --mode MODE --outage S --lag S`, in the background."""
    if mode not in FAILOVER_MODES:
        raise ValueError(f"mode must be {words(FAILOVER_MODES)}")
    if lag and mode != "crash":
        raise ValueError("a lagging reader is for a crash: set the lag to 0 or the mode to crash")

    def work(job: jobs.Job) -> str:
        done = failover.failover(state, mode, outage, lag=lag)  # type: ignore[arg-type]
        return (
            f"{done.old_writer} -> {done.new_writer}: writes back after {done.seconds:.2f} s; "
            f"{done.old_writer} is the reader now"
        )

    return jobs.start(f"failover ({mode})", work)


def kill_writer(state: StackState) -> str:
    """`sandbox fault writer-killed`: SIGKILL to the writer and nothing else; the control plane
    notices and fails it over by itself."""
    name, pid = faults.unannounced(state, "writer-killed")
    window = state.control_plane.detection_seconds
    return (
        f"SIGKILL sent to the writer {name} (pid {pid}), and nothing else: the control plane "
        f"fails it over once it has not answered for {window:g} s"
    )


def fail_back(state: StackState) -> jobs.Job:
    """`sandbox failback`, in the background."""

    def work(job: jobs.Job) -> str:
        done = failover.failback(state)
        return "already n1 writer" if done is None else f"{done.old_writer} -> {done.new_writer}"

    return jobs.start("failback", work)


def run_drill(state: StackState, fault: str, path: str, count: int, rate: float) -> jobs.Job:
    """`sandbox drill`, in the background; its progress goes to the job, its report to
    ``drill.json`` (which the scoreboard reads)."""

    def work(job: jobs.Job) -> str:
        job.note(step="sending", sent=0)

        def progress(step: str, info: dict[str, Any]) -> None:
            if step == "sent":
                job.count("sent")
            elif step == "paths":
                job.note(total=count * len(info["paths"]))
            else:
                job.note(step=step)

        report = drills.run(state, fault, path, count, rate, progress=progress)
        lost = sum(p.lost for p in report.paths)
        return f"drill ({fault}, {path}) done: {lost} lost, RTO {report.rto_seconds} s"

    return jobs.start(f"drill ({fault}, {path}, {count} at {rate:g}/s)", work)


#: A chaos run from the page is a few minutes long at most: a longer one is the CLI's.
CHAOS_MAX_MINUTES = 10.0
#: Faults a run started here cannot make: the page's own process runs it (a job's thread), and
#: would end with it.
NOT_FROM_THE_PAGE = ("dashboard-killed",)


def chaos_kinds(state: StackState) -> tuple[str, ...]:
    """The kinds a chaos run started from the page may draw from."""
    return tuple(k for k in chaos.kinds_on(state.runtime) if k not in NOT_FROM_THE_PAGE)


def run_chaos(
    state: StackState,
    minutes: float,
    rate: float,
    interval: float,
    seed: int,
    kinds: list[str] | None = None,
) -> jobs.Job:
    """`sandbox chaos`, in the background and a few minutes long; its faults are cluster events
    ("fault"), which the charts mark, and its report goes to ``chaos.json``."""
    if not 0 < minutes <= CHAOS_MAX_MINUTES:
        raise ValueError(f"a run from the page lasts at most {CHAOS_MAX_MINUTES:g} minutes")
    chosen = list(chaos_kinds(state) if kinds is None else kinds)
    refused = [k for k in chosen if k in NOT_FROM_THE_PAGE]
    if refused:
        raise ValueError(f"{', '.join(refused)}: the page would end its own run (use the CLI)")
    chaos.check(minutes, rate, interval)
    chaos.check_kinds(chosen, state.runtime)

    def work(job: jobs.Job) -> str:
        job.note(step="checking that the stack is whole")

        def progress(step: str, info: dict[str, Any]) -> None:
            if step == "live":
                depth = "?" if info["depth"] is None else info["depth"]
                committed = "?" if info["committed"] is None else info["committed"]
                job.note(
                    step=f"fault {info['faults_done']}/{info['faults_planned']}: "
                    f"{info['fault'] or 'none now'}; queue {depth}; acknowledged "
                    f"{info['acknowledged']}, committed {committed}"
                )
            elif step == "draining":
                job.note(step="traffic stopped: draining, then the account")

        report = chaos.run(state, seed, minutes, rate, interval, chosen, progress=progress)
        done = report.account
        said = (
            f"{len(report.faults)} fault(s); {done.acknowledged if done else '?'} acknowledged, "
            f"{done.committed_once if done else '?'} committed once, "
            f"{done.in_dlq if done else '?'} in the DLQ, {done.lost if done else '?'} lost, "
            f"{done.duplicates if done else '?'} duplicates"
        )
        if not report.ok:
            raise RuntimeError(f"{said}: {'; '.join(report.problems)}")
        return f"{said}; whole at the end"

    return jobs.start(f"chaos (seed {seed}, {minutes:g} min at {rate:g}/s)", work)


def redrive(state: StackState) -> str:
    """`sandbox dlq redrive`."""
    moved, method = dlq.redrive(state)
    return f"redrove {moved} message(s) ({method})"


def fix_parked(state: StackState) -> str:
    """`sandbox customer add --parked`: each customer the orders in the DLQ (and those failing
    in the queue) wait for, named with what was done."""
    done = dlq.fix_parked(state)
    if not done:
        return "nothing to fix: no order in the DLQ or failing in the queue waits for a customer"
    added = [str(fixed.customer_id) for fixed in done if fixed.added]
    existed = [str(fixed.customer_id) for fixed in done if not fixed.added]
    said = [f"customer(s) {', '.join(added)} added"] if added else []
    said += [f"customer(s) {', '.join(existed)} existed already"] if existed else []
    return f"{'; '.join(said)}: redrive the DLQ to commit their parked orders"


def purge(state: StackState) -> str:
    """`sandbox dlq purge --yes` (the page asks first)."""
    return f"purged {dlq.purge(state)} message(s)"


def dlq_message(state: StackState, key: str) -> Parked:
    """`sandbox dlq show KEY`."""
    return dlq.show(state, key)
