"""Blind 4-way forced-choice user study for expression synthesis: builder, participant app, admin page.

db.py (the schema, the votes_long view), spec.py and build.py (a study from image folders), enrolment.py,
randomization.py and participation.py (a participant's way through), routing.py, participant_page.py,
pages/admin.py and reports.py (the researcher's view). Imports vote_format (the vote format it writes) and,
for the admin chart only, analysis.preferences; never torch or usgan. See README.md.
"""
