"""RQ wiring: queues, job entry points, the poller loop and the sweeper.

Only this package imports rq; `ingest/` stays a plain library.
"""
