"""Analysis of the blind user study: votes in, preference tables, tests and the paper's Figure 9 out.

Run the report with `python analysis/preferences.py` (see that module); the functions live in
`analysis.votes` (loading, validation, exclusions), `analysis.stats` (estimates and tests) and
`analysis.simulate` (studies with known truth, for tests and benchmarks). Imports `vote_format` (the long vote
format it reads) and never torch, usgan or study_app.
"""
