"""The visit report (issue 11): a pure builder over plain data, and the thin reads that fill it.

``inputs`` (what a report is built from), ``period`` (its span and days),
``vitals`` and ``events`` (the section functions), ``sections`` (the section
list and :func:`~server.report.sections.build_report`), ``reads`` (SQL).
"""
