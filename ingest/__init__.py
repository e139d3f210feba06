"""news-ingest, the library: the data's path from a feed to a signed webhook.

    feed -> fetch -> parse -> clean -> dedup -> language -> store -> match -> alert

Pure stages (`parse`, `clean`, `dedup.fingerprint`, `language`, `match`, `alert.payload`,
`alert.signature`, `alert.policy`, `feeds.schedule`) take data and return data. Adapters do
the I/O: `net` and `fetch` (HTTP), `store` (SQLite, PostgreSQL), `dedup.index`, `metrics`,
`alert.ratelimit`, `alert.wakeup` (Redis), `alert.sender` (webhooks). Services (`services/`)
run the stages through ports (`services/ports.py`, the store's protocols). This package never
imports `rq`, `workers` or `app`: entry points and the composition root live in `app/`, the
RQ jobs in `workers/`. See docs/architecture.md.
"""
