"""kafka-python's test package, as far as its integration suite needs it.

The kafka-python sdist ships test/integration/ and test/testutil.py but not this file, so
`from test.testutil import ...` in the suite's fixtures would find no package (or the
standard library's own `test` package). Gregor's compat recipe (compat/kafka_python_suite)
drops this file into the unpacked sdist; it is our code, not kafka-python's.
"""
