"""The `ferrymq` console script: the operator command (the Rust crate ferrymq-cli, linked
into ferrymq._native), so `pip install ferrymq` brings it without a second binary."""

from __future__ import annotations

import signal
import sys

from . import _native


def main() -> None:
    # The command runs in this process as the Rust binary would: Ctrl-C ends it at once
    # (Python's handler would only set a flag the Rust code never looks at), and it
    # writes to file descriptors 1 and 2 itself.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.stdout.flush()
    sys.stderr.flush()
    raise SystemExit(_native.cli_main(sys.argv[1:]))


if __name__ == "__main__":
    main()
