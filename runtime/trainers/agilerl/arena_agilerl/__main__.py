"""``python -m arena_agilerl``: the trainer process the supervisor starts (runtime/PROTOCOL.md)."""

import sys

from arena_agilerl.stop import StopFlag

# Installed before AgileRL and torch are imported (many seconds): a stop that arrives while they load still counts.
flag = StopFlag()
flag.install()

from arena_agilerl.run import main  # noqa: E402 - after the handler, on purpose

sys.exit(main(flag))
