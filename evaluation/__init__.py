"""Local scoring of CMRxRecon 2025 submissions: the organizers' metrics, aggregation and reports.

``metrics`` (per-image scores), ``reference`` (ground truth), ``evaluate`` (walk the trees),
``aggregate`` (breakdowns, leaderboard groups), ``report`` (CSV, tables, PNG panels).
``genre evaluate`` drives them.
"""
