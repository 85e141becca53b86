"""Prometheus metrics of every layer, derived from the JSON reports (`nestctl doctor --json`).

`families` turns a report body (local or cluster) into metric families; `exposition` writes them
in the text format; `textfile` writes node_exporter's textfile atomically; `exporter` serves them.
"""
