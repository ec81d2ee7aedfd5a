"""Conversation memory in three tiers, MemGPT-style.

* Active: the last few exchanges, verbatim.
* Session: a running summary written by the generator (entities, constraints, commitments, open questions).
* Persistent: a per-user vector collection of facts and archived summaries, recalled by relevance.

When the memory context reaches ``memory_pressure`` of its token budget, the oldest active exchanges move into the
session summary (and their user statements into persistent memory), and an oversized summary is archived to
persistent memory and compressed. Everything is durable in the relational store (``<data_dir>/memory.sqlite3``, or
the shared ``database_url``) and Chroma.

This package never imports ``app``: the generator, the pipeline and the token counter come in through the small
protocols in ``retrieval.protocols``.
"""
