"""
Internal: the client core shared by the sync hook and the async trigger.

One request, in the order a reader follows it:

* :mod:`.settings`: an Airflow connection becomes a validated endpoint, keys, timeout, TLS and retry settings;
* :mod:`.windows`: which days a run pulls (``choose_window``), and the date rules;
* :mod:`.api`: the protocol of one call (request body, status → outcome), transport-free;
* :mod:`.transport`: the one bounded ``httpx`` exchange both paths send through;
* :mod:`.retry`: the one answer to "raise, or wait how long" (429, 5xx, timeouts);
* :mod:`.models`: the response model, its validation and the exact merge of split windows;
* :mod:`.redaction`: keeping every fragment of the secret key out of messages.

Nothing here is public API: import from ``hooks``, ``operators``, ``sensors``, ``triggers``, ``exceptions``,
``retry_policy`` or ``testing``. See docs/architecture.rst.
"""

__all__ = ["DEFAULT_CONN_ID"]

#: The connection id the hook, operator, sensor and trigger use when none is given (here, not in settings, so
#: that the operator and sensor modules can name it without importing the settings machinery at parse time).
DEFAULT_CONN_ID = "zendrive_default"
