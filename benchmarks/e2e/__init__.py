"""The end-to-end benchmarks' parts: farm runs, the service's processes, meters, reports."""
