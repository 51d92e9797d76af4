"""cdk-nag's AWS Solutions checks ran and passed (synth raises on any finding left unacknowledged),
and every acknowledgment is both needed and explained."""

from __future__ import annotations

from aws import nag


def _plugin(synth) -> dict:
    (report,) = [r for r in synth.report()["pluginReports"] if r["pluginName"] == nag.PACK]
    return report


def test_aws_solutions_checks_ran_and_passed(synth) -> None:
    report = _plugin(synth)
    assert report["conclusion"] == "success"
    assert report["violations"] == []


def test_every_suppressed_finding_has_a_written_reason(synth) -> None:
    suppressed = _plugin(synth)["suppressedViolations"]
    assert suppressed
    for finding in suppressed:
        assert finding["reason"].strip(), finding["ruleName"]


def test_every_acknowledgment_is_used(synth) -> None:
    """A fix that makes an acknowledgment unnecessary must remove it, not leave it to hide the
    next finding of the same rule."""
    used = {finding["acknowledgedId"] for finding in _plugin(synth)["suppressedViolations"]}
    declared = {accepted.id for accepted in nag.accepted_for(synth.stack)}
    assert declared == used


def test_acknowledgments_are_scoped_to_constructs_not_the_stack(synth) -> None:
    for accepted in nag.accepted_for(synth.stack):
        assert synth.stack not in accepted.where(synth.stack), accepted.rule
