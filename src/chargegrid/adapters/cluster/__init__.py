"""Cluster mode's adapters: the NATS broker, the PostgreSQL lease (imported with --cluster)."""
