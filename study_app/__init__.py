"""Blind 4-way forced-choice user study for expression synthesis: builder, participant app, admin page.

models.py and db.py (the schema, the votes_long and participant_summary views), spec.py, study_file.py and
build.py (a study from image folders and a YAML file), enrolment.py, randomization.py and participation.py (a
participant's way through), information.py (consent, debrief, duration, ways out), routing.py,
participant_page.py, pages/admin.py and reports.py (the researcher's view), withdraw.py and backup.py. Imports
vote_format (the vote format it writes) and, for the admin chart only, analysis.preferences; never torch or
usgan. See README.md.
"""
