"""Lambda: invoking a handler as the runtime would, and the SQS event source mapping that
drives the consumer (its event shape, its runner, the runner as a stack component)."""
