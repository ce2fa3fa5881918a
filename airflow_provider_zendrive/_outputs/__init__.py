"""
Internal: where the operator's numbers go, after the client core has fetched them.

* :mod:`.rows`: the response flattened to one row per day, and its file encodings;
* :mod:`.files`: atomic file writes and the output-path rules;
* :mod:`.tables`: the transactional, idempotent table upsert and the revisions it reports.

Nothing here is public API: ``ZenDriveStatsOperator`` is. See docs/architecture.rst.
"""
