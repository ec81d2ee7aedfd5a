"""Context assembly: what evidence goes into the prompt, in which order, in how many tokens, and when not to answer.

Each module has one job: ``tokens`` counts with the generator's tokenizer, ``budget`` splits the prompt budget,
``positioning`` orders evidence, ``structured`` spots text that must stay verbatim, ``compression`` wraps LLMLingua,
``abstain`` decides when the evidence is too weak to answer, and ``stages`` turns them into pipeline stages.
"""
