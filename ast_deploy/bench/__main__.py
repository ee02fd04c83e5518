"""Worker entry point: ``python -m ast_deploy.bench JOB.json RESULT.json`` (started by the harness)."""

import sys

from .harness import worker_main

if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
