import os
import sys

from archspec.cli import main

code = main()
if "TORCHELASTIC_RUN_ID" in os.environ:
    # A torchrun worker: leave without running C++ static destructors, which abort
    # intermittently ("terminate called without an active exception") while gloo's
    # threads shut down. Everything archspec writes is already fsynced and renamed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
raise SystemExit(code)
