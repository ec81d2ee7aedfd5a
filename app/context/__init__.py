"""Context algorithms the query stages use: what they count, order, compress and calibrate, but not the stages.

Each module has one job: ``tokens`` counts with the generator's tokenizer, ``positioning`` orders evidence,
``structured`` spots text that must stay verbatim, ``compression`` wraps LLMLingua, and ``calibration`` predicts
whether compressing pays on this host. The stages that use them live in ``app.query.stages``.
"""
