"""Context experiments on NQ-Open and BEIR: where the gold passage sits in the prompt (``position``), when to refuse
(``abstention``), evidence compression, HyDE and the vLLM prefix cache.

Each experiment is a function that takes what it measures through the narrow protocols of ``protocols`` (``eval``
never imports ``app``) and returns a typed result; the result renders itself to the JSON report and the printed
table. ``app.experiment_wiring`` builds the app objects and ``ragline eval <experiment>`` joins the two.
"""
