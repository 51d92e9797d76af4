"""`make bench`: what the failover, drain, API and consumer profiles cost, on stacks of its own.

Every figure is printed beside a baseline measured in the same run on the same machine (the raw
SQS rate of the same LocalStack, the gateway's bare health round trip), because absolute numbers
on a shared 2-core machine say little on their own; the ratios travel better.
"""
