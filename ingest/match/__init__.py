"""The match stage: subscription queries and one-pass matching of articles against all of them.

`parse_query` checks and parses a query (QueryError on a bad one), `Matcher`
holds every active subscription and returns the `Match`es of an article,
`match_query` matches one query (the CLI's `ingest match`).
"""

from ingest.match.document import MatchDocument, PreparedDocument
from ingest.match.matcher import Matcher, match_query
from ingest.match.query import Query, parse_query

__all__ = ["MatchDocument", "Matcher", "PreparedDocument", "Query", "match_query", "parse_query"]
