import sys

from ganaug.parallel.cli import main

sys.exit(main())
