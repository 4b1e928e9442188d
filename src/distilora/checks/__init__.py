"""Behavioural test suites: what each model gets right per case type, and what compression broke.

``suite`` reads a suite and maps its labels, ``compute`` turns predictions into the check's numbers, ``run`` runs
the models and writes ``checks/NAME.json``, ``plots`` and ``render`` draw and describe it (report, terminal).
"""
