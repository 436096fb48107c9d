"""Kafka → database ingest: decode a batch, store it idempotently, then commit offsets."""
