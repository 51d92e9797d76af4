"""What a workshop does to a running stack: failovers asked for, faults, the DLQ, load, traffic,
status."""
