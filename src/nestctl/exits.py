"""How a run that was interrupted ends, shared by the fast entry path and the click command line.

Its own module so `nestctl.cli` need not import `nestctl.entry`, which imports `nestctl.cli`.
"""

from __future__ import annotations

#: Ctrl-C: 128 + SIGINT, as shells report it, with one line: never "problems found" (1).
INTERRUPTED_EXIT = 130
INTERRUPTED_MESSAGE = "nestctl: interrupted"
