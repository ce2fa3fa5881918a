"""
Internal: where the operator's numbers go, after the client core has fetched them.

* :mod:`.rows`: the response flattened to one row per day, and its file encodings;
* :mod:`.parquet`: the typed Parquet encoding (pyarrow, the ``parquet`` extra);
* :mod:`.files`: atomic file writes, their read-back, and the output-path rules;
* :mod:`.tables`: the transactional, idempotent table upsert, the revisions it reports and the audit trail;
* :mod:`.lineage`: the OpenLineage datasets of a run;
* :mod:`.summary` and :mod:`.report_html`: the texts for people (public through
  :mod:`airflow_provider_zendrive.reports`);
* :mod:`.budget`: budget crossings and the ledger that alerts each once.

Nothing here is public API: ``ZenDriveStatsOperator`` is. See docs/architecture.rst.
"""
