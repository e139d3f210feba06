"""The store written once in SQL: one module per aggregate over `core`, composed by the backends."""
