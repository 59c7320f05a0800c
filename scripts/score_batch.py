"""Score a ticket export: a thin wrapper around `triage score` (same options).

    python scripts/score_batch.py tickets.csv scored.parquet --subject-column subject --body-column body \
        --id-column ticket_id --time-column created_at --report report.html
"""

import sys

from triage.cli import main

if __name__ == "__main__":
    sys.exit(main(["score", *sys.argv[1:]]))
