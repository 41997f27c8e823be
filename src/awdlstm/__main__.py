"""``python -m awdlstm`` (and ``torchrun ... -m awdlstm``) runs the command line."""

import sys

from .cli import main

sys.exit(main())
