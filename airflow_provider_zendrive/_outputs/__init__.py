"""
Internal: where the operator's numbers go, after the client core has fetched them.

* :mod:`.rows`: the response flattened to one row per day, and its file encodings;
* :mod:`.parquet`: the typed Parquet encoding (pyarrow, the ``parquet`` extra);
* :mod:`.files`: atomic file writes, their read-back, and the output-path rules;
* :mod:`.tables`: the transactional, idempotent table upsert, the revisions it reports and the audit trail;
* :mod:`.lineage`: the OpenLineage datasets of a run;
* :mod:`.summary`, :mod:`.reconcile`, :mod:`.report_html` and :mod:`.report_mail`: the texts for people,
  the monthly reconciliation and its report as a page and as an email (public through
  :mod:`airflow_provider_zendrive.reports`);
* :mod:`.budget`: budget crossings and the ledger that alerts each once.

Nothing here is public API: ``ZenDriveStatsOperator`` is. See docs/architecture.rst.
"""
