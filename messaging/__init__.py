"""Topics at run time: publish checks and the outbox, the relay to a broker (the database's own
log or Kafka), push delivery with retries and dead letters, group reads, positions and leases."""
