"""python -m compat.kafka_python_suite: see compat/kafka_python_suite/__init__.py."""
import sys

from compat.kafka_python_suite import main

sys.exit(main())
