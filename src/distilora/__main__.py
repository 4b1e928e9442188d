import sys

from distilora.cli import main

sys.exit(main())
