"""Great Expectations suites that every fact passes before it is published.

custom.py      the expectations: GX Expectation subclasses named as sentences, with descriptions and severities
derive.py      dq_* columns for the rules across facts and documents (pure pandas)
facts_suite.py the suite built from seeds/ and ``validate_facts``
results.py     the merge of results validated in groups (no GX import)
artifact.py    the Prefect artifact of a run's validation
report.py      ``govfacts report``: the data-quality page (Jinja2 templates in templates/)
"""
