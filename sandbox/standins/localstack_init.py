"""LocalStack's init hook (``start.d``): run inside LocalStack at its start, never imported here.

`sandbox.standins.localstack` puts it where LocalStack looks for init hooks; LocalStack runs it
with ``exec`` in its own process. It stops three things LocalStack 2026.3.0 (the last open
release, pinned) does and SQS does not.

- **Connections are kept open, as SQS keeps them.** Served by hypercorn (the sandbox's choice: its
  default server binds every address), LocalStack answers every request ``Connection: close``
  unless the client asked for keep-alive by name (``handlers.set_close_connection_header``, a
  workaround for a stall between h11 and boto, localstack issue 6557), so each SQS call from
  boto3 or wrk opened a new TCP connection. Measured beside a test suite, 8 boto3 threads sending
  to the orders queue: 225-301 messages/s closed, 336-442 kept open; no stall seen.

The other two it would do without end. Measured on a LocalStack of its own, a FIFO queue like the
orders queue, three rounds of 6,000 messages sent (4 threads, batches of 10) then received and
deleted:

- **SQS's per-request metrics are not published.** LocalStack sends CloudWatch a metric for every
  SendMessage, ReceiveMessage and DeleteMessage (``NumberOfMessagesSent`` and the like), each an
  internal PutMetricData (a SQLite write) queued on a pool of three threads that falls behind:
  11,600 of them were still pending right after the first round, and the memory grew by 20-25
  MiB a round for good (139 -> 208 MiB). The sandbox reads none of them: its alarm and dashboard
  read the ``ApproximateNumberOfMessages*`` metrics, which LocalStack still reports every few
  seconds. Without them a round took 4-9 s instead of 10-14 s.
- **A FIFO queue forgets what SQS forgets.** It keeps every message it was sent, for
  deduplication, and a message group per group id, for good; each order is its own group here,
  so that grew the memory by about 12 MiB a round of 6,000 orders (140 -> 177 MiB; 155 -> 158
  MiB with this). SQS deduplicates within 5 minutes: at most once a minute, a queue drops the
  older entries and the groups left empty with nothing in flight.
"""

import time

from localstack.aws.handlers import legacy
from localstack.services.sqs import constants, models, provider

PRUNE_EVERY_SECONDS = 60.0


def _no_metric(self, *args, **kwargs):
    return None


def _forgetting_put(put):
    def forgetful_put(self, *args, **kwargs):
        message = put(self, *args, **kwargs)
        now = time.time()
        if now - getattr(self, "_sandbox_pruned_at", 0.0) >= PRUNE_EVERY_SECONDS:
            self._sandbox_pruned_at = now
            _forget(self, now - constants.DEDUPLICATION_INTERVAL_IN_SEC)
        return message

    return forgetful_put


def _forget(queue, horizon):
    with queue.mutex:
        stale = [key for key, sent in queue.deduplication.items() if sent.priority < horizon]
        for key in stale:  # a message's priority is when it was sent
            del queue.deduplication[key]
        idle = [
            key
            for key, group in queue.message_groups.items()
            if group.empty() and group not in queue.inflight_groups
        ]
        for key in idle:  # made anew by its group's next message
            del queue.message_groups[key]


def _keep_open(_chain, _context, _response):
    return None


# The gateway's chain holds the function itself (made before this hook runs): its code changes.
legacy.set_close_connection_header.__code__ = _keep_open.__code__
provider.CloudwatchDispatcher.dispatch_sqs_metric = _no_metric
models.FifoQueue.put = _forgetting_put(models.FifoQueue.put)
