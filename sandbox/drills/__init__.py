"""Drills: traffic, a fault, recovery, and every write accounted for, on the local stack or a
deployed one (`targets`)."""
