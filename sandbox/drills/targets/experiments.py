"""One drill's Fault Injection Service (FIS) experiment: started from one of the stack's templates
(``aws/stacks/fis.py``), polled, stopped if the drill leaves while it runs, and told in the report:
how it ended, which stop condition fired, where FIS wrote its report.

The FIS and CloudWatch clients are the caller's (`sandbox.drills.targets.aws.AwsTarget` makes
every client up front); botocore is imported where used, so `sandbox --help` does not load it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

#: FIS experiment states (GetExperiment): which end an experiment, and which of those are errors.
ENDED = ("completed", "stopped", "failed", "cancelled")
BROKEN = ("failed", "cancelled")
#: Action states that mean the action got as far as running.
ACTED = ("running", "completed", "stopping", "stopped")


class Experiment:
    """An experiment from ``template_id``, once `start` has been called; ``token`` is its
    StartExperiment client token (a retried request cannot start a second one)."""

    def __init__(self, fis: Any, cloudwatch: Any, template_id: str, token: str) -> None:
        self._fis, self._cloudwatch = fis, cloudwatch
        self.template_id, self.token = template_id, token
        self.last: dict[str, Any] = {}  # as FIS last described it
        self.stop_note: str | None = None  # why it was stopped, once it has been
        self._report: str | None = None

    @property
    def id(self) -> str:
        return self.last["id"]

    @property
    def status(self) -> str:
        return self.last["state"]["status"]

    def start(self) -> None:
        started = self._fis.start_experiment(
            clientToken=self.token, experimentTemplateId=self.template_id
        )
        self.last = started["experiment"]

    def poll(self) -> str:
        """GetExperiment; returns its status. A failed or cancelled experiment raises with
        FIS's reason; a stopped one is noted with the stop conditions in ALARM."""
        self.last = self._fis.get_experiment(id=self.id)["experiment"]
        state = self.last["state"]
        if state["status"] in BROKEN:
            raise RuntimeError(
                f"FIS experiment {self.id} {state['status']}: {state.get('reason', '')}"
            )
        if state["status"] == "stopped" and self.stop_note is None:
            self.stop_note = self._stopped_because()
        return state["status"]

    def acted(self) -> bool:
        """Whether any of its actions got as far as running."""
        actions = self.last.get("actions", {}).values()
        return any(a.get("state", {}).get("status") in ACTED for a in actions)

    def acting(self) -> bool:
        """Whether an action is running now: FIS has written its fault configuration."""
        actions = self.last.get("actions", {}).values()
        return any(a.get("state", {}).get("status") == "running" for a in actions)

    def window(self) -> tuple[datetime, datetime] | None:
        """Its start and end (AWS's clock), once FIS has given both."""
        start: datetime | None = self.last.get("startTime")
        end: datetime | None = self.last.get("endTime")
        return None if start is None or end is None else (start, end)

    def end(self, fallback: float) -> float:
        """Its end (AWS's clock), or ``fallback`` if FIS has not said yet."""
        end: datetime | None = self.last.get("endTime")
        return end.timestamp() if end else fallback

    @contextlib.contextmanager
    def stopped_if_left(self) -> Iterator[None]:
        """StopExperiment if the block raises while the experiment runs (an error, a timeout,
        Ctrl-C); the block's exception is what is reported, not a failure to stop."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except BaseException:
            if self.status not in ENDED:
                with contextlib.suppress(BotoCoreError, ClientError):
                    self._fis.stop_experiment(id=self.id)
            raise

    def report(self) -> str:
        """Where its report is: the S3 object once FIS has written it, else where it will be.
        One GetExperiment, the first time (FIS writes the report after the experiment's
        post-experiment window); a failed read is said, not raised: the drill is done."""
        if self._report is None:
            self._report = self._report_location()
        return self._report

    def events(self) -> list[dict[str, Any]]:
        """Its start and end, as the report's events (code "FIS")."""
        name = f"FIS experiment {self.id}"
        state = self.last["state"]
        ended = f"{name} {state['status']}: {state.get('reason', '')}".rstrip(": ")
        found = []
        for key, kind, message in (
            ("startTime", "experiment-started", f"{name} started"),
            ("endTime", f"experiment-{state['status']}", ended),
        ):
            date: datetime | None = self.last.get(key)
            if date is not None:
                found.append(
                    {
                        "time": date.isoformat(timespec="milliseconds"),
                        "epoch": date.timestamp(),
                        "event": kind,
                        "code": "FIS",
                        "message": message,
                    }
                )
        return found

    def _stopped_because(self) -> str:
        """Which stop conditions are in ALARM (DescribeAlarms), with FIS's reason."""
        names = [
            condition["value"].split(":alarm:", 1)[-1]
            for condition in self.last.get("stopConditions", [])
            if condition.get("source") == "aws:cloudwatch:alarm"
        ]
        alarms = self._cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"] if names else []
        firing = [a["AlarmName"] for a in alarms if a["StateValue"] == "ALARM"]
        which = f"stop condition in ALARM: {', '.join(firing)}" if firing else "no stop condition"
        reason = self.last["state"].get("reason", "")
        return f"FIS experiment {self.id} was stopped ({which}; FIS: {reason})"

    def _report_location(self) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            experiment = self._fis.get_experiment(id=self.id)["experiment"]
        except (BotoCoreError, ClientError) as error:
            return f"FIS experiment {self.id}'s report could not be looked up: {error}"
        report = experiment.get("experimentReport", {})
        written = [r["arn"] for r in report.get("s3Reports", []) if r.get("arn")]
        if written:
            return f"FIS experiment {self.id}'s report: {', '.join(written)}"
        outputs = experiment.get("experimentReportConfiguration", {}).get("outputs", {})
        where = outputs.get("s3Configuration", {})
        status = report.get("state", {}).get("status", "not started")
        return (
            f"FIS experiment {self.id}'s report ({status}) goes to "
            f"s3://{where.get('bucketName', '?')}/{where.get('prefix', '')} once the "
            f"post-experiment window has passed: `aws fis get-experiment --id {self.id} "
            "--query experiment.experimentReport`"
        )
