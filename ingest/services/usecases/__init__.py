"""The use cases the CLI and the API share: typed requests in, views out, one behaviour."""
