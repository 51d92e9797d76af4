"""Aurora: the nodes (PostgreSQL writer and reader), the cluster's own failover steps, and its
RDS-style events."""
