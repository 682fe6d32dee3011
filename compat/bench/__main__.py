import sys

from compat.bench.run import main

sys.exit(main())
