"""Blind 4-way forced-choice user study for expression synthesis: builder, participant app, admin page."""
