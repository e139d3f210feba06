"""Dedup stage: which story an article belongs to (exact and near-duplicate).

`fingerprint` is pure (hashes and MinHash signatures); `index` keeps them in Redis.
"""
