import sys

from sandbox.service.cli import main

sys.exit(main())
