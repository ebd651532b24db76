"""Nuke menus (menu.py) for RRTN Restore: Nodes > RRTN > RRTN Restore."""

import nuke
import rrtn_nuke

nuke.menu("Nodes").addCommand("RRTN/RRTN Restore", rrtn_nuke.create_node)
