"""Nuke menus (menu.py) for RRTN Restore: Nodes > RRTN > RRTN Restore, and the check that
marks an RRTN Restore node "Out of date" when its input changed."""

import nuke
import rrtn_nuke

nuke.menu("Nodes").addCommand("RRTN/RRTN Restore", rrtn_nuke.create_node)
nuke.addUpdateUI(rrtn_nuke.update_status, nodeClass="Group")
