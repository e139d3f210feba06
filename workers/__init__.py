"""RQ wiring: the ingest queue as the services' `BatchQueue` (queues.py), the job entry points
(jobs.py), the worker process (worker.py). The library (`ingest/`) never imports this package."""
