"""Great Expectations suites that every fact passes before it is published."""
