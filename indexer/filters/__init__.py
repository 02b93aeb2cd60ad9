"""Payloads (per-item attributes) and the filters searches apply to them.

`values.py` checks and types payload values; `columns.py` and `table.py` store them as
columns with the indexes filters resolve through; `tree.py` parses the filter language;
`match.py` evaluates a filter to rows; `select.py` decides how a search applies it
(inside every stage, or by scoring the few matching rows exactly).
"""
