"""`python -m medimg_core ...` runs the command line (see cli/main.py)."""
import sys

from .cli.main import main

sys.exit(main())
