"""A stack deployed before the hardening cannot be updated in place: the template now names the
cluster and both queues, and a new name is a replacement (CloudFormation's resource reference:
``DBClusterIdentifier`` and ``QueueName`` are "Update requires: Replacement"). aws/README says so,
and says to drain, destroy and deploy fresh; these tests keep the two together."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parents[2] / "aws" / "README.md"
SECTION = "### A stack deployed before the hardening: drain, destroy, deploy fresh"


def _section() -> str:
    text = README.read_text()
    assert SECTION in text
    return text.split(SECTION, 1)[1].split("\n## ", 1)[0]


def test_the_template_names_the_cluster_and_both_queues(synth) -> None:
    stack = synth.stack
    cluster = synth.resources[synth.logical_id(stack.database.cluster)]["Properties"]
    assert cluster["DBClusterIdentifier"] == f"{stack.stack_name.lower()}-aurora"
    for queue in (stack.queues.queue, stack.queues.dlq):
        assert "QueueName" in synth.resources[synth.logical_id(queue)]["Properties"]


def test_the_readme_says_an_old_stack_is_drained_destroyed_and_deployed_fresh() -> None:
    section = _section()
    for said in (
        "`DBClusterIdentifier` is a replacement",
        "**new, empty cluster**",
        "**only in that final snapshot**",
        "`QueueName` is a replacement",
        "**any accepted order not yet committed stranded in them**",
        "ApproximateNumberOfMessagesNotVisible",
        "`make destroy`",
        "`make deploy` a fresh stack",
    ):
        assert said in section, said
    # The Deploy steps point there before anyone runs `make deploy` over an old stack.
    deploy = README.read_text().split("## Deploy\n", 1)[1].split("\n## ", 1)[0]
    assert "(#a-stack-deployed-before-the-hardening-drain-destroy-deploy-fresh)" in deploy
