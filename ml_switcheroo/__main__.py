"""``python -m ml_switcheroo``."""

import os
import sys

# ``python -m`` puts the current directory first on sys.path, so a folder being converted that
# holds ``signal/`` or ``random.py`` (torch's own sources do) would shadow the standard library
# for this process and its workers. The package is already imported; nothing needs that entry.
if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

try:
    from ml_switcheroo.cli import main

    code = main()
except KeyboardInterrupt:  # a Ctrl-C while the command line's modules load, or as it returns
    from ml_switcheroo.app.interrupt import interrupted

    code = interrupted(sys.argv[1:])
# the process ends without freeing its objects one by one (``app.exit``)
from ml_switcheroo.app.exit import end  # noqa: E402

end(code)
