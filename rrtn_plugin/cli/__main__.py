"""``python -m rrtn_plugin.cli``: the ``rrtn-plugin`` command."""

import sys

from rrtn_plugin.cli.main import main

sys.exit(main())
