"""Nuke start-up (init.py) for RRTN Restore: makes the client library importable.

Add this folder to Nuke's plugin path (``nuke.pluginAddPath("/path/to/rrtn-plugin/hosts/nuke")``
in ``~/.nuke/init.py``, or ``$NUKE_PATH``). The client library needs grpcio and protobuf built
for Nuke's Python; install them into ``~/.nuke/rrtn-site`` (or ``$RRTN_NUKE_SITE``) as the
README says. ``$RRTN_PLUGIN_ROOT`` names the rrtn-plugin checkout when this folder was copied
out of it.
"""

import os
import site
import sys

_here = os.path.dirname(os.path.abspath(__file__))
_root = os.environ.get("RRTN_PLUGIN_ROOT", os.path.dirname(os.path.dirname(_here)))
if os.path.isdir(os.path.join(_root, "rrtn_plugin")) and _root not in sys.path:
    sys.path.append(_root)
_site = os.environ.get("RRTN_NUKE_SITE", os.path.expanduser("~/.nuke/rrtn-site"))
if os.path.isdir(_site):
    site.addsitedir(_site)
