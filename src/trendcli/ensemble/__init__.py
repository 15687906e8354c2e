"""Ensembles: members, vote, selection (TREND design), evaluation, gradient domination."""
