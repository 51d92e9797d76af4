"""What the local stack, the CDK app in ``aws/`` and the dashboard share: the queue, the event
source mapping, the alarms, the schema, the consumer profiles, every named choice, the user's
error. It imports nothing else of the sandbox, so the AWS side depends on no local runtime."""
