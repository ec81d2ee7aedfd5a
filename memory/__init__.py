"""Conversation memory tiers (active turns, session summary, persistent vector memory).

Not built yet: the query path answers single questions. See the project's memory issue for the plan.
"""
