"""Reading a sweep: its runs (runs.py), their seed groups with intervals and verdicts (cells.py), plots."""
