"""Several replicas on one Redis (contract §11): the lease, the shared state and its
change log, the idempotency keys. Nothing outside this package imports `redis`: with
`SHARED_STATE_REDIS_URL` unset the service never loads it."""
