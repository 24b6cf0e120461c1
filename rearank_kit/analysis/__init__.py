"""Stage 5, looking at what happened (notebooks 04, 06, 08): training curves, trace statistics and
the claims reasoning makes, the trace lab, the HTML run report, faithfulness probes and first-pick
probabilities. Imports the stages below.
"""
